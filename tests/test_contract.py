"""The store contract: the same scenarios on MemoryStore, moto in-process, moto server and DynamoDB Local.

Each scenario drives the public decorators against a real store; time moves through an injected clock.
"""

from __future__ import annotations

import datetime
import os
from decimal import Decimal
from typing import Any

import pytest
from lambda_idempotency import (
    CachedFailureError,
    InProgressError,
    KeyReuseError,
    ResultNotStoredError,
    current,
    idempotent,
    idempotent_function,
)
from lambda_idempotency.record import Record, Status
from lambda_idempotency.stores.base import Store

from .conftest import FakeClock


class Counter:
    def __init__(self) -> None:
        self.runs = 0


def make(store: Store, clock: FakeClock, **options: Any) -> tuple[Counter, Any]:
    counter = Counter()
    options.setdefault("local_cache", False)
    options.setdefault("lease", 30)

    @idempotent_function(store, key="order_id", operation="charge", clock=clock, **options)
    def charge(order_id: str, amount: Any = 1) -> Any:
        counter.runs += 1
        return amount

    return counter, charge


def test_runs_once_and_replays_the_same_value(store: Store, clock: FakeClock) -> None:
    counter, charge = make(store, clock)
    assert charge("o-1", {"amount": 5, "items": [1, 2]}) == {"amount": 5, "items": [1, 2]}
    assert charge("o-1", {"amount": 5, "items": [1, 2]}) == {"amount": 5, "items": [1, 2]}
    assert counter.runs == 1
    assert charge("o-2", 7) == 7
    assert counter.runs == 2


@pytest.mark.parametrize("falsy", [None, 0, "", [], {}, False, 0.0])
def test_falsy_results_are_replayed_not_rerun(store: Store, clock: FakeClock, falsy: Any) -> None:
    counter, charge = make(store, clock)
    assert charge("o-1", falsy) == falsy
    replayed = charge("o-1", falsy)
    assert replayed == falsy
    assert type(replayed) is type(falsy)
    assert counter.runs == 1


def test_other_payload_under_same_key_is_key_reuse(store: Store, clock: FakeClock) -> None:
    counter, charge = make(store, clock, fingerprint="amount")
    charge("o-1", 5)
    with pytest.raises(KeyReuseError):
        charge("o-1", 6)
    assert charge("o-1", 5) == 5
    assert counter.runs == 1


def test_in_flight_key_raises_in_progress_with_retry_after(store: Store, clock: FakeClock) -> None:
    seen: list[Any] = []

    @idempotent_function(store, key="k", operation="slow", clock=clock, lease=30, local_cache=False)
    def slow(k: str) -> str:
        clock.advance(10)
        with pytest.raises(InProgressError) as info:
            slow(k)
        seen.append(info.value.retry_after)
        return "done"

    assert slow("a") == "done"
    assert seen == [21]  # lease 30 s + 1 s margin, 10 s already used


def test_expired_record_counts_as_absent(store: Store, clock: FakeClock) -> None:
    counter, charge = make(store, clock, ttl=60)
    charge("o-1", 1)
    clock.advance(59)
    charge("o-1", 1)
    assert counter.runs == 1
    clock.advance(2)  # past expires_at; the record is still in the table (TTL deletes late)
    assert charge("o-1", 2) == 2
    assert counter.runs == 2
    assert store.get(current_record_id(charge, "o-1")) is not None


def current_record_id(fn: Any, key: str) -> str:
    from lambda_idempotency.keys import record_id

    return record_id(fn.idempotency.operation, None, key)


def test_lease_expiry_allows_take_over_and_the_zombie_cannot_complete(store: Store, clock: FakeClock) -> None:
    runs: list[int] = []

    @idempotent_function(store, key="k", operation="job", clock=clock, lease=10, local_cache=False)
    def job(k: str, nested: bool = True) -> str:
        runs.append(current().attempt)
        if nested:
            clock.advance(12)  # this execution stalls past its lease; a retry takes it over
            assert job(k, nested=False) == "second"
            return "zombie"
        return "second"

    assert job("a") == "zombie"  # the zombie returns its own result (it already ran), with a warning
    assert runs == [1, 2]
    record = store.get(current_record_id(job, "a"))
    assert record is not None
    assert record.status is Status.COMPLETED
    assert job("a") == "second"  # the record stayed the new owner's


