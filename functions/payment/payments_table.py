"""The payment records behind ``GET /payments/{id}``.

A payment is written by the fenced commit, together with its key's completion, so it exists exactly when the key
is COMPLETED. Its id is derived from the idempotency record, and the write is conditioned on that id being new:
a key sent again after its record expired cannot overwrite the payment it made.
"""

from __future__ import annotations

import hashlib
from typing import Any

_STRINGS = ("payment_id", "currency", "customer", "charge_id", "status", "created_at", "description")
_NUMBERS = ("amount",)


def payment_id_for(record_id: str) -> str:
    """A stable, opaque payment id for one idempotency record."""
    return "pay_" + hashlib.sha256(record_id.encode()).hexdigest()[:24]


class PaymentsTable:
    """Payments in the table ``table_name`` (partition key ``payment_id``), as plain JSON-ready dicts."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def put(self, payment: dict[str, Any]) -> dict[str, Any]:
        """The write that records ``payment``, for the fenced commit; refused if the id exists (never overwritten)."""
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": _item(payment),
                "ConditionExpression": "attribute_not_exists(payment_id)",
            }
        }

    def get(self, payment_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table_name, Key={"payment_id": {"S": payment_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return _payment(item) if item else None


def _item(payment: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {name: {"S": str(payment[name])} for name in _STRINGS if payment.get(name) is not None}
    item.update({name: {"N": str(payment[name])} for name in _NUMBERS})
    return item


def _payment(item: dict[str, Any]) -> dict[str, Any]:
    payment: dict[str, Any] = {name: item[name]["S"] for name in _STRINGS if name in item}
    payment.update({name: int(item[name]["N"]) for name in _NUMBERS if name in item})
    payment.setdefault("description", None)
    return payment
