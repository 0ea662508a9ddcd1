"""The template's tables and queues on a local AWS endpoint (moto's server), for `make serve` and the tests.

Tables get their key schema and TTL; queues their visibility timeout and redrive policy (dead-letter queues first).
SES sender identities are verified for every template parameter that holds an email address (the sender the
functions are given), since SES refuses to send from an unverified one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
from lambda_idempotency.stores.dynamodb import TTL_ATTRIBUTE

from tools.sam_template import Template

REGION = "us-east-1"


def create_resources(template: Template, endpoint: str) -> dict[str, str]:
    """Create the tables, queues and sender identities at ``endpoint``; the queues' URLs by logical id."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    for table in template.tables:
        dynamodb.create_table(
            TableName=table.name,
            KeySchema=table.key_schema,
            AttributeDefinitions=table.attribute_definitions,
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=table.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for queue in sorted(template.queues, key=lambda q: q.dead_letter_queue is not None):
        attributes = {"VisibilityTimeout": str(queue.visibility_timeout_s)}
        if queue.dead_letter_queue is not None:
            redrive = {"deadLetterTargetArn": arns[queue.dead_letter_queue], "maxReceiveCount": queue.max_receive_count}
            attributes["RedrivePolicy"] = json.dumps(redrive)
        urls[queue.logical_id] = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
        arns[queue.logical_id] = _arn(sqs, urls[queue.logical_id])
    ses = boto3.client("sesv2", endpoint_url=endpoint, region_name=REGION)
    for value in template.parameters.values():
        if re.fullmatch(r"[^@\s]+@[^@\s]+", value):
            ses.create_email_identity(EmailIdentity=value)
    return urls


def _arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn
