"""Results of any size: past the threshold a payload goes to S3 and the record keeps a pointer with its hash.

Most tests run on moto in-process (S3 and DynamoDB); one runs DynamoDB Local and moto's server (S3) over HTTP.
Payloads are random bytes, so compression cannot shrink them under the item limit.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from lambda_idempotency import (
    DynamoDBStore,
    MemoryStore,
    ResultNotStoredError,
    ResultUnreadableError,
    S3Offload,
    StoreConfigurationError,
    StoreUnavailableError,
    create_table,
    current,
    idempotent_function,
)
from lambda_idempotency.http import idempotent_http
from lambda_idempotency.payloads import OFFLOADED
from lambda_idempotency.record import MAX_UNPACKED_BYTES
from lambda_idempotency.testing import free_port
from moto import mock_aws

from tests.conftest import CallCounter, FakeClock, new_business_table, table_items
from tests.http_events import SHAPES, headers_of, http_event, options_for, problem_of

BUCKET = "idempotency-results"
MB = 1_000_000


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield


def offloading_store(dynamodb: Any = None, s3: Any = None) -> DynamoDBStore:
    store = DynamoDBStore(
        f"idem-{uuid.uuid4().hex[:12]}",
        client=dynamodb or boto3.client("dynamodb", region_name="us-east-1"),
        offload=S3Offload(BUCKET, client=s3 or boto3.client("s3", region_name="us-east-1")),
    )
    create_table(store)
    return store


@pytest.fixture(params=["moto", "dynamodb_local"])
def store(request: pytest.FixtureRequest) -> Iterator[DynamoDBStore]:
    """An offloading store on moto in-process (S3 and DynamoDB), or on DynamoDB Local with moto's server for S3."""
    if request.param == "moto":
        with mock_aws():
            boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
            yield offloading_store()
        return
    s3 = boto3.client("s3", endpoint_url=request.getfixturevalue("moto_endpoint"), region_name="us-east-1")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    yield offloading_store(request.getfixturevalue("dynamodb_local_client"), s3)


def test_moto_applies_one_item_operation_at_a_time_in_every_test() -> None:
    """This module's stores use moto without `client_of`; a renewal racing a step's save on unserialised moto lost
    one of the two updates (`test_a_big_step_is_offloaded_and_resumed_without_running_again` failed so under load).
    The suite serialises moto for every test (tests/conftest.py)."""
    from moto.dynamodb.models import DynamoDBBackend

    assert all(hasattr(getattr(DynamoDBBackend, name), "__wrapped__") for name in ("update_item", "put_item"))


def objects_of(store: DynamoDBStore) -> list[dict[str, Any]]:
    """The objects under this store's records (the bucket is shared by the tests of a server)."""
    s3 = store.payloads.offload.client  # type: ignore[union-attr]
    found: list[dict[str, Any]] = []
    for item in table_items(store):
        record = hashlib.sha256(item["pk"]["S"].encode()).hexdigest()
        found += s3.list_objects_v2(Bucket=BUCKET, Prefix=f"idempotency/{record}/").get("Contents", [])
    return found


def stored_item(store: DynamoDBStore) -> dict[str, Any]:
    items = table_items(store)
    assert len(items) == 1
    item: dict[str, Any] = items[0]
    return item


def item_bytes(item: dict[str, Any]) -> int:
    return len(repr(item))


@pytest.mark.parametrize("size", [1 * MB, 5 * MB])
def test_big_results_are_replayed_intact_through_the_decorator(store: DynamoDBStore, size: int) -> None:
    payload = os.urandom(size)

    @idempotent_function(store, key="k", operation="big", local_cache=False)
    def produce(k: str) -> bytes:
        return payload

    @idempotent_function(store, key="k", operation="big", local_cache=False)
    def duplicate(k: str) -> bytes:
        raise AssertionError("a duplicate must not run")

    assert produce("a") == payload
    assert duplicate("a") == payload
    item = stored_item(store)
    assert item["result"]["B"][:1] == OFFLOADED
    assert item_bytes(item) < 2000  # the record holds a pointer, not the result


def test_without_an_offload_a_big_result_is_not_stored(aws: None) -> None:
    """What the offload fixes: the same 1 MB result on a store without one cannot be replayed."""
    store = DynamoDBStore("plain", client=boto3.client("dynamodb", region_name="us-east-1"))
    create_table(store)

    @idempotent_function(store, key="k", operation="big", local_cache=False)
    def produce(k: str) -> bytes:
        return os.urandom(MB)

    produce("a")
    with pytest.raises(ResultNotStoredError):
        produce("a")


