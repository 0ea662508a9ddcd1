"""The application of template.yaml, run on this machine: local resources, the functions' environment, invocations.

`LocalStack.create` makes the template's tables (TTL included), queues and the SES sender identity on the local
endpoints; `load_function` imports a function's ``app.py`` afresh, as a new Lambda container would, with the
environment the template gives it. Each loaded module is one container: its own clients, its own local cache.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3

from .template import (
    ROOT,
    create_table_request,
    function_environment,
    load_template,
    parameter_defaults,
    resources_of,
)

REGION = "us-east-1"
SENDER = "payments@example.com"
FUNCTIONS = {"PaymentFunction": "payment", "EmailFunction": "email"}
_containers = itertools.count(1)


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that Powertools and the idempotency lease read."""

    function_name: str
    remaining_ms: int = 10_000
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class LocalStack:
    """The template's resources on local endpoints, and the names the functions find them by."""

    dynamodb: Any
    sqs: Any
    sesv2: Any
    names: dict[str, str]
    template: dict[str, Any]
    endpoints: dict[str, str]
    overrides: dict[str, str] = field(default_factory=dict)
    """Environment set on top of the template's, in every function loaded (the demo quiets the logs)."""

    @classmethod
    def create(cls, dynamodb_endpoint: str, aws_endpoint: str) -> LocalStack:
        template = load_template()
        suffix = uuid.uuid4().hex[:6]
        dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=REGION)
        sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name=REGION)
        sesv2 = boto3.client("sesv2", endpoint_url=aws_endpoint, region_name=REGION)
        names = {**{k: str(v) for k, v in parameter_defaults(template).items()}, "SenderEmail": SENDER}
        for logical_id, table in resources_of(template, "AWS::DynamoDB::Table").items():
            name = f"{logical_id}-{suffix}"
            properties = table["Properties"]
            dynamodb.create_table(**create_table_request(properties, name))
            dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
            if "TimeToLiveSpecification" in properties:
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
                )
            names[logical_id] = name
        queues = resources_of(template, "AWS::SQS::Queue")
        arns: dict[str, str] = {}
        for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]["Properties"]):
            attributes = _queue_attributes(queues[logical_id]["Properties"], arns)
            url = sqs.create_queue(QueueName=f"{logical_id}-{suffix}", Attributes=attributes)["QueueUrl"]
            arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            names[logical_id] = url
        s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name=REGION)
        for logical_id in resources_of(template, "AWS::S3::Bucket"):
            names[logical_id] = f"{logical_id.lower()}-{suffix}"
            s3.create_bucket(Bucket=names[logical_id])
        sesv2.create_email_identity(EmailIdentity=SENDER)
        endpoints = {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }
        return cls(dynamodb=dynamodb, sqs=sqs, sesv2=sesv2, names=names, template=template, endpoints=endpoints)

    def environment(self, logical_id: str) -> dict[str, str]:
        return function_environment(self.template, logical_id, self.names)

    def load_function(self, logical_id: str, **overrides: str) -> ModuleType:
        """A new container of the function: its ``app`` module imported afresh under the template's environment."""
        folder = ROOT / "functions" / FUNCTIONS[logical_id]
        os.environ.update({**self.endpoints, **self.environment(logical_id), **self.overrides, **overrides})
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        name = f"{FUNCTIONS[logical_id]}_app_{next(_containers)}"
        spec = importlib.util.spec_from_file_location(name, folder / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def count_items(self, logical_id: str) -> int:
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.names[logical_id], Select="COUNT")
        return sum(page["Count"] for page in pages)

    def sent_emails(self) -> int:
        """Recipients SES has sent to so far, from the (moto) account's send quota counter."""
        ses = boto3.client("ses", endpoint_url=self.endpoints["AWS_ENDPOINT_URL"], region_name=REGION)
        return int(ses.get_send_quota()["SentLast24Hours"])


def _queue_attributes(properties: dict[str, Any], arns: dict[str, str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for name in ("VisibilityTimeout", "MessageRetentionPeriod"):
        if name in properties:
            attributes[name] = str(properties[name])
    redrive = properties.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": arns[target], "maxReceiveCount": redrive["maxReceiveCount"]}
        )
    return attributes
