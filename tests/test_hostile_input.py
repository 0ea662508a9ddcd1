"""Hostile input (issue 11, items 10 and 11): JSON nested without bound, and stored results that inflate without bound.

Deep JSON must never raise `RecursionError` (an unhandled 500 behind API Gateway): text deeper than `MAX_JSON_DEPTH`
is refused with `InputTooDeepError` (HTTP 400 ``request-invalid``) before anything recurses, and text at the limit
works. A stored result that would inflate past `MAX_UNPACKED_BYTES` is reported unusable, not inflated.
Tables are moto in-process (records written through our own store, or changed afterwards with the raw client as a
hostile or foreign writer would).
"""

from __future__ import annotations

import json
import tracemalloc
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lambda_idempotency import (
    DynamoDBStore,
    InputTooDeepError,
    InvalidKeyError,
    MissingKeyError,
    MissingScopeError,
    ResultNotStoredError,
    ResultUnreadableError,
    current,
    idempotent,
    idempotent_function,
)
from lambda_idempotency.depth import MAX_JSON_DEPTH
from lambda_idempotency.http import idempotent_http
from lambda_idempotency.record import MAX_UNPACKED_BYTES

from .conftest import client_of, new_dynamodb_store
from .http_events import SHAPES, http_event, options_for, problem_of
from .test_bad_input import operation

VERY_DEEP = 100_000


@pytest.fixture(scope="module")
def store(request: pytest.FixtureRequest) -> Iterator[DynamoDBStore]:
    """One table for the module; every case uses its own operation."""
    with client_of(request, "moto") as client:
        yield new_dynamodb_store(client)


def nested_text(levels: list[str], inner: str = "1") -> str:
    """JSON text nesting ``len(levels)`` arrays and objects; strings full of brackets sit at every level, as noise."""
    opening = "".join('["[{[", ' if kind == "array" else '{"}]": "{[", "k": ' for kind in levels)
    closing = "".join("]" if kind == "array" else "}" for kind in reversed(levels))
    return opening + inner + closing


