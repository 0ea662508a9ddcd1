"""The decorators' options, on `MemoryStore` (the store contract itself is covered on every backend elsewhere)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import math
import socket
import threading
import time
import uuid
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pydantic
import pytest
from lambda_idempotency import (
    DynamoDBStore,
    InProgressError,
    InvalidKeyError,
    KeyReuseError,
    MemoryStore,
    MissingKeyError,
    NoActiveExecutionError,
    ResultNotStoredError,
    StoreUnavailableError,
    current,
    idempotent,
    idempotent_function,
    use_lambda_context,
)
from lambda_idempotency.http import IdempotencyMiddleware

from .conftest import FakeClock, client_of, new_dynamodb_store


class Runs:
    def __init__(self) -> None:
        self.count = 0


def counting_handler(store: MemoryStore, **options: Any) -> tuple[Runs, Any]:
    runs = Runs()

    @idempotent(store, operation="handler", **options)
    def handler(event: Any, context: Any) -> str:
        runs.count += 1
        return "ok"

    return runs, handler


@pytest.mark.parametrize(
    "event",
    [
        {"body": '{"order_id": "o-1"}'},
        {"body": {"order_id": "o-1"}},  # a direct invocation with an object body
    ],
)
def test_jmespath_json_function_reads_string_and_object_bodies(event: dict[str, Any]) -> None:
    runs, handler = counting_handler(MemoryStore(), key="json(body).order_id")
    handler(event, None)
    handler({"body": '{"order_id": "o-1"}'}, None)
    assert runs.count == 1


@pytest.mark.parametrize(
    "event",
    [{}, {"body": "not json"}, {"body": '{"other": 1}'}, {"body": 42}, "a string event", None],
)
def test_malformed_events_raise_missing_key(event: Any) -> None:
    runs, handler = counting_handler(MemoryStore(), key="json(body).order_id")
    with pytest.raises(MissingKeyError):
        handler(event, None)
    assert runs.count == 0


def test_optional_key_runs_without_idempotency() -> None:
    runs, handler = counting_handler(MemoryStore(), key="json(body).order_id", required=False)
    handler({"body": "not json"}, None)
    handler({}, None)
    assert runs.count == 2


@pytest.mark.parametrize("key", ["[user_id, order_id]", "{u: user_id, o: order_id}", lambda event: []])
def test_a_key_of_fields_all_missing_is_a_missing_key_not_one_shared_record(key: Any) -> None:
    """A multi-field key read ``[null, null]`` from an event without its fields: every such event shared that one
    record, so the second got the first one's result (another user's). It is a missing key, as Powertools treats
    it: `MissingKeyError`, or with ``required=False`` a call run without idempotency."""
    runs, handler = counting_handler(MemoryStore(), key=key)
    with pytest.raises(MissingKeyError):
        handler({"name": "alice"}, None)
    optional_runs, optional = counting_handler(MemoryStore(), key=key, required=False)
    optional({"name": "alice"}, None)
    optional({"name": "bob"}, None)
    assert (runs.count, optional_runs.count) == (0, 2)
    if isinstance(key, str):  # one field present is a key
        handler({"user_id": "u-1"}, None)
        handler({"user_id": "u-1"}, None)
        assert runs.count == 1


@pytest.mark.parametrize("key", ["order_id", lambda event: event["order_id"]], ids=["jmespath", "callable"])
def test_a_handler_called_with_keywords_reads_its_event(key: Any) -> None:
    """``handler(event=..., context=...)`` (a test calling its handler by name) read no event: `MissingKeyError`,
    or with ``required=False`` a call run without idempotency, silently."""
    runs, handler = counting_handler(MemoryStore(), key=key, required=False)
    handler(event={"order_id": "o-1"}, context=None)
    handler({"order_id": "o-1"}, None)
    assert runs.count == 1


def test_callable_key_and_its_failures() -> None:
    runs, handler = counting_handler(MemoryStore(), key=lambda event: event["detail"]["id"])
    handler({"detail": {"id": 7}}, None)
    handler({"detail": {"id": "7"}}, None)  # keys are compared as text
    assert runs.count == 1
    with pytest.raises(MissingKeyError):
        handler({"detail": None}, None)


@pytest.mark.parametrize("bad", ["", "x" * 256, "\ud800", float("nan")])
def test_invalid_keys_are_rejected_before_anything_is_stored(bad: Any) -> None:
    store = MemoryStore()
    runs, handler = counting_handler(store, key="k")
    with pytest.raises(InvalidKeyError):
        handler({"k": bad}, None)
    assert runs.count == 0


def test_longest_key_unicode_and_container_keys_work() -> None:
    runs, handler = counting_handler(MemoryStore(), key="k")
    for key in ["x" * 255, "ключ-🔑", {"b": 1, "a": [1, 2]}]:
        handler({"k": key}, None)
    handler({"k": {"a": [1, 2], "b": 1}}, None)  # same object, other key order
    assert runs.count == 3


def test_function_jmespath_sees_arguments_by_name_with_defaults() -> None:
    seen: list[str] = []

    @idempotent_function(MemoryStore(), key="join('-', [order.id, region])", operation="f")
    def charge(order: dict[str, Any], region: str = "eu") -> str:
        seen.append(current().key)
        return order["id"]

    charge({"id": "o-1"})
    charge(order={"id": "o-1"}, region="eu")
    assert seen == ["o-1-eu"]


def test_function_jmespath_indexes_star_args_and_tuple_arguments() -> None:
    """``*args`` is a parameter like the others, but it (and any tuple argument) was invisible to JMESPath, which
    indexes lists only: ``key="args[0]"`` raised `MissingKeyError` for every call."""
    seen: list[str] = []

    @idempotent_function(MemoryStore(), key="args[0]", operation="star")
    def star(*args: Any, **kwargs: Any) -> int:
        seen.append(current().key)
        return len(args)

    @idempotent_function(MemoryStore(), key="pair[1]", operation="pair")
    def pair(pair: tuple[str, str]) -> str:
        seen.append(current().key)
        return pair[1]

    assert star("o-1", 2) == star("o-1", 2, x=1) == 2
    assert pair(("a", "o-2")) == pair(("b", "o-2")) == "o-2"
    assert seen == ["o-1", "o-2"]


def test_current_exposes_the_execution_and_fails_outside() -> None:
    with pytest.raises(NoActiveExecutionError):
        current()
    seen: dict[str, Any] = {}

    @idempotent_function(MemoryStore(), key="k", scope=lambda k: "tenant-1", operation="op")
    def work(k: str) -> None:
        execution = current()
        seen.update(key=execution.key, scope=execution.scope, op=execution.operation, attempt=execution.attempt)
        seen["record_id"] = execution.record_id

    work("abc")
    assert seen["key"] == "abc"
    assert seen["scope"] == "tenant-1"
    assert seen["op"] == "op"
    assert seen["attempt"] == 1
    assert seen["record_id"].startswith("op#")
    assert "abc" not in seen["record_id"]


def test_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    runs, handler = counting_handler(MemoryStore(), key="k")
    monkeypatch.setenv("LAMBDA_IDEMPOTENCY_DISABLED", "1")
    handler({"k": 1}, None)
    handler({"k": 1}, None)
    assert runs.count == 2


@pytest.mark.parametrize("how", ["disabled", "no key, not required"])
def test_a_call_run_without_idempotency_has_no_execution(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Writes and steps commit with the record; where there is none, `current()` says so instead of pretending."""
    if how == "disabled":
        monkeypatch.setenv("LAMBDA_IDEMPOTENCY_DISABLED", "1")

    @idempotent_function(MemoryStore(), key="k", operation="op", required=how == "disabled")
    def work(k: str | None) -> str:
        return current().key

    with pytest.raises(NoActiveExecutionError):
        work("a" if how == "disabled" else None)