def test_exception_releases_the_key(store: Store, clock: FakeClock) -> None:
    attempts: list[int] = []

    @idempotent_function(store, key="k", operation="flaky", clock=clock, local_cache=False)
    def flaky(k: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return "ok"

    with pytest.raises(RuntimeError):
        flaky("a")
    assert store.get(current_record_id(flaky, "a")) is None
    assert flaky("a") == "ok"
    assert len(attempts) == 2


def test_base_exception_leaves_the_lease(store: Store, clock: FakeClock) -> None:
    attempts: list[int] = []

    @idempotent_function(store, key="k", operation="killed", clock=clock, lease=10, local_cache=False)
    def killed(k: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise KeyboardInterrupt  # as a Lambda timeout or a kill would end it
        return "ok"

    with pytest.raises(KeyboardInterrupt):
        killed("a")
    with pytest.raises(InProgressError):
        killed("a")
    clock.advance(12)
    assert killed("a") == "ok"
    assert len(attempts) == 2


class CardDeclinedError(Exception):
    pass


class NeedsTwoArgsError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)


def test_cached_errors_are_replayed_as_the_same_type(store: Store, clock: FakeClock) -> None:
    runs: list[int] = []

    @idempotent_function(store, key="k", operation="pay", clock=clock, cache_errors=(CardDeclinedError,))
    def pay(k: str) -> str:
        runs.append(1)
        raise CardDeclinedError(f"card of {k} declined")

    for _ in range(3):
        with pytest.raises(CardDeclinedError, match="card of a declined"):
            pay("a")
    assert runs == [1]


def test_cached_error_rebuilt_from_its_args_or_named(store: Store, clock: FakeClock) -> None:
    class Unbuildable(Exception):
        def __init__(self) -> None:
            super().__init__(object())

    @idempotent_function(store, key="k", operation="e", clock=clock, cache_errors=(NeedsTwoArgsError, Unbuildable))
    def fail(k: str) -> None:
        if k == "two":
            raise NeedsTwoArgsError(402, "declined")
        raise Unbuildable

    for _ in range(2):
        with pytest.raises(NeedsTwoArgsError) as info:
            fail("two")
        assert info.value.args == (402, "declined")
    with pytest.raises(Unbuildable):
        fail("odd")
    with pytest.raises(CachedFailureError) as replayed:
        fail("odd")
    assert "Unbuildable" in replayed.value.error_type


class InsufficientFundsError(Exception):
    """The usual custom exception: ``__init__`` takes other arguments than it gives ``Exception.__init__``."""

    def __init__(self, balance: Decimal) -> None:
        super().__init__(f"balance {balance} too low")
        self.balance = balance


def test_a_cached_error_replays_its_own_args_message_and_attributes(store: Store, clock: FakeClock) -> None:
    """The replay called ``InsufficientFundsError("balance 5 too low")``: its message became "balance balance 5 too
    low too low" and its ``balance`` that text, silently. Arguments JSON does not carry (a Decimal, a date) were
    replaced by the message. The replay now has the first error's args, message and attributes."""
    runs: list[int] = []

    @idempotent_function(
        store, key="k", operation="funds", clock=clock, cache_errors=(InsufficientFundsError, NeedsTwoArgsError)
    )
    def pay(k: str) -> None:
        runs.append(1)
        if k == "two":
            raise NeedsTwoArgsError(Decimal("10.00"), datetime.date(2026, 1, 2))
        raise InsufficientFundsError(Decimal("5.00"))

    for k in ("funds", "two"):
        raised = []
        for _ in range(3):
            with pytest.raises(Exception) as info:
                pay(k)
            raised.append(info.value)
        first, *replays = raised
        for replayed in replays:
            assert type(replayed) is type(first)
            assert replayed.args == first.args
            assert str(replayed) == str(first)
            assert vars(replayed) == vars(first)
    assert runs == [1, 1]


class GatewayError(Exception):
    def __init__(self, status: int, body: bytes = b"") -> None:
        super().__init__(status)
        self.status = status
        self.body = body  # the whole response, kept for the logs


def test_a_cached_error_with_a_huge_attribute_is_still_replayed_as_its_type(store: Store, clock: FakeClock) -> None:
    """Attributes are stored up to a bound: one the item cannot hold is left out, not the whole failure (which
    would replay as a `CachedFailureError` of type Exception)."""

    @idempotent_function(store, key="k", operation="gateway", clock=clock, cache_errors=(GatewayError,))
    def call(k: str) -> None:
        raise GatewayError(502, os.urandom(450_000))

    with pytest.raises(GatewayError):
        call("a")
    with pytest.raises(GatewayError) as replayed:
        call("a")
    assert (replayed.value.args, replayed.value.status, replayed.value.body) == ((502,), 502, b"")


class DeclinedError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"declined: {code}")
        self.code = code
        self.card = "4242424242424242"  # kept for the logs: nothing __init__ was given