def nested_value(levels: int) -> Any:
    """A Python value ``levels`` lists deep, built without recursion."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


shapes_of_nesting = st.integers(1, 3 * MAX_JSON_DEPTH).flatmap(
    lambda depth: st.lists(st.sampled_from(["array", "object"]), min_size=depth, max_size=depth)
)
"""Arrays and objects up to three times the limit deep (the depth is drawn first: lists are short by default)."""
AROUND_THE_LIMIT = [["array"] * (MAX_JSON_DEPTH + offset) for offset in (-1, 0, 1)]


@given(levels=shapes_of_nesting)
@example(levels=AROUND_THE_LIMIT[0])
@example(levels=AROUND_THE_LIMIT[1])
def test_a_body_nested_past_the_limit_is_refused_typed_and_at_the_limit_works(
    store: DynamoDBStore, levels: list[str]
) -> None:
    runs: list[int] = []

    @idempotent(store, key="json(body).order_id", fingerprint="json(body)", operation=operation(), local_cache=False)
    def handler(event: Any, context: Any) -> dict[str, Any]:
        runs.append(1)
        return {"statusCode": 201}

    body = '{"order_id": "o-1", "deep": ' + nested_text(levels) + "}"  # one level more than ``levels``
    if len(levels) + 1 > MAX_JSON_DEPTH:
        with pytest.raises(InputTooDeepError, match=f"deeper than {MAX_JSON_DEPTH} levels"):
            handler({"body": body}, None)
        assert runs == []
    else:
        assert handler({"body": body}, None) == handler({"body": body}, None) == {"statusCode": 201}
        assert runs == [1]


@given(levels=shapes_of_nesting, shape=st.sampled_from(list(SHAPES)))
@example(levels=AROUND_THE_LIMIT[1], shape="rest")
@example(levels=AROUND_THE_LIMIT[2], shape="http_api")
def test_the_http_adapter_answers_a_deep_body_with_a_400(store: DynamoDBStore, levels: list[str], shape: str) -> None:
    runs: list[int] = []

    def create(event: Any, context: Any) -> dict[str, Any]:
        runs.append(1)
        return {"statusCode": 201, "body": "{}"}

    api = idempotent_http(store, operation=operation(), **options_for(shape))(create)
    answer = api(http_event(shape, body=nested_text(levels), key=uuid.uuid4().hex), None)
    if len(levels) > MAX_JSON_DEPTH:
        assert answer["statusCode"] == 400
        problem = problem_of(answer)
        assert problem["code"] == "request-invalid"
        assert f"deeper than {MAX_JSON_DEPTH} levels" in problem["detail"]
        assert runs == []
    else:
        assert answer["statusCode"] == 201
        assert runs == [1]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_body_100k_levels_deep_is_a_400_on_every_event_shape(store: DynamoDBStore, shape: str) -> None:
    runs: list[int] = []
    api = idempotent_http(store, operation=operation(), **options_for(shape))(lambda event, context: runs.append(1))
    for body in ("[" * VERY_DEEP + "]" * VERY_DEEP, '{"a":' * VERY_DEEP + "1" + "}" * VERY_DEEP, "[" * VERY_DEEP):
        for base64_body in (False, True):
            answer = api(http_event(shape, body=body, base64_body=base64_body), None)
            assert answer["statusCode"] == 400
            assert problem_of(answer)["code"] == "request-invalid"
    assert runs == []


def test_events_keys_and_fingerprints_100k_levels_deep_raise_the_typed_error(store: DynamoDBStore) -> None:
    runs: list[int] = []
    deep_body = "[" * VERY_DEEP + "]" * VERY_DEEP

    @idempotent(store, key="json(body)[0]", operation=operation())
    def by_body(event: Any, context: Any) -> int:
        runs.append(1)
        return 1

    @idempotent(store, key="order_id", fingerprint="@", operation=operation())
    def by_whole_event(event: Any, context: Any) -> int:
        runs.append(1)
        return 1

    @idempotent(store, key="order_id", fingerprint="to_string(deep)", operation=operation())
    def by_jmespath_function(event: Any, context: Any) -> int:
        runs.append(1)
        return 1

    @idempotent_function(store, key="order", operation=operation())
    def by_argument(order: Any) -> int:
        runs.append(1)
        return 1

    with pytest.raises(InputTooDeepError):
        by_body({"body": deep_body}, None)
    with pytest.raises(InputTooDeepError):
        by_whole_event({"order_id": "o-1", "deep": nested_value(VERY_DEEP)}, None)
    with pytest.raises(InputTooDeepError):
        by_jmespath_function({"order_id": "o-1", "deep": nested_value(VERY_DEEP)}, None)
    with pytest.raises(InputTooDeepError):
        by_argument(nested_value(VERY_DEEP))
    assert runs == []


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, VERY_DEEP])
def test_a_result_nested_past_the_limit_runs_once_and_is_not_stored(store: DynamoDBStore, levels: int) -> None:
    runs: list[int] = []

    @idempotent_function(store, key="k", operation=operation(), local_cache=False)
    def deep_result(k: str) -> Any:
        runs.append(1)
        return nested_value(levels)

    first = deep_result("k")  # the caller gets its result; only replays lack it
    assert first is not None
    with pytest.raises(ResultNotStoredError):
        deep_result("k")
    assert runs == [1]


def test_a_result_at_the_limit_is_stored_and_replayed(store: DynamoDBStore) -> None:
    @idempotent_function(store, key="k", operation=operation(), local_cache=False)
    def deep_result(k: str) -> Any:
        return nested_value(MAX_JSON_DEPTH)

    assert deep_result("k") == deep_result("k") == nested_value(MAX_JSON_DEPTH)


def test_a_step_result_100k_levels_deep_is_a_typed_error(store: DynamoDBStore) -> None:
    @idempotent_function(store, key="k", operation=operation(), local_cache=False)
    def with_step(k: str) -> int:
        current().step("deep", lambda: nested_value(VERY_DEEP))
        return 1

    with pytest.raises(ResultNotStoredError, match="cannot be saved"):
        with_step("k")


def bomb(inflated_bytes: int) -> bytes:
    """zlib data of a JSON string ``inflated_bytes`` long, compressed piece by piece (never held inflated)."""
    packer = zlib.compressobj(9)
    piece = b"a" * 1_000_000
    parts = [packer.compress(b'"')]
    parts += [packer.compress(piece) for _ in range(inflated_bytes // len(piece))]
    return b"".join([*parts, packer.compress(b'"'), packer.flush()])


BOMB = bomb(100_000_000)


def plant(store: DynamoDBStore, payload: bytes) -> None:
    """Replace the result of the table's one record, as a foreign or hostile writer could."""
    (item,) = store.client.scan(TableName=store.table_name)["Items"]
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": item["pk"]},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "result"},
        ExpressionAttributeValues={":r": {"B": payload}},
    )