def test_default_operation_names_function_and_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    def work(k: str) -> None:
        return None

    plain = idempotent_function(MemoryStore(), key="k")(work)
    assert plain.idempotency.operation == f"{__name__}.test_default_operation_names_function_and_lambda.<locals>.work"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "payments")
    named = idempotent_function(MemoryStore(), key="k")(work)
    assert named.idempotency.operation.startswith("payments:")


@pytest.mark.parametrize("option", ["ttl", "lease", "wait"])
@pytest.mark.parametrize("value", [math.inf, math.nan, -math.inf])
def test_a_duration_that_is_not_finite_is_a_value_error_naming_it(option: str, value: float) -> None:
    """`ttl=math.inf` is not "forever": it was an `OverflowError` from deep inside the decoration (`math.ceil`)."""
    if option != "wait":
        with pytest.raises(ValueError, match=f"{option} must be a positive finite number"):
            idempotent_function(MemoryStore(), key="k", **{option: value})(lambda k: k)
    with pytest.raises(ValueError, match=f"{option} must be a .* finite number"):
        IdempotencyMiddleware(MemoryStore(), operation="o", **{option: value})


@pytest.mark.parametrize("value", ["30", None, True])
def test_a_duration_that_is_not_a_number_is_a_type_error_naming_it(value: Any) -> None:
    """`float()` read "30" and True as seconds, and said of None only that it is not a number."""
    with pytest.raises(TypeError, match="ttl must be a positive finite number"):
        idempotent_function(MemoryStore(), key="k", ttl=value)(lambda k: k)
    with pytest.raises(TypeError, match="ttl must be a positive finite number"):
        IdempotencyMiddleware(MemoryStore(), operation="o", ttl=value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("30", TypeError),
        (None, TypeError),
        (True, TypeError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        (0, ValueError),
        (-5, ValueError),
    ],
)
def test_a_max_retry_after_that_is_not_a_positive_duration_is_a_typed_error_naming_it(
    value: Any, error: type[Exception]
) -> None:
    """Checked as the other durations are: `int()` read "30" and True as seconds, made 0 and -5 one second, and
    raised a bare `OverflowError` for infinity."""
    with pytest.raises(error, match="max_retry_after must be a positive finite number"):
        IdempotencyMiddleware(MemoryStore(), operation="o", max_retry_after=value)


