"""The crash matrix: a Lambda timeout (a `BaseException`) at every point of a payment, then a retry after the lease.

For every point and backend: the DynamoDB writes are applied exactly once, each step's function runs at most
once per completed step (twice only when the crash falls between its effect and its save, and then the
downstream API dedupes by the derived key), and the retry returns what an uninterrupted call returns.
Crashes at the store calls are raised from botocore's ``before-call``/``after-call`` events, so the request is
really not sent, or really applied with its answer lost.
"""

from __future__ import annotations

from typing import Any

import pytest
from lambda_idempotency import current, idempotent_function
from lambda_idempotency.stores.dynamodb import DynamoDBStore

from .conftest import FakeClock, new_business_table
from .test_fenced_commit import balance, credit, new_payment

LEASE_S = 10
IN_FUNCTION = ("before step charge", "inside charge, after the gateway call", "after step charge", "after step receipt")
AT_STORE_CALLS = {
    "before claim": "before-call.dynamodb.PutItem",
    "after claim": "after-call.dynamodb.PutItem",
    "before commit": "before-call.dynamodb.TransactWriteItems",
    "after commit": "after-call.dynamodb.TransactWriteItems",
}
POINTS = ["before claim", "after claim", *IN_FUNCTION, "before commit", "after commit"]
EXPECTED = {"charge": "ch-1", "receipt": "receipt-ch-1", "amount": 5}


class LambdaTimeout(BaseException):
    """Raised where the crash is injected; like a timeout, `except Exception` does not see it."""


class Gateway:
    """A payment API that takes an idempotency key, as Stripe does: one charge per key, however often called."""

    def __init__(self) -> None:
        self.charges: dict[str, str] = {}
        self.calls = 0

    def charge(self, idempotency_key: str, amount: int) -> str:
        self.calls += 1
        return self.charges.setdefault(idempotency_key, f"ch-{len(self.charges) + 1}")


class Crasher:
    """Raises `LambdaTimeout` once, at the armed point."""

    def __init__(self, point: str) -> None:
        self.armed: str | None = point

    def at(self, point: str) -> None:
        if point == self.armed:
            self.armed = None
            raise LambdaTimeout(point)

    def hook(self, point: str) -> Any:
        def on_call(**_: Any) -> None:
            self.at(point)

        return on_call


@pytest.mark.parametrize("point", POINTS)
def test_crash_then_retry_after_the_lease(dynamodb_store: DynamoDBStore, clock: FakeClock, point: str) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)
    gateway = Gateway()
    receipts: list[str] = []
    crash = Crasher(point)

    def charge(amount: int) -> str:
        charge_id = gateway.charge(current().derived_key("charge"), amount)
        crash.at("inside charge, after the gateway call")
        return charge_id

    def receipt(charge_id: str) -> str:
        receipts.append(charge_id)
        return f"receipt-{charge_id}"

    @idempotent_function(dynamodb_store, key="order", operation="pay", clock=clock, lease=LEASE_S, local_cache=False)
    def pay(order: str, amount: int) -> dict[str, Any]:
        execution = current()
        crash.at("before step charge")
        charge_id = execution.step("charge", charge, amount)
        crash.at("after step charge")
        sent = execution.step("receipt", receipt, charge_id)
        crash.at("after step receipt")
        execution.write(new_payment(table, f"pay-{order}"))
        execution.write(credit(table, "acct", amount))
        return {"charge": charge_id, "receipt": sent, "amount": amount}

    hooks = [(event, crash.hook(p)) for p, event in AT_STORE_CALLS.items() if p == point]
    for event, hook in hooks:
        client.meta.events.register(event, hook)
    try:
        with pytest.raises(LambdaTimeout, match=point):
            pay("o-1", 5)
    finally:
        for event, hook in hooks:
            client.meta.events.unregister(event, hook)
    assert crash.armed is None

    clock.advance(LEASE_S + 2)
    assert pay("o-1", 5) == EXPECTED
    assert pay("o-1", 5) == EXPECTED  # and every retry after it

    assert balance(client, table, "acct") == 5  # the non-idempotent credit: exactly once
    assert "Item" in client.get_item(TableName=table, Key={"id": {"S": "pay-o-1"}}, ConsistentRead=True)
    assert gateway.charges == {current_key(dynamodb_store, "o-1"): "ch-1"}  # one charge downstream
    assert gateway.calls == (2 if point == "inside charge, after the gateway call" else 1)
    assert receipts == ["ch-1"]


def current_key(store: DynamoDBStore, order: str) -> str:
    """The derived key the payment gives the gateway, computed as an execution of that order computes it."""
    from lambda_idempotency.execution import Execution
    from lambda_idempotency.keys import record_id

    execution = Execution(order, None, "pay", record_id("pay", None, order), 1, "-", None, 0)
    return execution.derived_key("charge")