@pytest.fixture
def own_store(request: pytest.FixtureRequest) -> Iterator[DynamoDBStore]:
    with client_of(request, "moto") as client:
        yield new_dynamodb_store(client)


def test_a_decompression_bomb_is_reported_unusable_and_not_inflated(own_store: DynamoDBStore) -> None:
    assert len(BOMB) < 100_000  # under DynamoDB's item limit, as in the issue (95 KiB that became 100 MB)
    runs: list[int] = []

    @idempotent_function(own_store, key="k", operation=operation(), local_cache=False)
    def work(k: str) -> str:
        runs.append(1)
        return "done"

    assert work("k") == "done"
    plant(own_store, BOMB)
    tracemalloc.start()
    try:
        with pytest.raises(ResultUnreadableError, match=f"inflates past {MAX_UNPACKED_BYTES} bytes"):
            work("k")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_UNPACKED_BYTES  # the 100 MB were never produced
    assert runs == [1]  # unusable, not a reason to run again


@pytest.mark.parametrize(
    "payload",
    [
        BOMB[: len(BOMB) // 2],
        b"not zlib at all",
        zlib.compress(b"\xff\xfe"),
        zlib.compress(b"[" * VERY_DEEP + b"]" * VERY_DEEP),  # JSON no writer of this library would store
    ],
    ids=["truncated", "not zlib", "not UTF-8", "nested 100k levels"],
)
def test_a_truncated_or_corrupt_result_is_reported_unusable(own_store: DynamoDBStore, payload: bytes) -> None:
    @idempotent_function(own_store, key="k", operation=operation(), local_cache=False)
    def work(k: str) -> str:
        return "done"

    work("k")
    plant(own_store, payload)
    with pytest.raises(ResultUnreadableError):
        work("k")


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_http_adapter_answers_a_bomb_with_a_problem(own_store: DynamoDBStore, shape: str) -> None:
    api = idempotent_http(own_store, operation=operation(), local_cache=False, **options_for(shape))(
        lambda event, context: {"statusCode": 201, "body": "{}"}
    )
    assert api(http_event(shape), None)["statusCode"] == 201
    plant(own_store, BOMB)
    replay = api(http_event(shape), None)
    assert replay["statusCode"] == 500
    assert problem_of(replay)["code"] == "idempotency-result-unavailable"


def test_a_result_that_could_not_be_read_back_is_not_stored(own_store: DynamoDBStore) -> None:
    """10 MB of one letter compresses to 10 KB, but a replay could not inflate it: it is not stored."""
    big = "a" * (MAX_UNPACKED_BYTES + 2)

    @idempotent_function(own_store, key="k", operation=operation(), local_cache=False)
    def work(k: str) -> str:
        return big

    assert work("k") == big
    with pytest.raises(ResultNotStoredError, match="not stored"):
        work("k")


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_deep_json_body_is_refused_before_validate_and_unguarded_runs(store: DynamoDBStore, shape: str) -> None:
    """A validate hook or a handler may parse the body with json.loads: a deep body never reaches them."""
    seen: list[Any] = []

    def validate(event: dict[str, Any]) -> None:
        seen.append(json.loads(event["body"]))  # RecursionError, were it reached

    api = idempotent_http(store, operation=operation(), validate=validate, **options_for(shape))(
        lambda event, context: {"statusCode": 200, "body": "{}"}
    )
    deep = "[" * VERY_DEEP + "]" * VERY_DEEP
    for key, method in ((uuid.uuid4().hex, "POST"), (None, "PUT")):
        answer = api(http_event(shape, method=method, key=key, body=deep), None)
        assert answer["statusCode"] == 400
        assert problem_of(answer)["code"] == "request-invalid"
    assert seen == []
    upload = idempotent_http(store, operation=operation(), **options_for(shape))(
        lambda event, context: {"statusCode": 201, "body": "{}"}
    )
    binary = http_event(shape, body="[" * VERY_DEEP, headers={"content-type": "application/octet-stream"})
    assert upload(binary, None)["statusCode"] == 201  # not JSON by its type: its brackets open nothing


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, VERY_DEEP])
def test_a_declared_failure_with_deep_arguments_is_stored_and_replayed(store: DynamoDBStore, levels: int) -> None:
    runs: list[int] = []
    argument = nested_value(levels)

    @idempotent_function(store, key="k", operation=operation(), cache_errors=(ValueError,), local_cache=False)
    def refuse(k: str) -> None:
        runs.append(1)
        raise ValueError(argument)

    with pytest.raises(ValueError) as first:
        refuse("k")
    assert first.value.args[0] is argument  # the caller gets its own exception, not a RecursionError
    with pytest.raises(ValueError):  # replayed: the type survives, the arguments JSON cannot carry do not
        refuse("k")
    assert runs == [1]


