"""Leases with real processes on DynamoDB Local: workers (tests/lease_worker.py) are SIGKILLed and SIGSTOPped.

- A worker killed right after its claim, with 15 minutes of its invocation left, frees the key one lease later:
  a retry then takes over and completes (it used to get `InProgressError` for the 15 minutes).
- A worker frozen between two steps past its lease, while another completes the key, runs no step after it resumes,
  raises `LeaseLostError`, and commits nothing.
- A function several leases long is never taken over by duplicates sent every few leases' thirds.

`make test` runs them with a 1 s lease; the literal versions (the default 20 s lease after a kill; a 60 s function
with a 10 s lease, duplicates every 3 s) are marked slow (`make test-long`). The recovery times are printed (-s).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lambda_idempotency import DynamoDBStore, InProgressError, current, idempotent
from lambda_idempotency.keys import record_id
from lambda_idempotency.lease import DEFAULT_LEASE_MS, LEASE_MARGIN_MS
from lambda_idempotency.record import Status

from .conftest import new_business_table, new_dynamodb_store

WORKER = Path(__file__).parent / "lease_worker.py"
STARTUP_S = 60.0
"""A worker's Python and boto3 start within this on a loaded machine (a time-out, never a measurement)."""
LEASE_S = 1.0
MARGIN_S = LEASE_MARGIN_MS / 1000
FIFTEEN_MINUTES_MS = 15 * 60 * 1000


class Worker:
    """One worker process and the JSON lines it reports."""

    def __init__(self, tables: dict[str, str], key: str, script: str, lease: float | None, **extra: Any) -> None:
        options = {**tables, "key": key, "script": script, "lease": lease, "remaining_ms": FIFTEEN_MINUTES_MS, **extra}
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def expect(self, event: str, timeout: float = STARTUP_S) -> dict[str, Any]:
        """Wait for the worker to report ``event``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no {event!r} within {timeout} s; so far {self.events}") from None
            self.events.append(json.loads(line))
            if self.events[-1]["event"] == event:
                return self.events[-1]

    def reported(self, event: str) -> bool:
        """Whether the worker has reported ``event`` so far (without waiting)."""
        while True:
            try:
                self.events.append(json.loads(self._lines.get_nowait()))
            except queue.Empty:
                return any(e["event"] == event for e in self.events)

    def go_on(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def signal(self, number: int) -> None:
        os.kill(self.process.pid, number)

    def close(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def tables(dynamodb_local_client: Any) -> dict[str, str]:
    store = new_dynamodb_store(dynamodb_local_client)
    return {
        "endpoint": dynamodb_local_client.meta.endpoint_url,
        "table": store.table_name,
        "business": new_business_table(dynamodb_local_client),
    }


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.close()


def retry(tables: dict[str, str], key: str, lease: float | None, store: DynamoDBStore | None = None) -> Any:
    """A retry of the workers' invocation from another container (this process), whose ``store`` may be made ahead."""
    if store is None:
        store = DynamoDBStore(tables["table"], endpoint_url=tables["endpoint"], region_name="us-east-1")

    @idempotent(store, key="key", operation="lease-worker", lease=lease, local_cache=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"worker": "retry", "attempt": current().attempt}

    return handler({"key": key, "script": "retry"}, None)