def test_a_cached_error_stores_only_the_attributes_its_init_names(store: Store, clock: FakeClock) -> None:
    """What a caller gave the error (``code``) is stored with its args; what it picked up besides (a card number kept
    for the logs) is not: the table, the CLI and every replay would show it. The replay is still the same error."""

    @idempotent_function(store, key="k", operation="declined", clock=clock, cache_errors=(DeclinedError,))
    def pay(k: str) -> None:
        raise DeclinedError("do_not_honor")

    with pytest.raises(DeclinedError):
        pay("a")
    stored = store.get(current_record_id(pay, "a"))
    assert stored is not None and isinstance(stored.result, str)
    assert "do_not_honor" in stored.result and "4242424242424242" not in stored.result
    with pytest.raises(DeclinedError) as replayed:
        pay("a")
    assert (replayed.value.args, replayed.value.code) == (("declined: do_not_honor",), "do_not_honor")


class KeywordOnlyError(Exception):
    def __init__(self, *, code: int) -> None:
        super().__init__(f"code {code}")
        self.code = code


def test_a_cached_error_whose_init_refuses_its_args_is_rebuilt_from_all_it_stored(
    store: Store, clock: FakeClock
) -> None:
    """``KeywordOnlyError("code 3")`` raises TypeError, so its replay was a `CachedFailureError`: with its args and
    every attribute stored, it is made without running ``__init__``."""

    @idempotent_function(store, key="k", operation="kw", clock=clock, cache_errors=(KeywordOnlyError,))
    def fail(k: str) -> None:
        raise KeywordOnlyError(code=3)

    with pytest.raises(KeywordOnlyError):
        fail("a")
    with pytest.raises(KeywordOnlyError) as replayed:
        fail("a")
    assert (replayed.value.args, replayed.value.code, str(replayed.value)) == (("code 3",), 3, "code 3")


def test_big_results_are_compressed_and_replayed(store: Store, clock: FakeClock) -> None:
    counter, charge = make(store, clock)
    big = {"rows": [f"row-{i}" for i in range(20_000)]}  # ~250 KB of JSON, compresses well
    assert charge("o-1", big) == big
    assert charge("o-1", big) == big
    assert counter.runs == 1


def test_result_past_the_item_limit_is_never_rerun(store: Store, clock: FakeClock) -> None:
    counter, charge = make(store, clock)
    huge = os.urandom(450_000)  # incompressible, past DynamoDB's 400 KB item limit
    assert charge("o-1", huge) == huge
    for _ in range(2):
        with pytest.raises(ResultNotStoredError):
            charge("o-1", huge)
    assert counter.runs == 1


def test_unserialisable_result_completes_and_replays_a_typed_error(store: Store, clock: FakeClock) -> None:
    counter, charge = make(store, clock)
    thing = object()
    assert charge("o-1", thing) is thing
    with pytest.raises(ResultNotStoredError):
        charge("o-1", thing)
    assert counter.runs == 1


def test_scopes_keep_the_same_key_apart(store: Store, clock: FakeClock) -> None:
    calls: list[str] = []

    @idempotent_function(store, key="k", scope=lambda k, tenant: tenant, operation="t", clock=clock)
    def work(k: str, tenant: str) -> str:
        calls.append(tenant)
        return tenant

    assert work("same", "alice") == "alice"
    assert work("same", "bob") == "bob"
    assert work("same", "alice") == "alice"
    assert calls == ["alice", "bob"]


