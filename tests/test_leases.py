"""Leases (DESIGN.md, "Leases"): renewed in the background, lost once refused, a fence before every step.

Renewals run on the real clock, so these tests use leases of about a second and functions a few leases long; they
wait for events (a renewal, a lost lease) with generous time-outs and never assert how long anything took.
A test clock (`FakeClock`) moves time instead where the point is what a resumed process sees.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from lambda_idempotency import InProgressError, LeaseLostError, MemoryStore, current, idempotent, idempotent_function
from lambda_idempotency.keys import record_id
from lambda_idempotency.lease import LEASE_MARGIN_MS, Lease
from lambda_idempotency.record import Status
from lambda_idempotency.stores.base import ClaimRequest
from lambda_idempotency.stores.dynamodb import DynamoDBStore

from .conftest import FakeClock, client_of, http_client, new_dynamodb_store
from .faults import Fault, FaultInjector

LEASE_S = 1.0
"""Short enough that a function several leases long takes seconds; long enough for a loaded machine's scheduler."""
PATIENCE_S = 30.0
ON_MOTO = pytest.mark.parametrize("dynamodb_store", ["moto"], indirect=True)
"""Real-clock tests count calls on moto in-process; tests/test_lease_processes.py runs workers on DynamoDB Local."""


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_for_renewal(past_ms: float = 0, what: str = "a renewal") -> Lease:
    """The running execution's lease, once a renewal has moved its end past the first one (plus ``past_ms``)."""
    lease = current().lease
    assert lease is not None
    first_end = lease.expires_at_ms
    wait_for(lambda: lease.expires_at_ms > first_end + past_ms, what)
    return lease


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def renewals(calls: list[str]) -> int:
    """UpdateItems before the completion (the last call, the finished record's PutItem)."""
    return calls[:-1].count("UpdateItem")


@ON_MOTO
def test_a_function_several_leases_long_is_renewed_and_never_taken_over(
    dynamodb_store: DynamoDBStore, count_calls: Any
) -> None:
    duplicates: list[str] = []

    @idempotent_function(dynamodb_store, key="k", operation="long", lease=LEASE_S, local_cache=False)
    def long_job(k: str, duplicate: bool = False) -> str:
        if duplicate:
            duplicates.append("ran")
            return "duplicate"
        wait_for_renewal(2 * LEASE_S * 1000, "two leases' worth of renewals")
        for _ in range(3):  # duplicates sent while it runs, each after the first lease has passed
            with pytest.raises(InProgressError):
                long_job(k, duplicate=True)
        return "done"

    counter = count_calls(dynamodb_store.client)
    assert long_job("a") == "done"
    assert duplicates == []
    assert renewals(counter.calls) >= 2
    assert counter.calls[0] == "PutItem" and counter.calls[-1] == "PutItem"


@ON_MOTO
def test_renewals_stop_before_the_handler_returns(dynamodb_store: DynamoDBStore, count_calls: Any) -> None:
    @idempotent_function(dynamodb_store, key="k", operation="stops", lease=LEASE_S, local_cache=False)
    def job(k: str) -> str:
        wait_for_renewal()
        if k == "fails":
            raise RuntimeError("after a renewal")
        return "done"

    counter = count_calls(dynamodb_store.client)
    assert job("ok") == "done"
    with pytest.raises(RuntimeError):
        job("fails")
    calls = list(counter.calls)
    time.sleep(2 * LEASE_S)  # six renewal periods: a renewal still scheduled would have been sent by now
    assert counter.calls == calls
    assert calls[-1] == "DeleteItem"  # the failure's release was the last call


@ON_MOTO
def test_a_short_function_makes_no_renewal_and_renew_false_never_renews(
    dynamodb_store: DynamoDBStore, count_calls: Any
) -> None:
    from lambda_idempotency.renewer import renewer

    # Short next to its lease whatever the machine's load: with a 1 s lease the first renewal is due 0.33 s after the
    # claim, and a loaded machine could stall the call that long between its claim and its completion.
    @idempotent_function(dynamodb_store, key="k", operation="short", lease=30 * LEASE_S, local_cache=False)
    def short(k: str) -> str:
        return k

    @idempotent_function(dynamodb_store, key="k", operation="whole", lease=LEASE_S, renew=False, local_cache=False)
    def unrenewed(k: str) -> str:
        time.sleep(2 * LEASE_S / 3)  # two renewal periods: renewed, it would have renewed
        return k

    counter = count_calls(dynamodb_store.client)
    assert short("a") == "a"
    assert not [lease for lease in renewer()._held if lease.record_id == record_id("short", None, "a")]  # none to come
    assert unrenewed("a") == "a"
    assert counter.calls == ["PutItem", "PutItem", "PutItem", "PutItem"]  # claim, complete, twice


