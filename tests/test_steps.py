"""Steps (recovery points), derived keys and heartbeats, on every backend (DESIGN.md, "Steps")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from lambda_idempotency import (
    InProgressError,
    InvalidStepError,
    InvalidWriteError,
    LeaseLostError,
    ModeError,
    NoActiveExecutionError,
    ResultNotStoredError,
    current,
    idempotent_function,
)
from lambda_idempotency.keys import record_id
from lambda_idempotency.record import Status
from lambda_idempotency.stores.base import Store
from lambda_idempotency.stores.dynamodb import DynamoDBStore

from .conftest import FakeClock, new_business_table


class Crash(BaseException):
    """A Lambda timeout: nothing after it runs, not even `except Exception`."""


@dataclass(frozen=True)
class Charge:
    id: str
    amount: int


def test_a_saved_step_is_not_run_again_after_a_crash(store: Store, clock: FakeClock) -> None:
    charges: list[str] = []

    def charge(amount: int) -> Charge:
        charges.append(current().derived_key("charge"))
        return Charge(id=f"ch-{len(charges)}", amount=amount)

    @idempotent_function(store, key="k", operation="steps", clock=clock, lease=10, local_cache=False)
    def pay(k: str) -> tuple[Charge, int]:
        done = current().step("charge", charge, 5)
        if current().attempt == 1:
            raise Crash
        return done, current().attempt

    with pytest.raises(Crash):
        pay("a")
    with pytest.raises(InProgressError):
        pay("a")  # the lease of the crashed execution is still live
    clock.advance(12)
    result, attempt = pay("a")
    assert result == Charge(id="ch-1", amount=5)  # the saved step, rebuilt as its annotated type
    assert attempt == 2
    assert len(charges) == 1


def test_a_released_key_keeps_its_steps_and_the_retry_resumes_them(store: Store, clock: FakeClock) -> None:
    runs: list[str] = []

    @idempotent_function(store, key="k", operation="resume", clock=clock, local_cache=False)
    def work(k: str, fail: bool) -> tuple[str, str]:
        first = current().step("first", lambda: runs.append("first") or "one")
        if fail:
            raise RuntimeError("transient")
        second = current().step("second", lambda: runs.append("second") or "two")
        return first, second

    with pytest.raises(RuntimeError):
        work("a", True)
    record = store.get(record_id("resume", None, "a"))
    assert record is not None and set(record.steps) == {"first"}  # released by ending its lease, not deleted
    assert work("a", False) == ("one", "two")  # no wait: the lease was ended
    assert runs == ["first", "second"]


def test_steps_of_an_expired_record_are_not_resumed(store: Store, clock: FakeClock) -> None:
    runs: list[int] = []

    @idempotent_function(store, key="k", operation="expired", clock=clock, ttl=60, lease=10, local_cache=False)
    def work(k: str) -> int:
        value = current().step("s", lambda: runs.append(1) or len(runs))
        if len(runs) == 1:
            raise Crash
        return value

    with pytest.raises(Crash):
        work("a")
    clock.advance(61)  # past expires_at: the record counts as absent, its steps with it
    assert work("a") == 2
    assert runs == [1, 1]


def test_the_derived_key_is_stable_across_attempts_and_distinct_per_name_and_key(
    store: Store, clock: FakeClock
) -> None:
    seen: list[tuple[str, str]] = []

    @idempotent_function(store, key="k", operation="derive", clock=clock, lease=10, local_cache=False)
    def work(k: str) -> None:
        seen.append((current().derived_key("charge"), current().derived_key("refund")))
        if len(seen) == 1:
            raise Crash

    with pytest.raises(Crash):
        work("a")
    clock.advance(12)
    work("a")
    work("b")
    assert seen[0] == seen[1]
    assert len({*seen[0], *seen[2]}) == 4


def test_heartbeat_extends_the_lease_and_fails_once_taken_over(store: Store, clock: FakeClock) -> None:
    retry_after: list[int] = []

    @idempotent_function(store, key="k", operation="beat", clock=clock, lease=10, local_cache=False)
    def long_job(k: str, inner: bool = False) -> str:
        if inner:
            return "taken over"
        clock.advance(8)
        current().heartbeat()  # a fresh 10 s (+ 1 s margin) from now
        clock.advance(8)
        with pytest.raises(InProgressError) as info:
            long_job(k, inner=True)
        retry_after.append(info.value.retry_after)
        clock.advance(4)  # now past the extended lease: another execution takes over
        assert long_job(k, inner=True) == "taken over"
        with pytest.raises(LeaseLostError):
            current().heartbeat()
        with pytest.raises(LeaseLostError):
            current().step("late", lambda: late_steps.append("ran"))
        return "zombie"

    late_steps: list[str] = []
    with pytest.raises(LeaseLostError, match="the completion did nothing"):  # lost once: nothing more is sent
        long_job("a")
    assert late_steps == []  # the lost lease stops the step before its function runs
    assert retry_after == [3]
    assert long_job("a") == "taken over"


def test_write_inside_a_step_is_refused(store: Store, clock: FakeClock) -> None:
    @idempotent_function(store, key="k", operation="stepwrite", clock=clock)
    def work(k: str) -> None:
        current().step("s", lambda: current().write({"Put": {"TableName": "t", "Item": {"id": {"S": k}}}}))

    with pytest.raises(InvalidWriteError, match="inside step 's'"):
        work("a")


def test_steps_and_heartbeat_need_claim_mode(store: Store, clock: FakeClock) -> None:
    @idempotent_function(store, key="k", operation="opt", clock=clock, mode="optimistic")
    def work(k: str, what: str) -> Any:
        if what == "step":
            return current().step("s", lambda: 1)
        return current().heartbeat()

    for what in ("step", "heartbeat"):
        with pytest.raises(ModeError, match="mode='claim'"):
            work("a", what)


def test_a_step_must_be_a_plain_function(store: Store, clock: FakeClock) -> None:
    async def fetch() -> int:
        return 1

    @idempotent_function(store, key="k", operation="asyncstep", clock=clock)
    def work(k: str) -> int:
        return current().step("fetch", fetch)

    with pytest.raises(ModeError, match="plain"):
        work("a")
    assert store.get(record_id("asyncstep", None, "a")) is None


def test_a_step_saved_just_before_a_take_over_is_inherited_not_rerun(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    """The take-over returns the record as it took it over: a step the old owner saved after the refused claim was
    read (and before the take-over landed) is not run again."""
    runs: list[str] = []

    @idempotent_function(dynamodb_store, key="k", operation="late-step", clock=clock, lease=10, local_cache=False)
    def work(k: str) -> str:
        if current().attempt == 1:
            raise Crash
        return current().step("s", lambda: runs.append("ran") or "fresh")

    with pytest.raises(Crash):
        work("a")
    rid = record_id("late-step", None, "a")
    zombie = dynamodb_store.get(rid)
    assert zombie is not None
    updates: list[str] = []

    def zombie_saves_its_step_before_the_take_over(**_: Any) -> None:
        updates.append("UpdateItem")
        if len(updates) == 1:  # the claim (a PutItem) was refused; the take-over is about to be sent
            assert dynamodb_store.save_step(rid, zombie.owner, "s", '"from the old owner"', first=True) is None

    clock.advance(12)
    event = "before-call.dynamodb.UpdateItem"
    dynamodb_store.client.meta.events.register(event, zombie_saves_its_step_before_the_take_over)
    try:
        assert work("a") == "from the old owner"
    finally:
        dynamodb_store.client.meta.events.unregister(event, zombie_saves_its_step_before_the_take_over)
    assert runs == []


def test_a_step_name_that_is_not_valid_unicode_is_a_value_error_and_frees_the_key(
    dynamodb_store: DynamoDBStore,
) -> None:
    """A lone surrogate in a step name failed the step's save on every backend as an outage: the key stayed in flight
    until its lease ended (InProgressError to every retry). It is refused as bad input before anything is sent."""
    runs: list[int] = []

    @idempotent_function(dynamodb_store, key="k", operation="bad-step", local_cache=False)
    def work(k: str, step: str) -> int:
        runs.append(1)
        return current().step(step, lambda: 7)

    with pytest.raises(ValueError, match="valid Unicode"):
        work("a", "charge-\ud800")
    assert work("a", "charge") == 7  # the key was released, not left in flight
    assert runs == [1, 1]


def test_a_step_name_used_twice_in_one_execution_is_refused_before_the_second_runs(
    store: Store, clock: FakeClock
) -> None:
    """``step("charge", ...)`` in a loop got the first charge's saved result back for every later item, silently,
    without running them. A name serves one step: the second use is `InvalidStepError`, and its function never runs.
    A step whose function raised saved nothing, so it may be tried again under its name."""
    charged: list[str] = []

    def charge(item: str) -> str:
        charged.append(item)
        return f"ch-{item}"

    @idempotent_function(store, key="k", operation="loop", clock=clock, local_cache=False)
    def pay_each(k: str, items: list[str]) -> list[str]:
        return [current().step("charge", charge, item) for item in items]

    with pytest.raises(InvalidStepError, match="already ran in this execution"):
        pay_each("a", ["i-1", "i-2"])
    assert charged == ["i-1"]
    with pytest.raises(InvalidStepError):  # the retry replays the saved step, then refuses the reuse again
        pay_each("a", ["i-1", "i-2"])
    assert charged == ["i-1"]

    tries: list[int] = []

    def flaky() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise TimeoutError("the provider timed out")
        return len(tries)

    @idempotent_function(store, key="k", operation="retry-step", clock=clock, local_cache=False)
    def retried(k: str) -> int:
        try:
            return current().step("call", flaky)
        except TimeoutError:
            return current().step("call", flaky)

    assert retried("a") == 2


@pytest.mark.parametrize("name", ["", "x" * 1025, "\u65e5" * 342, 7])
def test_a_step_name_that_cannot_key_a_saved_result_is_refused_before_the_step_runs(
    store: Store, clock: FakeClock, name: Any
) -> None:
    """A name past 64 KB was saved on moto and failed on DynamoDB as an outage after the step's function had run,
    so every retry ran it again; an empty name was a bare ValueError. Now each is `InvalidStepError` (still a
    ValueError), before the function runs, and the key is released."""
    runs: list[str] = []

    @idempotent_function(store, key="k", operation="named", clock=clock, local_cache=False)
    def work(k: str, step: Any) -> int:
        return current().step(step, lambda: runs.append(step) or 7)

    with pytest.raises(InvalidStepError, match="step"):
        work("a", name)
    assert runs == []
    assert work("a", "x" * 1024) == 7  # the largest name, and the key was released, not left in flight


def test_an_execution_kept_past_its_function_refuses_steps_writes_and_heartbeats(
    store: Store, clock: FakeClock
) -> None:
    """``run = current()`` kept after the function returned: its step ran the step's function with no lease held
    (then raised LeaseLostError), its write was accepted and never committed, its heartbeat did nothing. Each is
    now `NoActiveExecutionError`, and the step's function does not run."""
    kept: list[Any] = []

    @idempotent_function(store, key="k", operation="kept", clock=clock, local_cache=False)
    def work(k: str) -> str:
        kept.append(current())
        return "done"

    assert work("a") == "done"
    ran: list[int] = []
    with pytest.raises(NoActiveExecutionError, match="has ended"):
        kept[0].step("late", ran.append, 1)
    with pytest.raises(NoActiveExecutionError, match="has ended"):
        kept[0].write({"Put": {"TableName": "payments", "Item": {"id": {"S": "late"}}}})
    with pytest.raises(NoActiveExecutionError, match="has ended"):
        kept[0].heartbeat()
    assert ran == []
    assert kept[0].writes == []