def test_max_retry_after_is_rounded_up_to_whole_seconds() -> None:
    assert IdempotencyMiddleware(MemoryStore(), operation="o", max_retry_after=2.5).rules.max_retry_after == 3
    assert (
        IdempotencyMiddleware(
            MemoryStore(), operation="o", max_retry_after=datetime.timedelta(minutes=1)
        ).rules.max_retry_after
        == 60
    )


def test_a_lease_shorter_than_a_millisecond_is_one_not_zero() -> None:
    """A lease is kept in whole milliseconds: rounded down, 0.4 ms was a lease that had ended when it was taken."""
    assert idempotent_function(MemoryStore(), key="k", lease=0.0004)(lambda k: k).idempotency.lease_ms == 1
    assert IdempotencyMiddleware(MemoryStore(), operation="o", lease=0.0004).rules.guard.lease_ms == 1
    assert idempotent_function(MemoryStore(), key="k", lease=1.0001)(lambda k: k).idempotency.lease_ms == 1001


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="ttl"):
        idempotent_function(MemoryStore(), key="k", ttl=0)(lambda k: k)
    with pytest.raises(ValueError, match="lease"):
        idempotent_function(MemoryStore(), key="k", lease=-1)(lambda k: k)
    with pytest.raises(InvalidKeyError):
        idempotent_function(MemoryStore(), key="k", operation="")(lambda k: k)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Line:
    sku: str
    price: Decimal


@dataclasses.dataclass
class Receipt:
    lines: list[Line]
    at: datetime.datetime
    color: Color


class Invoice(pydantic.BaseModel):
    number: int
    total: Decimal


VALUES = [
    Decimal("10.10"),
    datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    datetime.date(2026, 1, 2),
    b"\x00\xffbytes",
    bytearray(b"\x00\xffmutable"),
    datetime.time(1, 2, 3, 4),
    datetime.time(1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
    datetime.timedelta(days=-1, seconds=5, microseconds=7),
    uuid.UUID(int=5),
    (1, "a", None),
    {1, 2},
    frozenset({"x"}),
    {"$li": "not a tag", "v": 1},
    {1: "int key"},
    [Decimal("1.5"), {"nested": (True, 0.5)}],
    float("inf"),
    2**80,
]


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ for v in VALUES])
def test_replays_return_the_same_python_value(value: Any) -> None:
    @idempotent_function(MemoryStore(), key="k", local_cache=False, operation="v")
    def produce(k: str) -> Any:
        return value

    produce("a")
    replayed = produce("a")
    assert replayed == value
    assert type(replayed) is type(value)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin")),  # summer time, +02:00
        datetime.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),  # the second 02:30, +01:00
        datetime.datetime(2026, 1, 2, 3, 4, tzinfo=ZoneInfo("UTC")),
    ],
    ids=["summer", "fold", "utc"],
)
def test_an_aware_datetime_replays_in_its_named_zone(value: datetime.datetime) -> None:
    """Not at the fixed offset its ISO text carries: a replayed time that is shifted by a day keeps its zone's
    DST rules, and an ambiguous wall time keeps its fold."""

    @idempotent_function(MemoryStore(), key="k", local_cache=False, operation="zoned")
    def produce(k: str) -> datetime.datetime:
        return value

    produce("a")
    replayed = produce("a")
    assert replayed == value and replayed.tzinfo is value.tzinfo and replayed.fold == value.fold
    assert (replayed + datetime.timedelta(days=180)).utcoffset() == (value + datetime.timedelta(days=180)).utcoffset()


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 10, 25, 2, 30, fold=1),
        datetime.datetime(2026, 10, 25, 0, 30, fold=1, tzinfo=datetime.UTC),
        datetime.time(2, 30, fold=1),
    ],
    ids=["naive", "fixed-offset", "time"],
)
def test_the_fold_of_a_repeated_wall_time_is_replayed(value: datetime.datetime | datetime.time) -> None:
    """ISO text drops `fold`; equality ignores it, but the value localised later differs by an hour."""

    @idempotent_function(MemoryStore(), key="k", local_cache=False, operation="fold")
    def produce(k: str) -> Any:
        return value

    produce("a")
    replayed = produce("a")
    assert replayed == value and replayed.fold == 1


