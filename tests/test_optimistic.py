"""Optimistic mode: no claim; the finished record and the writes go in one transaction, and one racer commits.

The 32-thread race runs on DynamoDB Local, on moto's server and on moto in-process, the moto ones with item
operations serialised by `lambda_idempotency.testing` (plain moto 5.2.5 does not serialise writes to an item).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from lambda_idempotency import InProgressError, KeyReuseError, WriteConditionError, current, idempotent_function
from lambda_idempotency.keys import record_id
from lambda_idempotency.record import Status
from lambda_idempotency.stores.base import ClaimRequest, Refused, Store
from lambda_idempotency.stores.dynamodb import DynamoDBStore

from .conftest import DYNAMODB_BACKENDS, FakeClock, client_of, new_business_table, new_dynamodb_store
from .test_fenced_commit import balance, credit, new_payment

THREADS = 32


def test_first_execution_costs_one_round_trip_and_a_duplicate_replays_the_winner(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)
    runs: list[int] = []

    @idempotent_function(dynamodb_store, key="k", operation="opt", clock=clock, mode="optimistic", local_cache=False)
    def add(k: str) -> int:
        runs.append(1)
        current().write(credit(table, "acct", 10))
        return len(runs)

    counter = count_calls(client)
    assert add("a") == 1
    assert counter.calls == ["TransactWriteItems"]
    counter.reset()
    clock.advance(3600)  # long after the completion: optimistic mode reads nothing first, so the body runs again
    assert add("a") == 1  # ran again (optimistic), lost the commit, returned the stored result
    assert counter.calls == ["TransactWriteItems"]
    assert runs == [1, 1]
    assert balance(client, table, "acct") == 10
    record = dynamodb_store.get(record_id("opt", None, "a"))
    assert record is not None and record.status is Status.COMPLETED


def test_without_writes_on_every_store(store: Store, clock: FakeClock) -> None:
    runs: list[str] = []

    @idempotent_function(store, key="k", operation="plain", clock=clock, mode="optimistic", local_cache=False)
    def work(k: str, n: int) -> int:
        runs.append(k)
        return n

    assert work("a", 1) == 1
    assert work("a", 2) == 1
    clock.advance(24 * 3600 + 1)  # the record expired: the next commit wins again
    assert work("a", 3) == 3


@pytest.mark.parametrize("backend", DYNAMODB_BACKENDS)
def test_32_threads_racing_commit_once_and_all_return_the_winners_result(
    request: pytest.FixtureRequest, backend: str
) -> None:
    with client_of(request, backend) as client:
        store = new_dynamodb_store(client)
        table = new_business_table(client)
        barrier = threading.Barrier(THREADS)

        @idempotent_function(store, key="k", operation="race", mode="optimistic", local_cache=False)
        def transfer(k: str, racer: int) -> str:
            current().write(credit(table, "acct", 1))
            current().write(new_payment(table, f"pay-{k}"))
            barrier.wait()  # all 32 have computed before any commits
            return f"racer-{racer}"

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            results = list(pool.map(lambda i: transfer("k", i), range(THREADS)))

        assert len(set(results)) == 1  # every loser returned the winner's result
        assert balance(client, table, "acct") == 1  # one commit
        record = store.get(record_id("race", None, "k"))
        assert record is not None and record.status is Status.COMPLETED


def test_a_failing_write_condition_commits_nothing(dynamodb_store: DynamoDBStore, clock: FakeClock) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)
    client.put_item(TableName=table, Item={"id": {"S": "pay-taken"}})

    @idempotent_function(dynamodb_store, key="k", operation="optc", clock=clock, mode="optimistic")
    def pay(k: str, payment_id: str) -> str:
        current().write(new_payment(table, payment_id))
        current().write(credit(table, "acct", 3))
        return payment_id

    with pytest.raises(WriteConditionError, match="write #0") as info:
        pay("a", "pay-taken")
    assert info.value.failed == ((0, "Put", table),)
    assert dynamodb_store.get(record_id("optc", None, "a")) is None
    assert pay("a", "pay-new") == "pay-new"
    assert balance(client, table, "acct") == 3


class DeclinedError(Exception):
    pass


def test_a_loser_with_another_payload_and_declared_failures(store: Store, clock: FakeClock) -> None:
    @idempotent_function(
        store,
        key="k",
        fingerprint="amount",
        operation="optf",
        clock=clock,
        mode="optimistic",
        cache_errors=(DeclinedError,),
        local_cache=False,
    )
    def pay(k: str, amount: int) -> int:
        if amount < 0:
            raise DeclinedError("negative")
        return amount

    assert pay("a", 5) == 5
    with pytest.raises(KeyReuseError):
        pay("a", 6)
    with pytest.raises(DeclinedError):
        pay("b", -1)
    with pytest.raises(DeclinedError):
        pay("b", -1)
    record = store.get(record_id("optf", None, "b"))
    assert record is not None and record.status is Status.FAILED


@pytest.mark.parametrize("is_async", [False, True])
def test_a_loser_whose_function_raised_a_declared_failure_replays_the_winner(
    store: Store, clock: FakeClock, is_async: bool
) -> None:
    """ "Only the first commit counts (...) a later call returns the first result": a racer whose function raised a
    declared failure (``cache_errors``) lost the insert of its FAILED record to the winner's COMPLETED one and still
    raised its own failure, though the key's outcome is the winner's result (its retry got that). It replays the
    winner, as a loser whose function returned does."""
    import asyncio

    running, committed = threading.Event(), threading.Event()

    def decide(funds: int) -> str:
        if funds < 0:  # the loser: it decides once the winner has committed
            running.set()
            committed.wait(10)
            raise DeclinedError("no funds")
        return f"paid {funds}"

    options: dict[str, Any] = {"key": "k", "operation": "optdecl", "clock": clock, "local_cache": False}
    if is_async:

        @idempotent_function(store, mode="optimistic", cache_errors=(DeclinedError,), **options)
        async def pay_async(k: str, funds: int) -> str:
            return decide(funds)

        def pay(k: str, funds: int) -> str:
            return asyncio.run(pay_async(k, funds))

    else:

        @idempotent_function(store, mode="optimistic", cache_errors=(DeclinedError,), **options)
        def pay(k: str, funds: int) -> str:
            return decide(funds)

    outcome: list[Any] = []

    def lose() -> None:
        try:
            outcome.append(pay("a", -1))
        except DeclinedError as exc:
            outcome.append(exc)

    loser = threading.Thread(target=lose)
    loser.start()
    assert running.wait(10)
    assert pay("a", 5) == "paid 5"  # the winner commits first
    committed.set()
    loser.join(10)
    assert outcome == ["paid 5"]
    record = store.get(record_id("optdecl", None, "a"))
    assert record is not None and record.status is Status.COMPLETED


def _crashed_claim(store: Store, clock: FakeClock, operation: str, key: str) -> str:
    """The record a claim-mode execution of ``operation`` leaves when its process is killed: IN_PROGRESS, 1 s lease."""
    now_ms = int(clock() * 1000)
    rid = record_id(operation, None, key)
    assert (
        store.claim(ClaimRequest(rid, "crashed", key, None, None, now_ms, now_ms + 1000, now_ms // 1000 + 86400))
        is None
    )
    return rid


def test_an_optimistic_call_commits_in_place_of_a_claim_that_crashed(store: Store, clock: FakeClock) -> None:
    """A function switched to optimistic mode meets a key its claim-mode version claimed before it was killed. While
    that lease lives the call answers in progress; once it has ended, the call commits in the crashed claim's place
    (it answered in progress until the record expired, 24 h later), and the crashed claim can no longer finish."""
    rid = _crashed_claim(store, clock, "switched", "a")
    runs: list[str] = []

    @idempotent_function(store, key="k", operation="switched", clock=clock, mode="optimistic", local_cache=False)
    def work(k: str) -> int:
        runs.append(k)
        return len(runs)

    with pytest.raises(InProgressError):
        work("a")
    clock.advance(2)
    assert work("a") == 2
    record = store.get(rid)
    assert record is not None and record.status is Status.COMPLETED and record.owner != "crashed"
    assert work("a") == 2  # ran again (optimistic mode), lost, returned the committed result
    crashed_finish = record.replace(owner="crashed")
    assert isinstance(store.finish(crashed_finish), Refused)
    assert store.get(rid) == record


def test_the_writes_of_an_optimistic_call_replacing_a_crashed_claim_commit_once(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)
    _crashed_claim(dynamodb_store, clock, "switched-writes", "a")
    clock.advance(2)

    @idempotent_function(
        dynamodb_store, key="k", operation="switched-writes", clock=clock, mode="optimistic", local_cache=False
    )
    def add(k: str) -> str:
        current().write(credit(table, "acct", 10))
        return "credited"

    assert add("a") == "credited" and add("a") == "credited"
    assert balance(client, table, "acct") == 10