def incompressible(size: int) -> str:
    import base64

    return base64.b64encode(os.urandom(size)).decode()


@pytest.mark.parametrize("dynamodb_store", ["dynamodb_local"], indirect=True)
def test_steps_that_fill_the_record_are_result_not_stored_and_the_saved_ones_replay(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    """Each step's result fits alone; the third passes DynamoDB's 400 KB with the two saved before it. Its save
    raised the store's private ``_ItemTooLargeError``; it is `ResultNotStoredError`, the key is released, and the
    retry replays the two saved steps instead of running them again."""
    runs: list[str] = []

    def part(name: str) -> str:
        runs.append(name)
        return incompressible(150_000)

    @idempotent_function(dynamodb_store, key="k", operation="full", clock=clock, local_cache=False)
    def work(k: str) -> int:
        return sum(len(current().step(name, part, name)) for name in ("s0", "s1", "s2"))

    for _ in range(2):
        with pytest.raises(ResultNotStoredError, match="step 's2' does not fit the record"):
            work("a")
    assert runs == ["s0", "s1", "s2", "s2"]


@pytest.mark.parametrize("dynamodb_store", ["moto"], indirect=True)
def test_a_completion_that_never_fits_is_result_not_stored_not_a_recursion_error(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    """moto saves steps past 400 KB, then refuses the completion for the item's size with or without the result:
    `finish` retried without the result forever (RecursionError). It gives up, typed, once there is nothing to drop."""

    @idempotent_function(dynamodb_store, key="k", operation="never-fits", clock=clock, local_cache=False)
    def work(k: str) -> str:
        for name in ("s0", "s1", "s2"):
            current().step(name, incompressible, 150_000)
        return "done"

    with pytest.raises(ResultNotStoredError, match="cannot be completed"):
        work("a")


def test_a_claim_writes_no_steps_map_and_the_first_step_writes_it(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    """A claim stores neither ``steps`` nor ``attempts`` (absent: none, and 1); the first step writes the map whole
    and the next one sets its entry in it, one UpdateItem each."""
    rid = record_id("lean", None, "a")
    raw: list[dict[str, Any]] = []

    def item() -> dict[str, Any]:
        found = dynamodb_store.client.get_item(TableName=dynamodb_store.table_name, Key={"pk": {"S": rid}})
        return dict(found["Item"])

    @idempotent_function(dynamodb_store, key="k", operation="lean", clock=clock, local_cache=False)
    def work(k: str) -> str:
        raw.append(item())
        first = current().step("first", lambda: "one")
        second = current().step("second", lambda: "two")
        return first + second

    counter = count_calls(dynamodb_store.client)
    assert work("a") == "onetwo"
    assert "steps" not in raw[0] and "attempts" not in raw[0]
    assert counter.calls == ["PutItem", "GetItem", "UpdateItem", "UpdateItem", "PutItem"]
    finished = dynamodb_store.get(rid)
    assert finished is not None
    assert finished.steps == {"first": '"one"', "second": '"two"'}
    assert finished.attempts == 1


def test_a_first_step_on_a_record_with_an_empty_steps_map_is_saved_into_it(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    """A record claimed by 0.2.0 holds an empty steps map: taken over, its first step finds the map there (the
    whole-map write is refused for that alone) and is set in it instead; the key is not reported lost."""
    rid = record_id("legacy", None, "a")
    now = int(clock())
    dynamodb_store.client.put_item(
        TableName=dynamodb_store.table_name,
        Item={
            "pk": {"S": rid},
            "status": {"S": "IN_PROGRESS"},
            "owner": {"S": "a-crashed-0.2.0-owner"},
            "lease_expires_at": {"N": str((now - 60) * 1000)},
            "expires_at": {"N": str(now + 3600)},
            "key": {"S": "a"},
            "created_at": {"N": str(now - 70)},
            "attempts": {"N": "1"},
            "steps": {"M": {}},
        },
    )

    @idempotent_function(dynamodb_store, key="k", operation="legacy", clock=clock, local_cache=False)
    def work(k: str) -> str:
        return current().step("charge", lambda: "ch-1")

    counter = count_calls(dynamodb_store.client)
    assert work("a") == "ch-1"
    assert counter.calls == ["PutItem", "UpdateItem", "UpdateItem", "UpdateItem", "PutItem"]
    finished = dynamodb_store.get(rid)
    assert finished is not None
    assert (finished.steps, finished.attempts, finished.created_at) == ({"charge": '"ch-1"'}, 2, now - 70)


@pytest.mark.parametrize("dynamodb_store", ["dynamodb_local"], indirect=True)
def test_a_result_left_out_for_the_item_limit_is_not_replayed_from_the_local_cache(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    """The steps and the result pass 400 KB together: the record is completed without the result. The container's
    local cache must not replay what the table does not hold: the retry gets `ResultNotStoredError`, as every other
    container does."""
    runs: list[str] = []

    @idempotent_function(dynamodb_store, key="k", operation="left-out", clock=clock)
    def work(k: str) -> str:
        runs.append(k)
        for name in ("s0", "s1", "s2"):
            current().step(name, incompressible, 110_000)  # stored zlib-packed, about 111 KB each: the three fit
        return incompressible(100_000)  # about 101 KB more do not

    assert len(work("a")) == 133_336
    with pytest.raises(ResultNotStoredError):
        work("a")
    assert runs == ["a"]


@pytest.mark.parametrize("dynamodb_store", ["dynamodb_local", "moto"], indirect=True)
def test_a_result_that_does_not_fit_with_the_steps_is_left_out_of_a_fenced_commit_too(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    """As without writes (above): the steps and the result pass 400 KB together, so the commit stores the record
    without its result and applies the writes, once. DynamoDB refused the whole transaction for the record's size:
    that was `InvalidWriteError` blaming the function's valid write, the key was released, and every retry ran the
    function again and was refused again."""
    client = dynamodb_store.client
    table = new_business_table(client)
    runs: list[str] = []

    @idempotent_function(dynamodb_store, key="k", operation="left-out-commit", clock=clock)
    def work(k: str) -> str:
        runs.append(k)
        for name in ("s0", "s1", "s2"):
            current().step(name, incompressible, 110_000)
        current().write(
            {
                "Update": {
                    "TableName": table,
                    "Key": {"id": {"S": "n"}},
                    "UpdateExpression": "ADD c :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
        )
        return incompressible(100_000)

    assert len(work("a")) == 133_336
    with pytest.raises(ResultNotStoredError):
        work("a")
    assert runs == ["a"]
    item = client.get_item(TableName=table, Key={"id": {"S": "n"}}, ConsistentRead=True)["Item"]
    assert item["c"] == {"N": "1"}
    finished = dynamodb_store.get(record_id("left-out-commit", None, "a"))
    assert finished is not None and finished.status is Status.COMPLETED and finished.result is None