@pytest.mark.parametrize(
    "value",
    [1 + 2j, 10**5000, datetime.time(1, 2, tzinfo=ZoneInfo("Europe/Berlin"))],
    ids=["complex", "int", "time-in-a-zone"],
)
def test_a_result_the_default_serializer_cannot_write_runs_once_and_replays_result_not_stored(value: Any) -> None:
    """docs/how-it-works.md: returned to the first caller, not stored, the key COMPLETED; never a different value."""
    runs: list[int] = []

    @idempotent_function(MemoryStore(), key="k", operation="unsupported")
    def produce(k: str) -> Any:
        runs.append(1)
        return value

    assert produce("a") == value
    for _ in range(2):
        with pytest.raises(ResultNotStoredError):
            produce("a")
    assert runs == [1]


def test_dataclasses_and_pydantic_models_rebuilt_from_the_annotation() -> None:
    store = MemoryStore()
    receipt = Receipt([Line("a", Decimal("1.10"))], datetime.datetime(2026, 5, 1), Color.RED)

    @idempotent_function(store, key="k", local_cache=False, operation="r")
    def make_receipt(k: str) -> Receipt:
        return receipt

    @idempotent_function(store, key="k", local_cache=False, operation="i")
    def make_invoice(k: str) -> Invoice | None:
        return Invoice(number=1, total=Decimal("9.99"))

    make_receipt("a")
    assert make_receipt("a") == receipt
    make_invoice("a")
    assert make_invoice("a") == Invoice(number=1, total=Decimal("9.99"))


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_lease_follows_the_lambda_context_and_the_lease_option(clock: FakeClock) -> None:
    store = MemoryStore()
    retry_after: list[int] = []

    def probe(handler: Any, event: Any) -> None:
        with pytest.raises(InProgressError) as info:
            handler(event, Context(1000))
        retry_after.append(info.value.retry_after)

    @idempotent(store, key="k", operation="ctx", clock=clock)
    def handler(event: Any, context: Any) -> None:
        if event.get("probe"):
            probe(handler, {"k": event["k"]})

    @idempotent(store, key="k", operation="ctx2", clock=clock, lease=5)
    def capped(event: Any, context: Any) -> None:
        if event.get("probe"):
            probe(capped, {"k": event["k"]})

    @idempotent(store, key="k", operation="ctx3", clock=clock, renew=False)
    def whole(event: Any, context: Any) -> None:
        if event.get("probe"):
            probe(whole, {"k": event["k"]})

    handler({"k": "a", "probe": True}, Context(120_000))
    capped({"k": "a", "probe": True}, Context(120_000))
    whole({"k": "a", "probe": True}, Context(120_000))
    handler({"k": "b", "probe": True}, Context(4_000))
    # the renewed default lease (20 s) + 1 s margin; min(lease, remaining) + margin; renew=False: one lease for the
    # whole invocation (remaining time + margin); the remaining time caps the default
    assert retry_after == [21, 6, 121, 5]


def test_use_lambda_context_sizes_function_leases(clock: FakeClock) -> None:
    store = MemoryStore()
    retry_after: list[int] = []

    @idempotent_function(store, key="k", operation="inner", clock=clock)
    def inner(k: str, probe: bool = False) -> None:
        if probe:
            with pytest.raises(InProgressError) as info:
                inner(k)
            retry_after.append(info.value.retry_after)

    @idempotent(store, key="k", operation="outer", clock=clock)
    def handler(event: Any, context: Any) -> None:
        inner(event["k"], probe=True)

    handler({"k": "inside-handler"}, Context(4_000))
    inner("default", probe=True)  # the handler's context does not outlive its invocation
    use_lambda_context(Context(9_000))
    try:
        inner("from-context", probe=True)
    finally:
        use_lambda_context(None)
    assert retry_after == [5, 21, 10]  # outside an invocation: the default lease (20 s) + margin


