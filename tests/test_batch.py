"""`lambda_idempotency.batch` inside Powertools' batch processors: SQS standard and FIFO, Kinesis, DynamoDB Streams.

Runs on MemoryStore and on moto's server over HTTP (its item operations serialised, as DynamoDB does); the
in-flight duplicate test counts on that serialisation.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import Counter
from typing import Any

import pytest
from lambda_idempotency import current
from lambda_idempotency.batch import idempotent_record, process_batch
from lambda_idempotency.stores.base import Store

from demo.stack import LambdaContext

from .conftest import FakeClock

BACKENDS = pytest.mark.parametrize("store", ["memory", "moto_server"], indirect=True)
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:orders"


def sqs(message_id: str, body: Any, arn: str = QUEUE_ARN) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"messageId": message_id, "body": text, "eventSource": "aws:sqs", "eventSourceARN": arn, "attributes": {}}


def kinesis(sequence: str, partition_key: str) -> dict[str, Any]:
    return {
        "eventSource": "aws:kinesis",
        "eventID": f"shardId-000000000000:{sequence}",
        "kinesis": {
            "sequenceNumber": sequence,
            "partitionKey": partition_key,
            "data": base64.b64encode(json.dumps({"sequence": sequence}).encode()).decode(),
        },
    }


def stream(sequence: str, image: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventSource": "aws:dynamodb",
        "eventID": f"event-{sequence}",
        "dynamodb": {"SequenceNumber": sequence, "NewImage": image},
    }


class Consumer:
    """A record handler that counts its runs and fails on records whose payload says so."""

    def __init__(self, store: Store, **options: Any) -> None:
        self.runs: Counter[str] = Counter()
        options.setdefault("local_cache", False)

        @idempotent_record(store, operation="test.consume", **options)
        def handle(record: Any) -> str:
            payload = json.dumps(record.raw_event)
            self.runs[record.raw_event.get("messageId") or record.raw_event["eventID"]] += 1
            if "poison" in payload:
                raise ValueError("poison record")
            return "done"

        self.handle = handle

    def __call__(self, records: list[dict[str, Any]]) -> list[str]:
        response = process_batch({"Records": records}, LambdaContext("consumer"), self.handle)
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


@BACKENDS
def test_sqs_failures_name_exactly_the_bad_records_and_good_ones_replay(store: Store) -> None:
    consume = Consumer(store)
    batch = [sqs("m1", {"n": 1}), sqs("m2", "poison"), sqs("m3", {"n": 3})]
    assert consume(batch) == ["m2"]
    assert consume(batch) == ["m2"]
    assert consume.runs == {"m1": 1, "m2": 2, "m3": 1}


@BACKENDS
def test_a_business_key_runs_once_across_message_ids(store: Store) -> None:
    consume = Consumer(store, key="json(body).order_id")
    assert consume([sqs("m1", {"order_id": "o-1"}), sqs("m2", {"order_id": "o-1"})]) == []
    assert consume([sqs("m3", {"order_id": "o-1"})]) == []
    assert consume.runs == {"m1": 1}


@BACKENDS
def test_a_record_without_its_business_key_fails_alone(store: Store) -> None:
    consume = Consumer(store, key="json(body).order_id")
    assert consume([sqs("m1", {"order_id": "o-1"}), sqs("m2", {"other": 1}), sqs("m3", "{not json")]) == ["m2", "m3"]
    assert consume.runs == {"m1": 1}


@BACKENDS
def test_a_business_key_with_another_payload_fails_instead_of_replaying(store: Store) -> None:
    consume = Consumer(store, key="json(body).order_id")
    assert consume([sqs("m1", {"order_id": "o-1", "amount": 5})]) == []
    assert consume([sqs("m2", {"order_id": "o-1", "amount": 6})]) == ["m2"]
    assert consume.runs == {"m1": 1}


@BACKENDS
def test_fifo_stops_at_the_first_failure_and_leaves_the_rest_unclaimed(store: Store) -> None:
    consume = Consumer(store)
    fifo = QUEUE_ARN + ".fifo"
    assert consume([sqs("m1", {"n": 1}, fifo), sqs("m2", "poison", fifo), sqs("m3", {"n": 3}, fifo)]) == ["m2", "m3"]
    assert consume.runs == {"m1": 1, "m2": 1}
    assert consume([sqs("m3", {"n": 3}, fifo)]) == []
    assert consume.runs["m3"] == 1


@BACKENDS
def test_kinesis_and_dynamodb_streams_are_keyed_by_event_id(store: Store) -> None:
    consume = Consumer(store)
    shard = [kinesis("101", "customer-1"), kinesis("102", "poison")]
    assert consume(shard) == ["102"]
    assert consume(shard) == ["102"]
    changes = [stream("201", {"id": {"S": "a"}}), stream("202", {"id": {"S": "poison"}})]
    assert consume(changes) == ["202"]
    assert consume(changes) == ["202"]
    assert consume.runs == {
        "shardId-000000000000:101": 1,
        "shardId-000000000000:102": 2,
        "event-201": 1,
        "event-202": 2,
    }


@BACKENDS
def test_a_stream_resumes_at_the_lowest_reported_sequence_number_and_later_records_replay(store: Store) -> None:
    """docs/queues-and-streams.md: Lambda resumes a shard at the lowest reported sequence number (AWS), so a failed
    stream record comes back with every record after it; those that succeeded replay, never run twice."""
    consume = Consumer(store)
    shard = [kinesis("101", "a"), kinesis("102", "poison"), kinesis("103", "b"), kinesis("104", "poison")]
    failed = consume(shard)
    assert failed == ["102", "104"]
    resume = [record for record in shard if int(record["kinesis"]["sequenceNumber"]) >= min(map(int, failed))]
    assert consume(resume) == ["102", "104"]
    assert consume.runs == {
        "shardId-000000000000:101": 1,
        "shardId-000000000000:102": 2,
        "shardId-000000000000:103": 1,
        "shardId-000000000000:104": 2,
    }


@pytest.mark.parametrize("store", ["moto_server"], indirect=True)
def test_a_duplicate_in_flight_elsewhere_fails_and_succeeds_when_redelivered(store: Store) -> None:
    inside = threading.Event()
    release = threading.Event()
    runs: list[str] = []

    @idempotent_record(store, operation="test.slow", key="json(body).id", local_cache=False)
    def slow(record: Any) -> str:
        runs.append(record.message_id)
        inside.set()
        release.wait(10)
        return "sent"

    first = threading.Thread(target=process_batch, args=({"Records": [sqs("m1", {"id": "x"})]}, None, slow))
    first.start()
    assert inside.wait(10)
    duplicate = process_batch({"Records": [sqs("m2", {"id": "x"})]}, None, slow)
    release.set()
    first.join()
    assert duplicate == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert process_batch({"Records": [sqs("m2", {"id": "x"})]}, None, slow) == {"batchItemFailures": []}
    assert runs == ["m1"]


def test_a_handler_that_asks_for_the_lambda_context_gets_it() -> None:
    from lambda_idempotency import MemoryStore

    seen: list[Any] = []

    @idempotent_record(MemoryStore(), operation="test.context")
    def handle(record: Any, lambda_context: Any) -> None:
        seen.append(lambda_context.function_name)

    context = LambdaContext("consumer")
    assert process_batch({"Records": [sqs("m1", {}), sqs("m1", {})]}, context, handle) == {"batchItemFailures": []}
    assert seen == ["consumer"]


def test_the_lease_follows_the_invocations_remaining_time(clock: FakeClock) -> None:
    from lambda_idempotency import MemoryStore

    leases: list[int] = []

    @idempotent_record(MemoryStore(), operation="test.lease", clock=clock)
    def handle(record: Any) -> None:
        leases.append(current().lease_expires_at)

    process_batch({"Records": [sqs("m1", {})]}, LambdaContext("consumer", remaining_ms=4_000), handle)
    assert leases == [int(clock.now * 1000) + 4_000 + 1_000]


def test_an_empty_batch_has_no_failures_and_an_unknown_source_is_an_error() -> None:
    def never(record: Any) -> None:
        raise AssertionError("no record to handle")

    assert process_batch({"Records": []}, None, never) == {"batchItemFailures": []}
    with pytest.raises(ValueError, match="unsupported batch event source"):
        process_batch({"Records": [{"eventSource": "aws:s3"}]}, None, never)


@BACKENDS
def test_each_failed_record_is_logged_with_its_id_and_error_type_never_its_body(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    consume = Consumer(store, key="json(body).order_id")
    secret = "4111-1111-1111-1111"
    assert consume([sqs("m0", {"order_id": "o-1", "card": secret})]) == []
    batch = [
        sqs("m1", {"order_id": "o-2", "card": secret}),
        sqs("m2", {"order_id": "o-3", "card": secret, "note": "poison"}),  # the handler raises ValueError
        sqs("m3", {"card": secret}),  # no business key
        sqs("m4", {"order_id": "o-1", "card": secret, "amount": 2}),  # the key again, another payload
    ]
    with caplog.at_level(logging.WARNING, logger="lambda_idempotency"):
        assert consume(batch) == ["m2", "m3", "m4"]
    warned = {r.batch_record_id: r for r in caplog.records if r.levelno == logging.WARNING}  # type: ignore[attr-defined]
    assert {name: r.error_type for name, r in warned.items()} == {  # type: ignore[attr-defined]
        "m2": "ValueError",
        "m3": "lambda_idempotency.errors.MissingKeyError",
        "m4": "lambda_idempotency.errors.KeyReuseError",
    }
    for record in warned.values():
        assert record.getMessage() == f"batch record {record.batch_record_id} failed: {record.error_type}"  # type: ignore[attr-defined]
        assert record.exc_info is None
    assert secret not in caplog.text
    assert "o-1" not in caplog.text  # not even the business key an error message would quote


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"Records": {"0": sqs("m1", {})}}, "is a list of records"),
        ({"Records": {}}, "is a list of records"),  # acknowledging it would tell the source all went well
        ({"Records": None}, "is a list of records"),
        ({"records": [sqs("m1", {})]}, "has no Records"),
        ({}, "has no Records"),
        ({"Records": [sqs("m1", {}), "m2"]}, "is a list of records"),
        ({"Records": [sqs("m1", {}), kinesis("101", "p")]}, "of one event source"),
        ({"Records": [sqs("m1", {}), {**sqs("m2", {}), "messageId": None}]}, "record #1 .* no messageId"),
        ({"Records": [kinesis("101", "p"), {**kinesis("102", "p"), "kinesis": {"data": ""}}]}, "sequenceNumber"),
        ({"Records": [{**stream("201", {}), "dynamodb": {"NewImage": {}}}]}, "dynamodb.SequenceNumber"),
    ],
)
def test_a_batch_whose_failures_could_not_be_named_fails_before_any_record_runs(
    event: dict[str, Any], problem: str
) -> None:
    """AWS names a failed record by its message id or sequence number; Powertools raised a KeyError or TypeError
    after the good records ran, losing the report. Now the event is refused, typed, before anything runs."""
    from lambda_idempotency import InvalidBatchError, MemoryStore

    consume = Consumer(MemoryStore())
    with pytest.raises(InvalidBatchError, match=problem):
        process_batch(event, None, consume.handle)
    assert consume.runs == {}


FIFO_ARN = QUEUE_ARN + ".fifo"


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ([sqs("m1", {}, FIFO_ARN), {**sqs("m2", {}, FIFO_ARN), "attributes": None}], "#1 .* attributes"),
        ([sqs("m1", {}, FIFO_ARN), {**sqs("m2", {}, FIFO_ARN), "attributes": ["MessageGroupId"]}], "#1 .* attributes"),
        ([{**sqs("m1", {}), "attributes": "x"}], "#0 .* attributes"),
        ([sqs("m1", {}), sqs("m2", {}, FIFO_ARN), sqs("m3", {}, FIFO_ARN)], "one queue"),
        ([sqs("m1", {}, FIFO_ARN), {**sqs("m2", {}), "eventSourceARN": None}], "one queue"),
    ],
)
def test_an_sqs_batch_the_processor_would_crash_on_or_misorder_fails_before_any_record_runs(
    records: list[dict[str, Any]], problem: str
) -> None:
    """Powertools' FIFO processor reads ``attributes.MessageGroupId`` outside its error handling: ``attributes`` that is
    not an object raised an ``AttributeError`` after the records before it ran. The processor is chosen by the first
    record's queue: FIFO records behind a standard one ran as a standard batch, past a failure, out of order."""
    from lambda_idempotency import InvalidBatchError, MemoryStore

    consume = Consumer(MemoryStore())
    with pytest.raises(InvalidBatchError, match=problem):
        process_batch({"Records": records}, None, consume.handle)
    assert consume.runs == {}


def test_a_big_batch_with_repeated_message_ids_and_hostile_bodies_reports_each_bad_record() -> None:
    """10,000 SQS records (the largest batch a standard queue delivers), each id twice, some bodies not JSON or
    nested far past the JSON depth limit: each bad record is reported, each good one runs once."""
    from lambda_idempotency import MemoryStore

    consume = Consumer(MemoryStore(), key="json(body).id")
    deep = "[" * 100_000 + "]" * 100_000
    bodies = [deep if n % 1000 == 7 else "{not json" if n % 1000 == 8 else {"id": f"o-{n}"} for n in range(5_000)]
    records = [sqs(f"m{n}", body) for n, body in enumerate(bodies)]
    failed = consume(records + records)
    bad = [f"m{n}" for n in range(5_000) if n % 1000 in (7, 8)]
    assert failed == bad + bad
    assert len(consume.runs) == 5_000 - len(bad)
    assert set(consume.runs.values()) == {1}
