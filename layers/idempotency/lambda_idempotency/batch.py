"""Idempotent record handlers for queue and stream consumers, inside Powertools' batch utility.

Queues and streams deliver at least once: SQS redelivers after the visibility timeout, a producer may enqueue one
business event twice under two message ids, a stream retries a whole shard batch. `idempotent_record` makes the
handler of one record run once per key; Powertools' batch processor does the bookkeeping, so a record whose
handler raises (malformed, in progress elsewhere, a failed send) is reported in ``batchItemFailures``. An SQS queue
redelivers the reported messages alone; a stream resumes at the lowest reported sequence number, so the records after
it come back too, and those that succeeded replay their outcome. `process_batch` picks the processor from the event:
SQS standard, SQS FIFO (stops at the first failure to keep the order, and reports every message from it on), Kinesis
Data Streams or DynamoDB Streams.

The key is a business id read from the record (``key="json(body).order_id"`` or a callable) when one is given,
and is then required: a record without it fails instead of being processed unguarded. Without ``key``, the
record's own id (SQS ``messageId``, stream ``eventID``) is the key, which covers redeliveries but not a message
enqueued twice. Powertools is imported only when `process_batch` runs (pip extra ``batch``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .decorators import idempotent_function
from .errors import InvalidBatchError, MissingKeyError, StoreConfigurationError
from .selectors import Selector, event_selector
from .stores.base import Store

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("lambda_idempotency")

_SOURCE_IDS = {"aws:sqs": "messageId", "aws:kinesis": "eventID", "aws:dynamodb": "eventID"}
_EVENT_TYPES = {"aws:sqs": "SQS", "aws:kinesis": "KinesisDataStreams", "aws:dynamodb": "DynamoDBStreams"}
_PAYLOADS = {"aws:sqs": "body", "aws:kinesis": "kinesis.data", "aws:dynamodb": "dynamodb.NewImage"}
_ITEM_IDENTIFIERS = {
    "aws:sqs": "messageId",
    "aws:kinesis": "kinesis.sequenceNumber",
    "aws:dynamodb": "dynamodb.SequenceNumber",
}
"""What the partial batch response names a failed record by (AWS: SQS message id, stream sequence number)."""


def raw_record(record: Any) -> dict[str, Any]:
    """The record as Lambda delivered it: Powertools' data classes keep it in ``raw_event``."""
    raw = getattr(record, "raw_event", record)
    if not isinstance(raw, dict):
        raise MissingKeyError(f"not a batch record: {type(record).__name__}")
    return raw


def record_id(record: Any) -> str:
    """The id the event source gives each record (SQS ``messageId``, Kinesis/DynamoDB Streams ``eventID``)."""
    raw = raw_record(record)
    source = raw.get("eventSource") or raw.get("EventSource") or "aws:sqs"
    value = raw.get(_SOURCE_IDS.get(str(source), "messageId"))
    if not value:
        raise MissingKeyError(f"record of {source} has no id")
    return str(value)


def record_payload(record: Any) -> Any:
    """What a record carries (SQS body, Kinesis data, DynamoDB new image): the default fingerprint."""
    raw = raw_record(record)
    source = str(raw.get("eventSource") or raw.get("EventSource") or "aws:sqs")
    value: Any = raw
    for part in _PAYLOADS.get(source, "body").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def idempotent_record(
    store: Store,
    *,
    operation: str,
    key: Selector | None = None,
    fingerprint: Selector | None = None,
    **options: Any,
) -> Callable[[F], F]:
    """Make a batch record handler ``fn(record)`` run once per key (see the module docstring for the key).

    ``key``/``fingerprint`` are JMESPath expressions on the raw record (``json(body).email_id``) or callables of
    it. The fingerprint defaults to the record's payload, so one key enqueued with two payloads is an error
    (`KeyReuseError`: the record fails and reaches the dead-letter queue), never a silent replay.
    Other options are those of `idempotent_function` (``ttl``, ``lease``, ``cache_errors``, ...).
    """
    read_key = _reader(key) if key is not None else record_id
    read_fingerprint = _reader(fingerprint) if fingerprint is not None else record_payload
    # Powertools passes ``lambda_context=`` to handlers that declare it: the selectors look at the record only.
    return idempotent_function(
        store,
        key=lambda record, **_: read_key(record),
        fingerprint=lambda record, **_: read_fingerprint(record),
        operation=operation,
        **options,
    )


def _reader(selector: Selector) -> Callable[[Any], Any]:
    read = event_selector(selector)

    def from_record(record: Any) -> Any:
        return read(((raw_record(record),), {}))

    return from_record


