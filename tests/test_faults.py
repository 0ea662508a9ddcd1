"""The fault matrix: every fault on every protocol call, once (transient) and on every attempt (persistent).

The calls: claim, take-over, step save (`current().step`), heartbeat, the fenced commit (`current().write`, one
TransactWriteItems), complete, fail and release.

Faults are injected below the library by `tests.faults.FaultInjector` on the real HTTP backends (moto server and
DynamoDB Local). Expected, per the design: botocore's standard retries absorb a transient fault; a persistent one
never runs the function without a claim (`StoreUnavailableError`), a completion that cannot be written is retried
and reported (logged, or raised to the caller) without running the function again, a step or heartbeat that cannot
be written stops the function and gives the key back, and no record blocks the key past its lease. The commit's
write to a business table lands exactly once across every fault and the retry after it.
botocore's backoff is shortened a hundredfold (the same retries, less waiting), so the matrix runs in seconds.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff
from lambda_idempotency import DynamoDBStore, StoreUnavailableError, current, idempotent_function
from lambda_idempotency.keys import record_id
from lambda_idempotency.record import Status
from lambda_idempotency.stores.base import ClaimRequest

from .conftest import (
    HTTP_BACKENDS,
    FakeClock,
    client_of,
    endpoint_of,
    http_client,
    new_business_table,
    new_dynamodb_store,
)
from .faults import Fault, FaultInjector

LEASE_S = 5
PAST_THE_LEASE_S = LEASE_S + 2  # the lease plus its 1 s margin, and a second more
BOTOCORE_ATTEMPTS = 4  # retries={"max_attempts": 3} means three retries after the first attempt
FINISH_ATTEMPTS = 3
OPERATION = "faulty"


class DeclinedError(Exception):
    """A deterministic failure the function declares (stored as FAILED)."""


Tables = tuple[str, str, str]
"""(endpoint, idempotency table, business table): one of each per backend for the matrix; each test has its key."""


@pytest.fixture(scope="module", params=HTTP_BACKENDS)
def table(request: pytest.FixtureRequest) -> Iterator[Tables]:
    with client_of(request, request.param) as client:
        yield endpoint_of(request, request.param), new_dynamodb_store(client).table_name, new_business_table(client)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ExponentialBackoff.delay_amount
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: real(self, context) / 100)


class Scenario:
    """One key, one decorated function and a fresh client (its own retry quota) on the shared table."""

    def __init__(self, table: Tables, clock: FakeClock) -> None:
        endpoint, name, self.business = table
        self.client = http_client(endpoint)
        self.store = DynamoDBStore(name, client=self.client)
        self.clock = clock
        self.key = uuid.uuid4().hex
        self.runs: list[str] = []
        self.step_effects = 0

        @idempotent_function(
            self.store,
            key="k",
            operation=OPERATION,
            lease=LEASE_S,
            cache_errors=(DeclinedError,),
            local_cache=False,
            clock=clock,
        )
        def work(k: str, outcome: str) -> str:
            self.runs.append(outcome)
            if outcome == "declined":
                raise DeclinedError("card declined")
            if outcome == "crash":
                raise RuntimeError("transient bug")
            if outcome == "step":
                current().step("charge", self.charge)
            if outcome == "heartbeat":
                current().heartbeat()
            if outcome == "commit":
                current().write(self.count_write())
            return f"result-{k}"

        self.work = work

    def charge(self) -> str:
        self.step_effects += 1
        return "charged"

    def count_write(self) -> dict[str, Any]:
        """A write that is not idempotent by itself (ADD 1): applied twice, it would count 2."""
        update = {
            "TableName": self.business,
            "Key": {"id": {"S": self.key}},
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
        return {"Update": update}

    def writes_applied(self) -> int:
        item = self.client.get_item(TableName=self.business, Key={"id": {"S": self.key}}, ConsistentRead=True)
        return int(item.get("Item", {}).get("n", {}).get("N", 0))

    def leave_a_crashed_claim(self) -> None:
        """An execution that claimed the key and died: its lease has passed, so the next call takes it over."""
        now_ms = int(self.clock() * 1000)
        rid = record_id(OPERATION, None, self.key)
        request = ClaimRequest(rid, "crashed", self.key, None, None, now_ms, now_ms + 1000, now_ms // 1000 + 3600)
        assert self.store.claim(request) is None
        self.clock.advance(PAST_THE_LEASE_S)

    def call(self, outcome: str) -> Any:
        """The function's answer, or the exception it raised (as a value, so the matrix can compare)."""
        try:
            return self.work(self.key, outcome)
        except Exception as exc:
            return exc

    def status(self) -> Status | None:
        record = self.store.get(record_id(OPERATION, None, self.key))
        return record.status if record else None