HUGE = 10**5000
"""An int past CPython's 4,300-digit limit for ``str()``: any caller-chosen argument can be one."""


@pytest.mark.parametrize(
    ("options", "argument", "error"),
    [
        ({"key": "x"}, HUGE, InvalidKeyError),
        ({"key": lambda x: "k", "fingerprint": "x"}, {"id": HUGE}, InvalidKeyError),
        ({"key": lambda x: "k", "scope": lambda x: x}, HUGE, MissingScopeError),
        ({"key": "length(x)"}, HUGE, MissingKeyError),  # JMESPath's message shows the value
        ({"key": "sort(x)"}, nested_value(VERY_DEEP), MissingKeyError),
        ({"key": lambda x: "k", "scope": lambda x: x}, nested_value(VERY_DEEP), MissingScopeError),
    ],
    ids=["huge key", "huge fingerprint", "huge scope", "huge in a JMESPath message", "deep in a JMESPath message",
         "deep scope"],
)  # fmt: skip
def test_arguments_that_cannot_be_written_as_text_raise_typed_errors_and_run_nothing(
    store: DynamoDBStore, options: dict[str, Any], argument: Any, error: type[Exception]
) -> None:
    runs: list[int] = []

    @idempotent_function(store, operation=operation(), local_cache=False, **options)
    def handle(x: Any) -> int:
        runs.append(1)
        return 1

    with pytest.raises(error):
        handle(argument)
    assert runs == []


class _Unprintable(Exception):
    """A declared failure whose message cannot be written: its ``__str__`` reads an attribute that was never set."""

    def __str__(self) -> str:
        return f"declined: {self.code}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("error", [_Unprintable("x"), ValueError(10**5000)], ids=["buggy __str__", "huge int"])
