"""An SQS event source mapping on this machine: polls a queue and invokes a function with batches, as Lambda does.

Up to ``BatchSize`` messages per invoke (10 at most per receive, as SQS allows), each turned into the record the
mapping sends. After the invoke: with ``ReportBatchItemFailures``, every message but those named in
``batchItemFailures`` is deleted; an invalid response (an identifier not in the batch) or a failed invoke (an
error, a timeout) deletes nothing. What is not deleted comes back after the queue's visibility timeout, and a
redrive policy sends it to its dead-letter queue after ``maxReceiveCount`` receives, both done by SQS itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from tools.sam_template import SqsSource
from tools.sandbox import FunctionError

logger = logging.getLogger("sqs_source")
MAX_RECEIVE = 10
WAIT_S = 1


def sqs_record(message: dict[str, Any], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The record Lambda's SQS event source mapping makes of a received message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {"ApproximateReceiveCount": "1"},
        "messageAttributes": message.get("MessageAttributes") or {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def acknowledged(messages: list[dict[str, Any]], response: Any, source: SqsSource) -> list[dict[str, Any]]:
    """The messages of a successful invoke to delete: all, or all but the reported failures."""
    if not source.reports_item_failures:
        return messages
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if failures is None:
        return messages if response is None or isinstance(response, dict) else []
    if not isinstance(failures, list):
        return []
    ids = {m["MessageId"] for m in messages}
    failed = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    if not failed <= ids:
        logger.warning("invalid batchItemFailures %r: the whole batch is retried", failures)
        return []
    return [m for m in messages if m["MessageId"] not in failed]


class SqsPoller:
    """One event source mapping: a thread that receives from ``queue_url`` and invokes ``function_id`` with batches."""

    def __init__(
        self, sqs: Any, queue_url: str, source: SqsSource, function_id: str, invoke: Callable[[str, Any], Any]
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.source = source
        self.function_id = function_id
        self.invoke = invoke
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-{source.queue}", daemon=True)

    def start(self) -> SqsPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT_S + 10)

    def poll_once(self) -> int:
        """Receive one batch and deliver it; the number of messages received."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.source.batch_size, MAX_RECEIVE),
            WaitTimeSeconds=WAIT_S,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [sqs_record(m, self.queue_arn) for m in messages]}
        try:
            response = self.invoke(self.function_id, event)
        except FunctionError as error:
            logger.warning("%s failed (%s): its %d messages come back", self.source.queue, error, len(messages))
            return len(messages)
        done = acknowledged(messages, response, self.source)
        for start in range(0, len(done), MAX_RECEIVE):
            batch = done[start : start + MAX_RECEIVE]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("polling %s failed", self.source.queue)
                self._stop.wait(1)