def test_local_cache_honours_fingerprint_and_expiry(clock: FakeClock) -> None:
    runs = Runs()

    @idempotent_function(MemoryStore(), key="k", fingerprint="v", operation="c", ttl=60, clock=clock)
    def work(k: str, v: int) -> int:
        runs.count += 1
        return v

    work("a", 1)
    with pytest.raises(KeyReuseError):
        work("a", 2)
    clock.advance(61)
    assert work("a", 2) == 2
    assert runs.count == 2


def test_the_local_cache_keeps_a_completed_record_without_its_steps(clock: FakeClock) -> None:
    """A warm replay reads the result alone; a record's steps (up to 400 KB) are not kept in every container."""
    store = MemoryStore()

    @idempotent_function(store, key="k", operation="steps-cached", clock=clock)
    def work(k: str) -> str:
        return current().step("big", lambda: "x" * 100_000)[:1]

    assert work("a") == "x"
    cached = work.idempotency.cache.get(work.idempotency.record_id_of(None, "a"), int(clock()))
    assert cached is not None and cached.steps == {}
    stored = store.get(work.idempotency.record_id_of(None, "a"))
    assert stored is not None and list(stored.steps) == ["big"]
    assert work("a") == "x"


def test_async_functions_run_once_and_share_in_flight_state() -> None:
    store = MemoryStore()
    runs = Runs()
    turned_away: list[asyncio.Event] = []

    @idempotent_function(store, key="k", operation="async")
    async def work(k: str) -> str:
        runs.count += 1
        assert current().key == k
        # In flight until the duplicate has been turned away (not for a fixed 0.05 s, which a loaded machine could
        # spend before the duplicate's claim thread ran: it then replayed the result, and both answers were str).
        await turned_away[0].wait()
        return k * 2

    async def call() -> Any:
        try:
            return await work("a")
        except InProgressError as exc:
            turned_away[0].set()
            return exc

    async def scenario() -> list[Any]:
        turned_away.append(asyncio.Event())
        return await asyncio.wait_for(asyncio.gather(call(), call()), 30)  # a second execution would wait in vain

    first, second = asyncio.run(scenario())
    assert sorted([type(first).__name__, type(second).__name__]) == ["InProgressError", "str"]
    assert asyncio.run(work("a")) == "aa"
    assert runs.count == 1


def test_async_exception_releases_the_key() -> None:
    runs = Runs()

    @idempotent_function(MemoryStore(), key="k", operation="async-fail")
    async def work(k: str) -> str:
        runs.count += 1
        if runs.count == 1:
            raise RuntimeError("first")
        return "second"

    with pytest.raises(RuntimeError):
        asyncio.run(work("a"))
    assert asyncio.run(work("a")) == "second"