def test_a_declared_failure_whose_message_cannot_be_written_is_stored_once(
    store: DynamoDBStore, error: Exception
) -> None:
    """Its message is stored as a placeholder: the failure is stored, never left in flight to run again."""
    runs: list[int] = []

    @idempotent_function(
        store, key="k", operation=operation(), cache_errors=(_Unprintable, ValueError), local_cache=False
    )
    def refuse(k: str) -> None:
        runs.append(1)
        raise error

    with pytest.raises(type(error)) as first:
        refuse("k")
    assert first.value is error
    with pytest.raises(type(error)):  # replayed from the stored failure, not InProgressError
        refuse("k")
    assert runs == [1]


def test_a_stored_failure_nested_too_deeply_to_read_is_unusable(own_store: DynamoDBStore) -> None:
    @idempotent_function(own_store, key="k", operation=operation(), cache_errors=(ValueError,), local_cache=False)
    def refuse(k: str) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        refuse("k")
    plant(own_store, zlib.compress(b"[" * VERY_DEEP + b"]" * VERY_DEEP))
    with pytest.raises(ResultUnreadableError, match="nests too deeply"):
        refuse("k")


@pytest.mark.parametrize(
    "text",
    [b"not json", b'{"$li": "no-such-tag", "v": 1}', b'{"$li": "decimal", "v": "abc"}', b'{"$li": "set", "v": [{}]}'],
    ids=["not JSON", "unknown tag", "bad decimal", "unhashable set"],
)
def test_a_result_the_serializer_cannot_read_is_unusable_not_its_exception(
    own_store: DynamoDBStore, text: bytes
) -> None:
    """A foreign or tampered record used to raise the serializer's own KeyError/ValueError/TypeError (behind API
    Gateway, an unhandled error: 502); the README promises `ResultUnreadableError` for a corrupt stored result."""
    runs: list[int] = []

    @idempotent_function(own_store, key="k", operation=operation(), local_cache=False)
    def work(k: str) -> str:
        runs.append(1)
        return "done"

    work("k")
    plant(own_store, zlib.compress(text))
    with pytest.raises(ResultUnreadableError, match="cannot be read back"):
        work("k")
    assert runs == [1]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_http_adapter_answers_an_unreadable_response_with_a_problem(own_store: DynamoDBStore, shape: str) -> None:
    api = idempotent_http(own_store, operation=operation(), local_cache=False, **options_for(shape))(
        lambda event, context: {"statusCode": 201, "body": "{}"}
    )
    assert api(http_event(shape), None)["statusCode"] == 201
    plant(own_store, zlib.compress(b'{"$li": "no-such-tag", "v": 1}'))
    replay = api(http_event(shape), None)
    assert replay["statusCode"] == 500
    assert problem_of(replay)["code"] == "idempotency-result-unavailable"


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("status", {"S": "WEIRD"}), ("owner", {"N": "1"}), ("result", {"N": "1"}), ("steps", {"S": "x"})],
)
def test_a_malformed_record_is_unusable_not_a_key_error(
    own_store: DynamoDBStore, attribute: str, value: dict[str, str]
) -> None:
    """An item this library did not write raised a bare KeyError from the item's decoding (502 behind API Gateway)."""
    runs: list[int] = []

    def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs.append(1)
        return {"statusCode": 201, "body": "{}"}

    api = idempotent_http(own_store, operation=operation(), local_cache=False, **options_for("http_api"))(work)
    assert api(http_event("http_api"), None)["statusCode"] == 201
    (item,) = own_store.client.scan(TableName=own_store.table_name)["Items"]
    own_store.client.update_item(
        TableName=own_store.table_name,
        Key={"pk": item["pk"]},
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":v": value},
    )
    replay = api(http_event("http_api"), None)
    assert replay["statusCode"] == 500
    assert problem_of(replay)["code"] == "idempotency-result-unavailable"
    with pytest.raises(ResultUnreadableError, match="malformed"):
        own_store.get(item["pk"]["S"])
    assert runs == [1]