def test_the_invocations_remaining_time_caps_the_renewals() -> None:
    store = MemoryStore()
    ends: list[int] = []

    @idempotent(store, key="k", operation="capped", lease=LEASE_S, local_cache=False)
    def handler(event: Any, context: Any) -> int:
        started_ms = time.time() * 1000
        lease = wait_for_renewal()
        time.sleep(1.5 + LEASE_S)  # past the invocation's deadline, by three renewal periods: none may pass the cap
        ends.append(lease.expires_at_ms)
        return int(started_ms)

    started_ms = handler({"k": "a"}, Context(1_500))
    assert ends[0] <= started_ms + 1_500 + LEASE_MARGIN_MS  # the deadline (from before the start) + the margin


def test_a_process_resumed_past_its_lease_runs_no_step_and_commits_nothing(clock: FakeClock) -> None:
    """A frozen process resumes between two steps after another execution completed the key: the fence renews
    first, is refused, and raises before the step's function runs; nothing after it is sent."""
    store = MemoryStore()
    effects: list[str] = []

    @idempotent_function(store, key="k", operation="frozen", clock=clock, lease=10, local_cache=False)
    def job(k: str, taker: bool = False) -> str:
        if taker:
            return "taker"
        current().step("one", lambda: effects.append("one"))
        clock.advance(12)  # frozen past its lease (as the epoch clock sees it), and another completes the key
        assert job(k, taker=True) == "taker"
        current().step("two", lambda: effects.append("two"))
        return "zombie"

    with pytest.raises(LeaseLostError, match="step 'two' did nothing"):
        job("a")
    assert effects == ["one"]
    record = store.get(record_id("frozen", None, "a"))
    assert record is not None and record.status is Status.COMPLETED
    assert job("a") == "taker"


