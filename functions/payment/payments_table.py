"""The payment records behind ``GET /payments/{id}``.

A payment is written by the fenced commit, together with its key's completion, so it exists exactly when the key
is COMPLETED. Its id is random (a client cannot compute another's), and the write is conditioned on that id being
new. Each payment keeps the scope of the caller who made it, and is read back only by that scope: any other caller
gets the answer an unknown id gets.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

_STRINGS = ("payment_id", "currency", "customer", "charge_id", "status", "created_at", "description")
_NUMBERS = ("amount",)
_SCOPE = "caller_scope"
"""The attribute holding the creator's scope; never part of the payment a caller reads."""
PAYMENT_ID = re.compile(r"pay_[0-9a-f]{24}")


def new_payment_id() -> str:
    """96 random bits: ids say nothing of the key, the caller or the order in which payments were made."""
    return "pay_" + secrets.token_hex(12)


class PaymentsTable:
    """Payments in the table ``table_name`` (partition key ``payment_id``), as plain JSON-ready dicts."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def put(self, payment: dict[str, Any], *, scope: str) -> dict[str, Any]:
        """The write that records ``payment`` for the caller ``scope``, for the fenced commit; refused if the id
        exists (never overwritten)."""
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": {**_item(payment), _SCOPE: {"S": scope}},
                "ConditionExpression": "attribute_not_exists(payment_id)",
            }
        }

    def get(self, payment_id: str, *, scope: str) -> dict[str, Any] | None:
        """The payment, if it exists and was made by ``scope``; None otherwise (the caller cannot tell which)."""
        if not PAYMENT_ID.fullmatch(payment_id):
            return None
        response = self.client.get_item(
            TableName=self.table_name, Key={"payment_id": {"S": payment_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        if not item or item.get(_SCOPE, {}).get("S") != scope:
            return None
        return _payment(item)


def _item(payment: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {name: {"S": str(payment[name])} for name in _STRINGS if payment.get(name) is not None}
    item.update({name: {"N": str(payment[name])} for name in _NUMBERS})
    return item


def _payment(item: dict[str, Any]) -> dict[str, Any]:
    payment: dict[str, Any] = {name: item[name]["S"] for name in _STRINGS if name in item}
    payment.update({name: int(item[name]["N"]) for name in _NUMBERS if name in item})
    payment.setdefault("description", None)
    return payment