def test_handler_decorator_replays_by_event_key(store: Store, clock: FakeClock) -> None:
    runs: list[str] = []

    @idempotent(store, key="json(body).order_id", fingerprint="json(body)", operation="orders", clock=clock)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs.append(current().key)
        return {"statusCode": 201}

    event = {"body": '{"order_id": "o-9", "amount": 3}', "headers": {"x": "1"}}
    assert handler(event, None) == {"statusCode": 201}
    retry = {"body": '{"amount": 3, "order_id": "o-9"}', "headers": {"x": "2"}}
    assert handler(retry, None) == {"statusCode": 201}
    assert runs == ["o-9"]


def test_resent_claim_that_landed_is_ours(store: Store, clock: FakeClock) -> None:
    """botocore resends a request whose response was lost: the refused condition shows our own owner token."""
    from lambda_idempotency.stores.base import ClaimRequest

    now_ms = int(clock() * 1000)
    request = ClaimRequest("op#x", "me", "x", None, None, now_ms, now_ms + 10_000, now_ms // 1000 + 60)
    assert store.claim(request) is None
    refused = store.claim(request)
    assert refused is not None
    assert refused.current is not None
    assert refused.current.owner == "me"
    finished = Record("op#x", Status.COMPLETED, "me", now_ms // 1000 + 60, key="x", result="1")
    assert store.finish(finished) is None
    again = store.finish(finished)
    assert again is not None and again.current is not None
    assert again.current.owner == "me"
    assert again.current.status is Status.COMPLETED


def test_the_finished_record_keeps_what_the_claimed_one_held(store: Store, clock: FakeClock) -> None:
    """The completion writes the finished record whole in place of the claimed one (a PutItem on DynamoDB): the key,
    fingerprint, attempt count, claim time and saved steps outlive it; the lease does not."""
    claimed_at = int(clock())

    @idempotent_function(store, key="k", fingerprint="amount", operation="keep", clock=clock, local_cache=False)
    def pay(k: str, amount: int) -> str:
        current().step("charge", lambda: f"ch-{amount}")
        clock.advance(5)
        return "paid"

    assert pay("o-1", 3) == "paid"
    record = store.get(pay.idempotency.record_id_of(None, "o-1"))
    assert record is not None
    assert (record.status, record.key, record.attempts) == (Status.COMPLETED, "o-1", 1)
    assert record.fingerprint is not None
    assert (record.created_at, record.completed_at) == (claimed_at, claimed_at + 5)
    assert list(record.steps) == ["charge"]
    assert record.lease_expires_at is None
    assert pay("o-1", 3) == "paid"


def test_a_status_made_from_its_text_is_the_constant_itself() -> None:
    """The engine, the completion, the caches and the stores compare statuses by identity: one made from its text
    (a custom store, a copy, a pickle) must be the constant, as an enum member would be, and unknown text refused."""
    import copy
    import pickle

    from lambda_idempotency.record import STATUSES

    for status in STATUSES:
        assert Status(status.value) is status and Status(str(status)) is status
        assert copy.deepcopy(status) is status and pickle.loads(pickle.dumps(status)) is status
    with pytest.raises(ValueError, match="not a record status"):
        Status("DONE")


def test_an_insert_replaces_only_the_crashed_claim_it_read(store: Store, clock: FakeClock) -> None:
    """Optimistic mode's insert in place of a crashed claim (`replacing=`) lands only while that claim is still there
    as it was read: the same owner, IN_PROGRESS, its lease ended at the inserter's now. A claim taken over since, or
    one whose lease still runs, refuses it."""
    from lambda_idempotency.stores.base import ClaimRequest

    now_ms = int(clock() * 1000)
    crashed = ClaimRequest("op#r", "crashed", "r", None, None, now_ms, now_ms + 1000, now_ms // 1000 + 3600)
    assert store.claim(crashed) is None
    read = store.get("op#r")
    assert read is not None
    mine = Record(
        "op#r", Status.COMPLETED, "mine", now_ms // 1000 + 3600, key="r", result="1", completed_at=now_ms // 1000
    )
    assert store.insert_finished(mine, (), replacing=read) is not None  # its lease still runs
    later_s = now_ms // 1000 + 2
    other = Record("op#r", Status.COMPLETED, "mine", later_s + 3600, key="r", result="1", completed_at=later_s)
    stale = read.replace(owner="someone-before")
    assert store.insert_finished(other, (), replacing=stale) is not None  # not the claim that is there
    assert store.get("op#r") == read
    assert store.insert_finished(other, (), replacing=read) is None
    assert store.get("op#r") == other
