"""A completion that could not be written (issue 12, item 2): nothing is cached that the table does not hold.

The function ran, the store failed on every try of the completion: the caller gets the result, the record stays
IN_PROGRESS, and this container must answer the next duplicate as the table does (in flight), not replay a local
COMPLETED that no other container can see. After the lease, a retry runs the function again: at least once.
Faults are answered on the wire by tests/faults.py, on moto's server and DynamoDB Local.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from lambda_idempotency import DynamoDBStore, InProgressError, create_table, idempotent_function
from lambda_idempotency.keys import record_id
from lambda_idempotency.record import Status

from tests.conftest import HTTP_BACKENDS, FakeClock, endpoint_of
from tests.faults import Fault, FaultInjector


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
def test_an_unwritten_completion_is_not_replayed_from_the_local_cache(
    request: pytest.FixtureRequest, backend: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = DynamoDBStore(f"unwritten-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint_of(request, backend))
    create_table(store)
    injector = FaultInjector(store.client, "complete", Fault.SERVER_ERROR, times=None)
    runs: list[str] = []

    @idempotent_function(store, key="order_id", operation="orders.charge", lease=30, clock=clock)
    def charge(order_id: str) -> str:
        runs.append(order_id)
        return f"charge-{len(runs)}"

    with caplog.at_level(logging.ERROR, "lambda_idempotency"):
        assert charge("o-1") == "charge-1"
    assert injector.injected >= 3
    assert any("at least once" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    held = store.get(record_id("orders.charge", None, "o-1"))
    assert held is not None and held.status is Status.IN_PROGRESS

    with pytest.raises(InProgressError):  # as the table says, in this container too
        charge("o-1")

    injector.times = injector.injected  # the store recovers
    clock.advance(32)  # the lease (30 s + 1 s margin) has passed
    assert charge("o-1") == "charge-2"  # run again: at least once when the completion could not be written
    assert charge("o-1") == "charge-2"
    assert runs == ["o-1", "o-1"]
