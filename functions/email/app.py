"""The email function: sends each queued email once per ``email_id``, reporting only bad messages as failures.

SQS delivers at least once, and a producer may enqueue one email twice under two message ids: the idempotency key
is the ``email_id`` of the body, not the message id. A malformed message fails alone (``batchItemFailures``) and
reaches the dead-letter queue after ``maxReceiveCount`` receives; the good messages of its batch are sent.
SES takes no idempotency key: a crash between the send and the completion can send again after the lease ends.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from email_message import parse_email
from lambda_idempotency import DynamoDBStore
from lambda_idempotency.batch import idempotent_record, process_batch

logger = Logger()
metrics = EphemeralMetrics()  # this container's own: Metrics() shares one set with every instance in a process

store = DynamoDBStore(os.environ["IDEMPOTENCY_TABLE"])
ses = boto3.client("sesv2")
SENDER = os.environ["SENDER_EMAIL"]


@idempotent_record(
    store, operation="emails.send", key="json(body).email_id", fingerprint="json(body)", ttl=timedelta(days=7)
)
def send_email(record: SQSRecord) -> dict[str, str]:
    email = parse_email(record.body)
    response = ses.send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": [email.to]},
        Content={"Simple": {"Subject": {"Data": email.subject}, "Body": {"Text": {"Data": email.text}}}},
    )
    metrics.add_metric(name="EmailSent", unit=MetricUnit.Count, value=1)
    logger.info("email sent", extra={"email_id": email.email_id, "ses_message_id": response["MessageId"]})
    return {"email_id": email.email_id, "ses_message_id": response["MessageId"]}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    metrics.add_metric(name="EmailRecords", unit=MetricUnit.Count, value=len(event.get("Records") or []))
    return process_batch(event, context, send_email)
