"""Expiry with the real clock and the backends' own TTL: a record past its ``expires_at`` that is still in the table
and one the TTL deleter has removed must behave the same — the key runs again, exactly once.

DynamoDB Local deletes expired items itself (here some seconds after expiry), so both sides are seen there: the
present side on a table whose TTL is turned off, so the deleter cannot win the race to the check (real DynamoDB
may keep an expired item for days, the same state); moto never deletes, so only the present side exists there.
These are the only tests that wait on the real clock: they are marked slow and run with `make test-long`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from lambda_idempotency import DynamoDBStore, InProgressError, idempotent_function
from lambda_idempotency.keys import record_id
from lambda_idempotency.stores.dynamodb import TTL_ATTRIBUTE

from .conftest import client_of, new_dynamodb_store

pytestmark = pytest.mark.slow

TTL_S = 1
LEASE_S = 3
"""Outlasts a run (0.2 s) on a loaded machine: concurrent retries find it in flight, never take it over. (A record
expires TTL_S after it completes; the lease bounds only the claim.)"""
DELETED_WITHIN_S = 120
"""How long DynamoDB Local may take to delete an expired item (seen: about 15 s) before the test gives up."""
RETRIES = 8


class Expiring:
    """One key of a function with a short TTL on a real table, counting its own runs."""

    def __init__(self, store: DynamoDBStore) -> None:
        self.store = store
        self.operation = f"ttl-{uuid.uuid4().hex[:8]}"
        self.runs = 0
        self._lock = threading.Lock()

        @idempotent_function(store, key="k", operation=self.operation, ttl=TTL_S, lease=LEASE_S, local_cache=False)
        def work(k: str) -> str:
            with self._lock:
                self.runs += 1
                run = self.runs
            time.sleep(0.2)  # long enough for the concurrent retries to find it in flight
            return f"{k}-run-{run}"

        self.work: Callable[[str], str] = work

    def item(self, key: str) -> dict[str, Any] | None:
        """The raw item, as the table holds it (TTL deletion is the table's business, not the library's)."""
        rid = record_id(self.operation, None, key)
        table = self.store.table_name
        answer = self.store.client.get_item(TableName=table, Key={"pk": {"S": rid}}, ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def wait_until_expired(self, key: str) -> int:
        """Sleep until the record is past its ``expires_at`` on the real clock; that ``expires_at``."""
        item = self.item(key)
        assert item is not None
        expires_at = int(item["expires_at"]["N"])
        time.sleep(max(0.0, expires_at + 1 - time.time()))
        return expires_at

    def retry_storm(self, key: str) -> list[str]:
        """Concurrent retries of one key: their answers (a result, or "in flight")."""
        answers: list[str] = []

        def call() -> None:
            try:
                answer = self.work(key)
            except InProgressError:
                answer = "in flight"
            with self._lock:
                answers.append(answer)

        threads = [threading.Thread(target=call) for _ in range(RETRIES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers


def runs_again_once(expiring: Expiring, key: str) -> None:
    """After expiry, of concurrent retries exactly one runs; the rest see it in flight or replay its result."""
    answers = expiring.retry_storm(key)
    assert expiring.runs == 2
    assert answers.count(f"{key}-run-2") >= 1
    assert set(answers) <= {f"{key}-run-2", "in flight"}
    assert expiring.work(key) == f"{key}-run-2"  # and the new record replays from now on
    assert expiring.runs == 2


@pytest.mark.parametrize("backend", ["moto_server", "dynamodb_local"])
def test_an_expired_record_still_in_the_table_runs_the_key_again_once(
    request: pytest.FixtureRequest, backend: str
) -> None:
    with client_of(request, backend) as client:
        store = new_dynamodb_store(client)
    if backend == "dynamodb_local":
        spec = {"Enabled": False, "AttributeName": TTL_ATTRIBUTE}
        client.update_time_to_live(TableName=store.table_name, TimeToLiveSpecification=spec)
    expiring = Expiring(store)
    key = "present"
    assert expiring.work(key) == f"{key}-run-1"
    assert expiring.work(key) == f"{key}-run-1"
    expiring.wait_until_expired(key)
    item = expiring.item(key)
    assert item is not None
    assert int(item["expires_at"]["N"]) < time.time()

    runs_again_once(expiring, key)


def test_a_record_deleted_by_dynamodb_local_ttl_runs_the_key_again_once(request: pytest.FixtureRequest) -> None:
    with client_of(request, "dynamodb_local") as client:
        expiring = Expiring(new_dynamodb_store(client))
    key = "deleted"
    assert expiring.work(key) == f"{key}-run-1"
    expires_at = expiring.wait_until_expired(key)
    deadline = time.monotonic() + DELETED_WITHIN_S
    while expiring.item(key) is not None:
        assert time.monotonic() < deadline, f"DynamoDB Local kept the expired item over {DELETED_WITHIN_S} s"
        time.sleep(0.5)
    print(f"\nDynamoDB Local deleted the expired record within {time.time() - expires_at:.1f} s of its expires_at")

    runs_again_once(expiring, key)