def process_batch(event: dict[str, Any], context: Any, record_handler: Callable[[Any], Any]) -> dict[str, Any]:
    """Run ``record_handler`` on every record with the Powertools processor the event calls for.

    Returns the partial batch response (``{"batchItemFailures": [...]}``) for ``ReportBatchItemFailures``, also
    when every record failed (Powertools would raise instead; the queue or stream retries the same records either
    way, and the response says which); each failed record is logged at WARNING with its id and the error's type.
    Leases of the records are capped by the invocation's remaining time. A `StoreConfigurationError` (a missing table,
    denied access...) fails the whole invocation instead: no record can succeed until it is fixed, and a failed
    invocation trips the function's error alarm. So does `InvalidBatchError`, before any record runs, for an event
    whose failures could not be reported record by record (no ``Records`` list, mixed or unknown sources, a record
    without its id, SQS records of several queues or whose ``attributes`` is not an object).
    """
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        SqsFifoPartialProcessor,
        process_partial_response,
    )

    from .execution import use_lambda_context

    if not isinstance(event, dict) or "Records" not in event:  # answering it would acknowledge records never seen
        raise InvalidBatchError("a batch event has no Records: not an SQS, Kinesis or DynamoDB Streams event")
    records = event["Records"]
    if isinstance(records, list) and not records:
        return {"batchItemFailures": []}
    source = _batch_source(records)
    fifo = source == "aws:sqs" and str(records[0].get("eventSourceARN", "")).endswith(".fifo")
    processor = SqsFifoPartialProcessor() if fifo else BatchProcessor(event_type=EventType(_EVENT_TYPES[source]))
    processor.raise_on_entire_batch_failure = False
    misconfigured: list[StoreConfigurationError] = []

    @functools.wraps(record_handler)  # keeps its signature: Powertools passes lambda_context if it asks for it
    def handle(*args: Any, **kwargs: Any) -> Any:
        try:
            return record_handler(*args, **kwargs)
        except StoreConfigurationError as exc:
            misconfigured.append(exc)
            raise

    use_lambda_context(context)
    try:
        response: dict[str, Any] = dict(process_partial_response(event, handle, processor, context))
    finally:
        use_lambda_context(None)
    _log_failures(processor.fail_messages, processor.exceptions)
    if misconfigured:  # no record can succeed until it is fixed: fail the invocation, loudly, not record by record
        raise misconfigured[0]
    return response


def _batch_source(records: Any) -> str:
    """The one event source of ``records``, each of which carries the id its failure would be reported by.

    Checked before any record runs: a failure Powertools cannot name would make it raise (a ``KeyError``) after the
    good records were processed, and an empty or missing ``itemIdentifier`` fails the whole batch anyway (AWS).
    """
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise InvalidBatchError("a batch event's Records is a list of records (objects)")
    sources = {str(record.get("eventSource") or record.get("EventSource") or "") for record in records}
    if len(sources) != 1:
        raise InvalidBatchError(f"a batch holds records of one event source, got {sorted(sources)}")
    (source,) = sources
    if source not in _EVENT_TYPES:
        raise InvalidBatchError(f"unsupported batch event source {source!r}; expected one of {sorted(_EVENT_TYPES)}")
    path = _ITEM_IDENTIFIERS[source]
    for index, record in enumerate(records):
        value: Any = record
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value:
            raise InvalidBatchError(f"record #{index} of the {source} batch has no {path} to report it by")
    if source == "aws:sqs":
        _check_queue(records)
    return source


def _check_queue(records: list[dict[str, Any]]) -> None:
    """An SQS batch comes from one queue, and Powertools' FIFO processor reads each record's ``attributes`` (its
    ``MessageGroupId``) outside its error handling: a batch of two queues (processed as the first record's, standard
    or FIFO) or with ``attributes`` not an object (an ``AttributeError`` after the records before it ran) is refused."""
    if len({str(record.get("eventSourceARN") or "") for record in records}) > 1:
        raise InvalidBatchError("an SQS batch holds the records of one queue, got several eventSourceARNs")
    for index, record in enumerate(records):
        if not isinstance(record.get("attributes", {}), dict):
            raise InvalidBatchError(f"record #{index} of the aws:sqs batch has attributes that are not an object")


def _log_failures(records: list[Any], errors: list[tuple[Any, ...]]) -> None:
    """One WARNING per failed record, with its id and the error's type: never its body, nor the error's message,
    which may quote the body (personal data, secrets). The queue or stream retries it; this says which and why."""
    for record, (error_type, *_) in zip(records, errors, strict=False):
        try:
            failed: str | None = record_id(record)
        except MissingKeyError:
            failed = None
        name = _type_name(error_type)
        fields = {"batch_record_id": failed, "error_type": name}
        logger.warning("batch record %s failed: %s", failed, name, extra=fields)


def _type_name(error_type: type[BaseException] | None) -> str:
    if error_type is None:
        return "unknown"
    module = error_type.__module__
    return error_type.__qualname__ if module == "builtins" else f"{module}.{error_type.__qualname__}"