def test_a_result_past_the_inflation_bound_is_not_stored_even_with_an_offload(aws: None) -> None:
    """`record.MAX_UNPACKED_BYTES` caps what a replay inflates; a result past it could never be read back, so it is
    not offloaded either: the key completes without a result (the work is not run twice), and nothing goes to S3."""
    store = offloading_store()
    runs = []

    @idempotent_function(store, key="k", operation="huge", local_cache=False)
    def produce(k: str) -> str:
        runs.append(k)
        return os.urandom(MAX_UNPACKED_BYTES // 2 + 1).hex()  # hex: compresses to about half, still past the threshold

    produce("a")
    with pytest.raises(ResultNotStoredError) as replay:
        produce("a")
    assert type(replay.value) is ResultNotStoredError  # not stored; not a stored object that cannot be read back
    assert runs == ["a"]
    assert objects_of(store) == []


def test_small_results_stay_in_the_record(aws: None, count_calls: Any) -> None:
    """The small-result path keeps its round trips: claim and completion, nothing of S3."""
    store = offloading_store()
    s3_calls = CallCounter()
    store.payloads.offload.client.meta.events.register("before-call.s3", s3_calls)  # type: ignore[union-attr]
    dynamodb_calls = count_calls(store.client)

    @idempotent_function(store, key="k", operation="small", local_cache=False)
    def produce(k: str) -> dict[str, str]:
        return {"ok": k}

    assert produce("a") == {"ok": "a"}
    assert dynamodb_calls.calls == ["PutItem", "PutItem"]
    dynamodb_calls.reset()
    assert produce("a") == {"ok": "a"}
    assert dynamodb_calls.calls == ["PutItem"]
    assert stored_item(store)["result"] == {"S": '{"ok":"a"}'}
    assert s3_calls.calls == []

    @idempotent_function(store, key="k", operation="big", local_cache=False)
    def big(k: str) -> bytes:
        return os.urandom(100_000)

    big("a")  # the counter does see S3's calls
    assert s3_calls.calls == ["PutObject"]


def test_a_changed_or_missing_object_is_a_typed_error_never_a_replay(store: DynamoDBStore) -> None:
    s3 = store.payloads.offload.client  # type: ignore[union-attr]

    @idempotent_function(store, key="k", operation="tamper", local_cache=False)
    def produce(k: str) -> bytes:
        return os.urandom(200_000)

    produce("a")
    (obj,) = objects_of(store)
    s3.put_object(Bucket=BUCKET, Key=obj["Key"], Body=b"x" + os.urandom(200_000))
    with pytest.raises(ResultUnreadableError, match="hash"):
        produce("a")
    s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    with pytest.raises(ResultUnreadableError, match="gone"):
        produce("a")


def test_a_zombies_offloaded_object_is_never_replayed(store: DynamoDBStore, clock: FakeClock) -> None:
    """The first execution outlives its lease; a retry takes over and completes. The zombie's object is written
    (before its completion), but its completion is refused, so the record names the successor's object only.

    ``renew=False``: no background renewal, so nothing notices the take-over before the zombie's completion. With
    renewal, a refused renewal may mark the zombie lost first; its completion then raises `LeaseLostError` before it
    writes any object (tests/test_leases.py)."""
    zombie_result, successor_result = os.urandom(300_000), os.urandom(300_000)

    @idempotent_function(store, key="k", operation="zombie", clock=clock, lease=1, renew=False, local_cache=False)
    def work(k: str, who: str) -> bytes:
        if who == "zombie":
            clock.advance(5)  # the lease passes while the zombie still runs
            assert work(k, "successor") == successor_result
            return zombie_result
        return successor_result

    assert work("a", "zombie") == zombie_result  # the zombie's own caller gets its result; the record does not
    assert len(objects_of(store)) == 2  # both objects were written
    for _ in range(2):
        assert work("a", "replay") == successor_result
    item = stored_item(store)
    assert item["attempts"] == {"N": "2"}
    assert item["owner"]["S"] in bytes(item["result"]["B"]).decode()  # the pointer names the successor's object


def test_a_big_step_is_offloaded_and_resumed_without_running_again(store: DynamoDBStore, clock: FakeClock) -> None:
    big = os.urandom(MB)
    runs = {"step": 0}

    def fetch() -> bytes:
        runs["step"] += 1
        return big

    @idempotent_function(store, key="k", operation="steps", clock=clock, lease=1, local_cache=False)
    def work(k: str, crash: bool) -> int:
        data = current().step("fetch", fetch)
        if crash:
            raise KeyboardInterrupt  # a BaseException: the lease stays, as after a crash
        return len(data)

    with pytest.raises(KeyboardInterrupt):
        work("a", True)
    assert bytes(stored_item(store)["steps"]["M"]["fetch"]["B"])[:1] == OFFLOADED
    clock.advance(5)
    assert work("a", False) == MB
    assert runs["step"] == 1


def download_api(store: DynamoDBStore, shape: str, body: str) -> tuple[Callable[..., Any], list[int]]:
    """An HTTP handler answering ``body``, on its own operation, and the list its runs are counted in."""
    runs: list[int] = []

    @idempotent_http(store, operation=f"download-{uuid.uuid4().hex[:8]}", **options_for(shape))
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs.append(1)
        return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": body}

    return handler, runs


@pytest.mark.parametrize("shape", list(SHAPES))
def test_big_http_responses_are_replayed_intact_on_every_event_shape(aws: None, shape: str) -> None:
    """Lambda's own 6 MB response limit is the cap; 1 MB and 5 MB of body (base64 of random bytes) pass intact."""
    store = offloading_store()
    for size in (1 * MB, 5 * MB):
        body = base64.b64encode(os.urandom(size * 3 // 4)).decode()
        handler, runs = download_api(store, shape, body)
        event = http_event(shape)
        first = handler(event, None)
        replay = handler(event, None)
        assert len(runs) == 1
        assert replay["body"] == first["body"] == body
        assert headers_of(replay)["idempotent-replayed"] == "true"


@pytest.mark.parametrize(
    ("gone", "code"), [("object", "idempotency-result-unavailable"), ("bucket", "store-misconfigured")]
)
def test_http_replay_of_a_missing_object_or_bucket_is_a_500_problem(aws: None, gone: str, code: str) -> None:
    """The object gone: the record is unreadable. The bucket itself deleted (or denied): every replay fails the same
    way until it is fixed, a misconfiguration. Either is a 500 problem, never an unhandled error (a bare 502)."""
    store = offloading_store()

    @idempotent_http(store, operation="download", local_cache=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": base64.b64encode(os.urandom(200_000)).decode()}

    event = http_event("http_api")
    handler(event, None)
    s3 = store.payloads.offload.client  # type: ignore[union-attr]
    (obj,) = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    if gone == "bucket":
        s3.delete_bucket(Bucket=BUCKET)
    replay = handler(event, None)
    assert replay["statusCode"] == 500, replay
    assert problem_of(replay)["code"] == code


def test_threshold_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        S3Offload(BUCKET, threshold_bytes=400_000)
    with pytest.raises(ValueError, match="bucket"):
        S3Offload("")


def test_s3_out_of_reach_at_completion_leaves_the_key_in_flight_and_raises_with_writes(
    aws: None, clock: FakeClock
) -> None:
    """As with DynamoDB out of reach at completion: nothing names a missing object, the lease decides what comes next;
    a function with writes to commit gets the error, since its writes were not applied."""
    unreachable = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    store = offloading_store(s3=unreachable)
    table = new_business_table(store.client)

    @idempotent_function(store, key="k", operation="cut", clock=clock, lease=10, local_cache=False)
    def produce(k: str, write: bool) -> bytes:
        if write:
            current().write({"Put": {"TableName": table, "Item": {"id": {"S": k}}}})
        return os.urandom(200_000)

    assert len(produce("a", False)) == 200_000
    assert stored_item(store)["status"] == {"S": "IN_PROGRESS"}
    with pytest.raises(StoreUnavailableError, match="S3"):
        produce("b", True)
    assert "Item" not in store.client.get_item(TableName=table, Key={"id": {"S": "b"}})


def test_a_bucket_that_does_not_exist_is_a_configuration_error_whatever_fail_open_says(aws: None) -> None:
    """S3 answering NoSuchBucket fails every retry the same way: `StoreConfigurationError`, loudly (also from a step),
    never an outage that leaves the key in flight for the next retry to run the function again, unnoticed."""
    store = DynamoDBStore(
        f"idem-{uuid.uuid4().hex[:12]}",
        client=boto3.client("dynamodb", region_name="us-east-1"),
        offload=S3Offload("no-such-bucket", client=boto3.client("s3", region_name="us-east-1")),
    )
    create_table(store)

    @idempotent_function(store, key="k", operation="op", local_cache=False, fail_open=True)
    def produce(k: str, in_step: bool) -> bytes:
        if in_step:
            return bytes(current().step("big", lambda: os.urandom(200_000)))
        return os.urandom(200_000)

    for in_step in (False, True):
        with pytest.raises(StoreConfigurationError, match=r"S3 \(s3://no-such-bucket\) .*NoSuchBucket"):
            produce(f"k-{in_step}", in_step)


def test_optimistic_mode_commits_a_pointer_with_its_writes(aws: None) -> None:
    """The optimistic insert carries the pointer, not the result: a 1 MB result fits its transaction."""
    store = offloading_store()
    table = new_business_table(store.client)

    @idempotent_function(store, key="k", operation="opt", mode="optimistic", local_cache=False)
    def produce(k: str) -> bytes:
        current().write({"Put": {"TableName": table, "Item": {"id": {"S": k}}}})
        return os.urandom(MB)  # another value on every run: only a replay returns the first

    first = produce("a")
    assert produce("a") == first  # the second run lost the insert and replays the first's result from S3
    assert bytes(stored_item(store)["result"]["B"])[:1] == OFFLOADED


def plant_result(store: DynamoDBStore, stored: bytes) -> None:
    """Overwrite the one record's result attribute, as whoever can write the table could."""
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": stored_item(store)["pk"]},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "result"},
        ExpressionAttributeValues={":r": {"B": stored}},
    )


@pytest.mark.parametrize(
    ("stored", "error"),
    [
        (OFFLOADED + b"not json", "malformed"),
        (OFFLOADED + b'{"bucket":"elsewhere","key":"idempotency/x","size":1,"sha256":"00"}', "outside"),
        (OFFLOADED + b'{"bucket":"' + BUCKET.encode() + b'","key":"other/x","size":1,"sha256":"00"}', "outside"),
        (b"\x07unknown form", "offloaded or encrypted"),
    ],
)
def test_a_hostile_result_attribute_is_a_typed_error(aws: None, stored: bytes, error: str) -> None:
    """Whoever can write the table cannot make a replay fetch another bucket's object, or crash it untyped."""
    store = offloading_store()

    @idempotent_function(store, key="k", operation="hostile", local_cache=False)
    def produce(k: str) -> str:
        return "real"

    produce("a")
    plant_result(store, stored)
    with pytest.raises(ResultUnreadableError, match=error):
        produce("a")


@pytest.mark.parametrize("claimed_size", ["actual", "huge"])
def test_an_offloaded_object_past_the_inflation_bound_is_not_read(aws: None, claimed_size: str) -> None:
    """An offloaded result is read through the same bound as a compressed one (DESIGN.md, "Limits"): an object in
    text form past `MAX_UNPACKED_BYTES` (which `seal` never writes) replayed whole, and a pointer may name any size,
    which the replay fetched and read into memory before comparing it."""
    store = offloading_store()
    s3 = store.payloads.offload.client  # type: ignore[union-attr]

    @idempotent_function(store, key="k", operation="planted", local_cache=False)
    def produce(k: str) -> str:
        return "real"

    produce("a")
    body = b'\x00"' + b"a" * (MAX_UNPACKED_BYTES + 10) + b'"'
    s3.put_object(Bucket=BUCKET, Key="idempotency/planted", Body=body)
    size = len(body) if claimed_size == "actual" else 10**12
    digest = hashlib.sha256(body).hexdigest()
    pointer = f'{{"bucket":"{BUCKET}","key":"idempotency/planted","size":{size},"sha256":"{digest}"}}'
    plant_result(store, OFFLOADED + pointer.encode())
    with pytest.raises(ResultUnreadableError, match="MAX_UNPACKED_BYTES"):
        produce("a")


def test_the_memory_store_offloads_too(aws: None) -> None:
    """Users' unit tests on MemoryStore exercise the same path (S3 on moto)."""
    store = MemoryStore(offload=S3Offload(BUCKET, client=boto3.client("s3", region_name="us-east-1")))
    payload = os.urandom(MB)

    @idempotent_function(store, key="k", operation="mem", local_cache=False)
    def produce(k: str) -> bytes:
        return payload

    assert produce("a") == payload
    assert produce("a") == payload
    (record,) = store._records.values()
    assert isinstance(record.result, bytes) and record.result[:1] == OFFLOADED


def test_an_async_replay_reads_its_object_off_the_event_loop(aws: None) -> None:
    """Async functions promise boto3 never blocks the event loop; the replay of an offloaded result fetched its S3
    object on the loop's own thread."""
    import asyncio
    import threading

    s3 = boto3.client("s3", region_name="us-east-1")
    store = offloading_store(s3=s3)
    fetched_on: list[int] = []
    s3.meta.events.register("before-call.s3.GetObject", lambda **_: fetched_on.append(threading.get_ident()))

    @idempotent_function(store, key="k", operation="async-big", local_cache=False)
    async def produce(k: str) -> bytes:
        return os.urandom(450_000)

    async def twice() -> tuple[bytes, bytes, int]:
        return await produce("a"), await produce("a"), threading.get_ident()

    first, replayed, loop_thread = asyncio.run(twice())
    assert replayed == first
    assert fetched_on and loop_thread not in fetched_on