def test_the_fence_renews_a_lease_close_to_its_end_and_then_runs_the_step(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    @idempotent_function(dynamodb_store, key="k", operation="fence", clock=clock, lease=9, local_cache=False)
    def job(k: str) -> str:
        clock.advance(7)  # 2 s of the lease's 9 left (less than a renewal period): the fence renews first
        return current().step("late", lambda: "ran")

    counter = count_calls(dynamodb_store.client)
    assert job("a") == "ran"
    assert counter.calls == ["PutItem", "UpdateItem", "UpdateItem", "PutItem"]  # claim, renewal, step, complete


@ON_MOTO
def test_a_renewal_refused_in_the_background_stops_the_next_write_step_and_completion(
    dynamodb_store: DynamoDBStore, count_calls: Any
) -> None:
    rid = record_id("refused", None, "a")
    effects: list[str] = []

    @idempotent_function(dynamodb_store, key="k", operation="refused", lease=LEASE_S, local_cache=False)
    def job(k: str) -> str:
        lease = current().lease
        assert lease is not None
        take_over_from(dynamodb_store, rid, lease.owner)  # another owner now holds the record
        wait_for(lambda: lease.lost is not None, "the renewal to be refused")
        calls = len(counter.calls)
        for attempt in (
            lambda: current().write({"Put": {"TableName": "t", "Item": {"id": {"S": k}}}}),
            lambda: current().step("effect", lambda: effects.append("ran")),
            current().heartbeat,
        ):
            with pytest.raises(LeaseLostError, match="did nothing"):
                attempt()
        assert len(counter.calls) == calls  # nothing was sent
        return "zombie"

    counter = count_calls(dynamodb_store.client)
    with pytest.raises(LeaseLostError, match="the completion did nothing"):
        job("a")
    assert effects == []
    record = dynamodb_store.get(rid)
    assert record is not None and record.owner == "taker" and record.status is Status.IN_PROGRESS


def take_over_from(store: DynamoDBStore, rid: str, owner: str) -> None:
    """Another execution takes the record over, as one with a clock far ahead would see its lease passed."""
    found = store.get(rid)
    assert found is not None and found.owner == owner
    later_ms = (found.lease_expires_at or 0) + 1
    request = ClaimRequest(rid, "taker", "a", None, None, later_ms, later_ms + 60_000, later_ms // 1000 + 3600)
    taken = store.take_over(request, found)
    assert not hasattr(taken, "current"), taken


@pytest.mark.parametrize("backend", ["moto_server"])
def test_a_store_down_until_the_lease_ends_marks_the_execution_lost(
    request: pytest.FixtureRequest, backend: str
) -> None:
    with client_of(request, backend) as shared:
        table = new_dynamodb_store(shared).table_name
    client = http_client(request.getfixturevalue("moto_endpoint"))
    store = DynamoDBStore(table, client=client)
    injector = FaultInjector(client, "heartbeat", Fault.SERVER_ERROR, times=None)  # every renewal fails
    effects: list[str] = []

    @idempotent_function(store, key="k", operation="down", lease=LEASE_S, local_cache=False)
    def job(k: str) -> str:
        lease = current().lease
        assert lease is not None
        wait_for(lambda: lease.lost is not None, "the lease to be lost")
        with pytest.raises(LeaseLostError, match="no renewal landed"):
            current().step("effect", lambda: effects.append("ran"))
        return "late"

    with pytest.raises(LeaseLostError):
        job("a")
    assert effects == []
    assert injector.injected >= 1


@ON_MOTO
def test_an_async_function_is_renewed_while_it_awaits(dynamodb_store: DynamoDBStore, count_calls: Any) -> None:
    @idempotent_function(dynamodb_store, key="k", operation="async-long", lease=LEASE_S, local_cache=False)
    async def job(k: str, duplicate: bool = False) -> str:
        if duplicate:
            return "duplicate"
        lease = current().lease
        assert lease is not None
        first_end = lease.expires_at_ms
        while lease.expires_at_ms <= first_end + 2 * LEASE_S * 1000:  # two leases' worth of renewals
            await asyncio.sleep(0.05)
        with pytest.raises(InProgressError):
            await job(k, duplicate=True)
        return "done"

    counter = count_calls(dynamodb_store.client)
    assert asyncio.run(asyncio.wait_for(job("a"), PATIENCE_S)) == "done"
    assert renewals(counter.calls) >= 2


@ON_MOTO
def test_leases_of_concurrent_executions_are_renewed_by_one_thread(dynamodb_store: DynamoDBStore) -> None:

    @idempotent_function(dynamodb_store, key="k", operation="many", lease=LEASE_S, local_cache=False)
    def job(k: str) -> int:
        wait_for_renewal()
        return sum(t.name == "lambda-idempotency-renewer" for t in threading.enumerate())

    results: list[int] = []
    workers = [threading.Thread(target=lambda k=k: results.append(job(k))) for k in "abcd"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results == [1, 1, 1, 1]


@ON_MOTO
def test_a_short_lease_held_while_the_renewer_sleeps_for_a_long_one_is_renewed_in_time(
    dynamodb_store: DynamoDBStore,
) -> None:
    """Holding a lease takes no lock: the renewer thread sleeps until the earliest lease it knows is due, so a lease
    due sooner must wake it (renewer.py). Without that, the short lease would lapse while the thread slept."""
    long_running, short_done = threading.Event(), threading.Event()

    @idempotent_function(dynamodb_store, key="k", operation="sleepy", lease=60.0, local_cache=False)
    def long_job(k: str) -> str:
        long_running.set()
        assert short_done.wait(PATIENCE_S)
        return "long"

    @idempotent_function(dynamodb_store, key="k", operation="urgent", lease=LEASE_S, local_cache=False)
    def short_job(k: str) -> float:
        lease = current().lease
        assert lease is not None
        first_end, least_left = lease.expires_at_ms, lease.left_ms()
        while lease.expires_at_ms == first_end:
            least_left = min(least_left, lease.left_ms())
            assert least_left > 0, "the lease lapsed before its first renewal"
            time.sleep(0.01)
        return least_left

    worker = threading.Thread(target=lambda: long_job("a"))
    worker.start()
    try:
        assert long_running.wait(PATIENCE_S)
        time.sleep(0.2)  # the renewer is asleep now, until the long lease's first renewal 20 s on
        assert short_job("b") > 0
    finally:
        short_done.set()
        worker.join()


def test_short_calls_leave_nothing_held_in_the_renewer() -> None:
    """A call that ends before its first renewal is forgotten at once: the renewer keeps no lease of a finished
    execution (many short calls must not pile up until their renewals would have been due)."""
    from lambda_idempotency.renewer import renewer

    @idempotent_function(MemoryStore(), key="k", operation="short", local_cache=False)
    def short(k: str) -> str:
        assert current().lease in renewer()._held
        return k

    for i in range(200):
        short(str(i))
    assert not [lease for lease in renewer()._held if lease.record_id.startswith("short#")]