OUTCOME_OF_CALL = {
    "claim": "ok",
    "take_over": "ok",
    "step": "step",
    "heartbeat": "heartbeat",
    "commit": "commit",
    "complete": "ok",
    "fail": "declined",
    "release": "crash",
}
"""What the function does in each row, so that the faulty call is on its path."""
RAISED_FROM_INSIDE = ("step", "heartbeat")
"""Calls the function makes itself: a persistent fault raises out of them, so the function stops and releases."""


def start(table: Tables, clock: FakeClock, call: str) -> Scenario:
    scenario = Scenario(table, clock)
    if call == "take_over":
        scenario.leave_a_crashed_claim()
    return scenario


def expected_answer(scenario: Scenario, outcome: str) -> type[Exception] | str:
    return {"declined": DeclinedError, "crash": RuntimeError}.get(outcome, f"result-{scenario.key}")


def answer_matches(answer: Any, expected: type[Exception] | str) -> bool:
    return isinstance(answer, expected) if isinstance(expected, type) else answer == expected


@pytest.mark.parametrize("fault", list(Fault), ids=lambda f: f.name.lower())
@pytest.mark.parametrize("call", list(OUTCOME_OF_CALL))
def test_a_transient_fault_is_absorbed_by_botocore_retries(
    table: Tables, clock: FakeClock, call: str, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = start(table, clock, call)
    injector = FaultInjector(scenario.client, call, fault, times=1)
    outcome = OUTCOME_OF_CALL[call]
    caplog.set_level(logging.WARNING, logger="lambda_idempotency")

    assert answer_matches(scenario.call(outcome), expected_answer(scenario, outcome))
    assert caplog.messages == []  # nothing to report: no lost lease, no unstored outcome
    assert injector.injected == 1
    assert injector.sent[call] == 2  # botocore sent it again, and the second attempt went through
    assert scenario.runs == [outcome]
    assert scenario.status() == {"declined": Status.FAILED, "crash": None}.get(outcome, Status.COMPLETED)

    retry = "ok" if outcome == "crash" else outcome  # a released key runs again; a finished one replays
    assert answer_matches(scenario.call(retry), expected_answer(scenario, retry))
    assert scenario.runs == [outcome, "ok"] if outcome == "crash" else [outcome]
    assert scenario.step_effects == (1 if outcome == "step" else 0)
    assert scenario.writes_applied() == (1 if outcome == "commit" else 0)  # a resent commit applied once


@pytest.mark.parametrize("fault", list(Fault), ids=lambda f: f.name.lower())
@pytest.mark.parametrize("call", list(OUTCOME_OF_CALL))
def test_a_persistent_fault_fails_closed_and_blocks_no_longer_than_the_lease(
    table: Tables, clock: FakeClock, call: str, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = start(table, clock, call)
    injector = FaultInjector(scenario.client, call, fault, times=None)
    outcome = OUTCOME_OF_CALL[call]
    caplog.set_level(logging.ERROR, logger="lambda_idempotency")

    answer = scenario.call(outcome)

    if call in ("claim", "take_over"):
        assert isinstance(answer, StoreUnavailableError)  # fail closed: no claim, no run
        assert scenario.runs == []
        assert injector.sent[call] == BOTOCORE_ATTEMPTS
    elif call in (*RAISED_FROM_INSIDE, "commit"):
        assert isinstance(answer, StoreUnavailableError)  # the caller is told; nothing claims success
        assert scenario.runs == [outcome]
        assert injector.sent[call] == BOTOCORE_ATTEMPTS * FINISH_ATTEMPTS
    else:
        assert answer_matches(answer, expected_answer(scenario, outcome))  # ran once; the caller gets its answer
        assert scenario.runs == [outcome]
        attempts = BOTOCORE_ATTEMPTS if call == "release" else BOTOCORE_ATTEMPTS * FINISH_ATTEMPTS
        assert injector.sent[call] == attempts
        assert any("could not" in message for message in caplog.messages)  # reported, not silent

    scenario.client.meta.events.unregister("before-send.dynamodb", injector)
    left = scenario.status()
    if call in RAISED_FROM_INSIDE:
        assert left is None  # the stopped function gave the key back: its retry runs at once, below
    else:
        clock.advance(PAST_THE_LEASE_S)
    retry = outcome if outcome in ("step", "heartbeat", "commit") else "ok"  # the same request, sent again
    follow_up = scenario.call(retry)
    if left is Status.COMPLETED:
        assert follow_up == f"result-{scenario.key}"  # the completion had landed: replayed, not run again
    elif left is Status.FAILED:
        assert isinstance(follow_up, DeclinedError)
    else:
        assert follow_up == f"result-{scenario.key}"  # whatever the fault left, it blocks no longer than the lease
        assert scenario.runs[-1] == retry
    assert len(scenario.runs) <= 2
    if outcome == "commit":
        assert scenario.writes_applied() == 1  # landed then replayed, or never landed then run again: once
    if outcome == "step":
        assert scenario.step_effects == 2  # a step whose save failed runs again: at least once, as documented