def test_an_async_call_cancelled_while_it_claims_gives_its_key_back() -> None:
    """A task cancelled while its claim ran in the worker thread (``asyncio.wait_for`` around the call) left the
    claim held and its lease renewed in the background for as long as the process lived: every retry got
    `InProgressError`. The function never ran, so the key is given back once the claim lands."""
    store = MemoryStore()
    runs: list[str] = []

    @idempotent_function(store, key="k", operation="async-cancelled", lease=0.3)
    async def work(k: str) -> str:
        runs.append(k)
        return k

    async def cancel_then_retry() -> str:
        task = asyncio.create_task(work("a"))
        await asyncio.sleep(0)  # the task is now waiting for its claim
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 30  # a time-out for a loaded machine, not a measurement
        while store._records and time.monotonic() < deadline:  # the claim lands in its worker thread, then is released
            await asyncio.sleep(0.01)
        assert not store._records  # given back, not merely left to expire (an expired record stays in the store)
        return await work("a")

    assert asyncio.run(cancel_then_retry()) == "a"
    assert runs == ["a"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_store_fails_closed_or_open_when_asked() -> None:
    store = DynamoDBStore("t", endpoint_url=f"http://127.0.0.1:{closed_port()}", region_name="us-east-1")
    runs = Runs()

    @idempotent_function(store, key="k", operation="down")
    def closed(k: str) -> str:
        runs.count += 1
        return k

    @idempotent_function(store, key="k", operation="down", fail_open=True)
    def opened(k: str) -> str:
        runs.count += 1
        return k

    with pytest.raises(StoreUnavailableError):
        closed("a")
    assert runs.count == 0
    assert opened("a") == "a"
    assert runs.count == 1


@dataclasses.dataclass(frozen=True)
class Sku:
    code: str


def test_models_rebuilt_inside_tuples_and_sets_as_inside_lists(request: pytest.FixtureRequest) -> None:
    """The README promises rebuilding "from the return annotation"; list and dict were walked, tuple and set not."""
    with client_of(request, "moto") as client:
        _replay_models_in_tuples_and_sets(new_dynamodb_store(client))


def _replay_models_in_tuples_and_sets(moto_store: DynamoDBStore) -> None:

    @idempotent_function(moto_store, key="k", local_cache=False, operation="pair")
    def pair(k: str) -> tuple[Invoice, int]:
        return (Invoice(number=1, total=Decimal("1.50")), 2)

    @idempotent_function(moto_store, key="k", local_cache=False, operation="many")
    def many(k: str) -> tuple[Line, ...]:
        return (Line("a", Decimal("1")), Line("b", Decimal("2")))

    @idempotent_function(moto_store, key="k", local_cache=False, operation="colors")
    def colors(k: str) -> frozenset[Color]:
        return frozenset({Color.RED})

    for produce in (pair, many, colors):
        first = produce("a")
        assert produce("a") == first  # the replay, read back from the table


def test_a_set_of_models_is_not_stored_rather_than_unreadable(request: pytest.FixtureRequest) -> None:
    """A frozen dataclass in a set (or as a dict key) was stored as a dict and the replay raised a bare TypeError
    (unhashable type). It is now refused when stored, so the replay raises the documented `ResultNotStoredError`."""
    with client_of(request, "moto") as client:
        store = new_dynamodb_store(client)
        runs: list[int] = []

        @idempotent_function(store, key="k", local_cache=False, operation="set-of-skus")
        def skus(k: str) -> Any:
            runs.append(1)
            return {Sku("x")}

        @idempotent_function(store, key="k", local_cache=False, operation="keyed-by-sku")
        def prices(k: str) -> Any:
            runs.append(1)
            return {Sku("x"): 1}

        for produce in (skus, prices):
            produce("a")
            with pytest.raises(ResultNotStoredError):
                produce("a")
        assert len(runs) == 2  # neither ran twice


@pytest.mark.parametrize("bad", ["CardDeclined", (ValueError, "KeyError"), (ValueError("no"),)])
def test_cache_errors_that_are_not_exception_classes_fail_at_decoration(bad: Any) -> None:
    """A string was accepted, and the first failure then raised TypeError from ``isinstance`` in place of the
    function's own exception. Misconfiguration fails loudly, and at once."""
    with pytest.raises(TypeError, match="cache_errors"):
        idempotent_function(MemoryStore(), key="k", operation="ce", cache_errors=bad)(lambda k: k)


@dataclasses.dataclass
class Scaled:
    """A dataclass whose ``__init__`` does more than store its fields: the replay must not run it again."""

    amount: int
    factor: dataclasses.InitVar[int] = 100
    label: str = dataclasses.field(init=False, default="")

    def __post_init__(self, factor: int) -> None:
        self.amount *= factor
        self.cents = self.amount * 100  # not a field: what __post_init__ derives
        self.lock = threading.Lock()  # not storable: left out, not the whole result
        self._seen = ["private state"]


def test_a_dataclass_replays_as_the_instance_returned_without_running_init_again() -> None:
    """The replay called ``__init__`` with the stored fields: ``__post_init__`` scaled the amount a second time (a
    silent wrong value), and a field with ``init=False`` made the replay unreadable. A dataclass now comes back as
    pickle brings one back: its stored fields set on a new instance."""
    returned = Scaled(3)
    returned.label = "set after init"

    @idempotent_function(MemoryStore(), key="k", local_cache=False, operation="scaled")
    def produce(k: str) -> Scaled:
        return returned

    assert produce("a") == returned
    replayed = produce("a")
    assert replayed == returned
    assert (replayed.amount, replayed.label) == (300, "set after init")
    assert replayed.cents == 30_000  # set by __post_init__, which does not run again: kept as pickle keeps it
    assert not hasattr(replayed, "lock") and not hasattr(replayed, "_seen")


class Point(NamedTuple):
    color: Color
    line: Line


def test_enum_keys_and_named_tuples_are_rebuilt_from_the_annotation() -> None:
    """``dict[Color, int]`` replayed ``{"red": 1}``, not even equal to ``{Color.RED: 1}``, and a named tuple came
    back as a plain tuple of dicts and strings."""
    store = MemoryStore()

    @idempotent_function(store, key="k", local_cache=False, operation="by-color")
    def by_color(k: str) -> dict[Color, int]:
        return {Color.RED: 1}

    @idempotent_function(store, key="k", local_cache=False, operation="point")
    def point(k: str) -> Point:
        return Point(Color.RED, Line("a", Decimal("1.5")))

    for produce in (by_color, point):
        first = produce("a")
        replayed = produce("a")
        assert replayed == first
        assert type(replayed) is type(first)
    assert list(by_color("a")) == [Color.RED]
    assert point("a").line == Line("a", Decimal("1.5"))


class Account(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    user_id: int = pydantic.Field(alias="userId")
    balance: Decimal

    @pydantic.computed_field  # type: ignore[prop-decorator]
    @property
    def overdrawn(self) -> bool:
        return self.balance < 0


def test_a_pydantic_model_with_aliases_and_computed_fields_replays() -> None:
    """The model was stored by field name with its computed fields and validated by alias on replay: every replay
    of a model with an alias, or with a computed field and ``extra="forbid"``, raised `ResultUnreadableError`."""
    runs: list[int] = []

    @idempotent_function(MemoryStore(), key="k", local_cache=False, operation="account")
    def account(k: str) -> Account:
        runs.append(1)
        return Account(userId=7, balance=Decimal("-1.50"))

    first = account("a")
    assert account("a") == first
    assert runs == [1]


class Charger:
    """A service object without ``__str__`` or ``__repr__``: its text is its memory address."""

    def __init__(self) -> None:
        self.runs = 0

    @idempotent_function(MemoryStore(), key="order_id", fingerprint="@", operation="charger.charge")
    def charge(self, order_id: str, amount: int) -> int:
        self.runs += 1
        return amount


def test_a_key_or_fingerprint_holding_an_object_known_only_by_its_address_is_invalid() -> None:
    """Such an object was hashed as ``<Charger object at 0x...>``: a method's ``fingerprint="@"`` (which holds
    ``self``) made the same retry from another instance, or another container, a `KeyReuseError`, and an object as
    the key made every call a new record, silently. Both are `InvalidKeyError` at the first call, before it runs."""
    charger = Charger()
    with pytest.raises(InvalidKeyError, match="address"):
        charger.charge("o-1", 5)
    runs, handler = counting_handler(MemoryStore(), key="k")
    with pytest.raises(InvalidKeyError, match="address"):
        handler({"k": object()}, None)
    assert (charger.runs, runs.count) == (0, 0)


def test_a_generator_function_is_refused_when_decorated() -> None:
    """A generator's body runs while its caller iterates, after the call returned: the record was COMPLETED with no
    result (a generator cannot be stored), the body ran outside the record, and replays raised
    `ResultNotStoredError`. It is a TypeError when decorated, as for any other misuse found there."""

    def numbers(k: str) -> Any:
        yield k

    async def async_numbers(k: str) -> Any:
        yield k

    for fn in (numbers, async_numbers):
        with pytest.raises(TypeError, match="generator"):
            idempotent_function(MemoryStore(), key="k", operation="gen")(fn)
        with pytest.raises(TypeError, match="generator"):
            idempotent(MemoryStore(), key="k", operation="gen")(fn)


def test_a_method_handler_reads_its_event_and_context_after_self(clock: FakeClock) -> None:
    """how-it-works: both decorators decorate "sync and async functions, methods included". `idempotent` read the
    key from the first argument, which for ``handle(self, event, context)`` is ``self``: every call was a
    `MissingKeyError` (with ``required=False``, every call ran unguarded). The event and the context are the arguments
    after ``self`` (or ``cls``): the key comes from the event, and the context's remaining time caps the lease."""
    store = MemoryStore()

    class Handler:
        runs = 0

        @idempotent(store, key="order_id", operation="method", clock=clock, renew=False)
        def handle(self, event: Any, context: Any) -> int:
            Handler.runs += 1
            with pytest.raises(InProgressError) as info:
                self.handle({"order_id": event["order_id"]}, Context(1000))
            assert info.value.retry_after == 5  # the remaining time of ``context`` (4 s) + 1 s margin
            return Handler.runs

        @idempotent(store, key="order_id", operation="async-method", clock=clock)
        async def handle_async(self, event: Any, context: Any) -> int:
            Handler.runs += 1
            return Handler.runs

        @classmethod
        @idempotent(store, key=lambda event: event["order_id"], operation="classmethod", clock=clock)
        def handle_class(cls, event: Any, context: Any) -> int:
            Handler.runs += 1
            return Handler.runs

    handler = Handler()
    assert handler.handle({"order_id": "o-1"}, Context(4000)) == 1
    assert handler.handle({"order_id": "o-1"}, Context(4000)) == 1
    assert asyncio.run(handler.handle_async({"order_id": "o-1"}, None)) == 2
    assert asyncio.run(handler.handle_async({"order_id": "o-1"}, None)) == 2
    assert Handler.handle_class({"order_id": "o-1"}, None) == 3
    assert Handler.handle_class(event={"order_id": "o-1"}, context=None) == 3
    assert Handler.runs == 3

    class Plain:
        def handle(self, event: Any, context: Any) -> str:
            return str(event["order_id"])

        @classmethod
        def handle_class(cls, event: Any, context: Any) -> str:
            return str(event["order_id"])

    # a bound method decorated (``idempotent(...)(Plain().handle)``) is called without its self: the event comes first
    for n, bound in enumerate((Plain().handle, Plain.handle_class)):
        decorated = idempotent(store, key="order_id", operation=f"bound-{n}", clock=clock)(bound)
        assert decorated({"order_id": "o-2"}, None) == decorated({"order_id": "o-2"}, None) == "o-2"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("fail_open", "false"),
        ("fail_open", 0),
        ("required", "no"),
        ("renew", None),
        ("local_cache", "256"),
        ("local_cache", 2.5),
        ("local_cache", None),
    ],
)
def test_an_option_of_the_wrong_type_is_refused_at_decoration(option: str, value: Any) -> None:
    """The options table gives ``fail_open``, ``required`` and ``renew`` as True/False and ``local_cache`` as a bool
    or a size. ``fail_open="false"`` (a string from a config file) is true: it was taken as is, and every call ran
    unguarded once the store failed; ``local_cache="256"`` failed with ``'<' not supported`` and 2.5 made a cache.
    Misconfiguration fails loudly, at decoration, naming the option."""
    for decorator in (idempotent, idempotent_function):
        with pytest.raises(TypeError, match=option):
            decorator(MemoryStore(), key="k", operation="op", **{option: value})(lambda k, c=None: k)
    if option != "required":  # the HTTP adapter's required= is whether the header must be sent (None: by method)
        with pytest.raises(TypeError, match=option):
            IdempotencyMiddleware(MemoryStore(), operation="op", **{option: value})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("key", None),
        ("key", 5),
        ("fingerprint", 5),
        ("scope", 5),
        ("serializer", object()),
        ("clock", None),
        ("store", None),
    ],
)
def test_a_hook_or_selector_that_cannot_serve_is_refused_at_decoration(option: str, value: Any) -> None:
    """A ``serializer=`` without dumps/loads was taken, then every result went unstored (the key COMPLETED, every
    replay `ResultNotStoredError`); ``key=None`` or a number made every call a `MissingKeyError`, which
    ``required=False`` turned into running every call unguarded; ``clock=None`` and ``store=None`` failed with a bare
    TypeError or AttributeError. Each is a `TypeError` naming what it takes, when the function is decorated."""
    runs: list[Any] = []
    for decorator in (idempotent, idempotent_function):
        options: dict[str, Any] = {"key": "k", "operation": "op", "required": False, option: value}
        store = options.pop("store", MemoryStore())
        with pytest.raises(TypeError, match=option):
            decorator(store, **options)(lambda k, c=None: runs.append(k))
    assert runs == []


def test_a_callable_without_a_qualified_name_needs_an_operation() -> None:
    """The default operation is the Lambda function's name + module + qualified name. A callable instance or a
    ``functools.partial`` has none of its own: decorating one without ``operation=`` was a bare AttributeError
    (``'C' object has no attribute '__qualname__'``). It is a TypeError that says to pass ``operation=`` (its type's
    name would be shared by every instance, each with its own records); with one, it works."""
    import functools

    class Handler:
        def __call__(self, event: Any, context: Any) -> str:
            return "ok"

    for target in (Handler(), functools.partial(lambda prefix, event, context: prefix, "ok")):
        for decorator in (idempotent, idempotent_function):
            with pytest.raises(TypeError, match="pass operation="):
                decorator(MemoryStore(), key="id")(target)
        handler = idempotent(MemoryStore(), key="id", operation="callable")(target)
        assert handler({"id": "x"}, None) == handler({"id": "x"}, None) == "ok"