@pytest.mark.parametrize(
    "lease", [LEASE_S, pytest.param(None, marks=pytest.mark.slow, id="default-lease")], ids=lambda x: f"lease={x}"
)
def test_a_worker_killed_after_its_claim_frees_the_key_one_lease_later(
    tables: dict[str, str], workers: list[Worker], lease: float | None
) -> None:
    key = uuid.uuid4().hex
    lease_s = lease if lease is not None else DEFAULT_LEASE_MS / 1000
    holder = Worker(tables, key, "hold", lease, name="killed")
    workers.append(holder)
    # The retrying container's boto3 client is made before the kill: the first retry must claim while the killed
    # worker's lease (1 s, renewed until the kill) still runs, and a client made on a loaded machine can take a second.
    container = DynamoDBStore(tables["table"], endpoint_url=tables["endpoint"], region_name="us-east-1")
    holder.expect("waiting")
    holder.signal(signal.SIGKILL)
    killed_at = time.monotonic()

    with pytest.raises(InProgressError) as busy:
        retry(tables, key, lease, container)
    assert busy.value.retry_after <= lease_s + MARGIN_S + 1  # one lease, not the 15 minutes the invocation had left

    time.sleep(max(killed_at + lease_s + MARGIN_S - time.monotonic(), 0))
    assert retry(tables, key, lease, container) == {"worker": "retry", "attempt": 2}  # one lease on: taken over
    recovered_s = time.monotonic() - killed_at
    print(f"\nlease {lease_s:g} s: the key was taken over and completed {recovered_s:.2f} s after the kill")
    assert not any(e["event"] == "effect" for e in holder.events)


def test_a_worker_frozen_between_steps_past_its_lease_runs_no_step_and_commits_nothing(
    tables: dict[str, str], workers: list[Worker], dynamodb_local_client: Any
) -> None:
    key = uuid.uuid4().hex
    frozen = Worker(tables, key, "steps", LEASE_S, name="frozen")
    workers.append(frozen)
    frozen.expect("waiting")  # step one ran and was saved
    frozen.signal(signal.SIGSTOP)
    time.sleep(LEASE_S + MARGIN_S + 0.2)  # past its lease: its renewer is frozen too

    taker = Worker(tables, key, "steps", LEASE_S, name="taker")
    workers.append(taker)
    assert taker.expect("claimed")["attempt"] == 2  # took over
    taker.expect("waiting")
    taker.go_on()
    assert taker.expect("result")["result"] == {"worker": "taker", "attempt": 2}

    frozen.go_on()
    frozen.signal(signal.SIGCONT)
    lost = frozen.expect("lease-lost")
    assert "did nothing" in lost["message"]
    effects = [e["step"] for e in frozen.events if e["event"] == "effect"]
    assert effects == ["one"]  # step two's function never ran in the resumed worker
    assert [e["step"] for e in taker.events if e["event"] == "effect"] == ["two"]  # step one was inherited

    items = dynamodb_local_client.scan(TableName=tables["business"], ConsistentRead=True)["Items"]
    assert [item["worker"]["S"] for item in items] == ["taker"]  # nothing of the frozen worker was committed
    store = DynamoDBStore(tables["table"], client=dynamodb_local_client)
    record = store.get(record_id("lease-worker", None, key))
    assert record is not None and record.status is Status.COMPLETED and record.attempts == 2


@pytest.mark.parametrize(
    ("lease", "seconds", "every"),
    [(LEASE_S, 5 * LEASE_S, 0.4), pytest.param(10.0, 60.0, 3.0, marks=pytest.mark.slow, id="60s-function-10s-lease")],
)
def test_a_function_several_leases_long_is_never_taken_over_by_duplicates(
    tables: dict[str, str], workers: list[Worker], lease: float, seconds: float, every: float
) -> None:
    key = uuid.uuid4().hex
    worker = Worker(tables, key, "long", lease, seconds=seconds, name="long")
    workers.append(worker)
    worker.expect("claimed")
    refused, wanted = 0, seconds / every / 2
    # Duplicates come every `every` s until the function has run its `seconds` and as many have been refused as that
    # many seconds hold: the worker then waits for the test, so a loaded machine's slow retries cannot shorten the run.
    while not (refused >= wanted and worker.reported("waiting")):
        with pytest.raises(InProgressError):
            retry(tables, key, lease)
        refused += 1
        time.sleep(every)
    worker.go_on()
    assert worker.expect("result")["result"] == {"worker": "long", "attempt": 1}
    assert [e["step"] for e in worker.events if e["event"] == "effect"] == ["long"]
    assert retry(tables, key, lease) == {"worker": "long", "attempt": 1}  # only the original's result, replayed
