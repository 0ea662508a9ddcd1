"""A stand-in payment gateway that records each charge in DynamoDB and honours an idempotency key.

It behaves like a real gateway where it matters here: the first charge under a key is recorded (one conditional
PutItem), a repeated key returns that first charge, and the same key with other parameters is refused. The demo and
the tests count charges in its table, so "charged once" is measured, not assumed.
"""

from __future__ import annotations

import os
import time
from typing import Any

from botocore.exceptions import ClientError
from provider import Charge, ProviderKeyReuseError


class SimulatedGateway:
    """Charges recorded in the table ``table_name`` (partition key ``idempotency_key``)."""

    def __init__(self, table_name: str, client: Any, *, latency_s: float = 0.0) -> None:
        self.table_name = table_name
        self.client = client
        self.latency_s = latency_s
        """Time a new charge's reply takes to come back (``GatewayLatencyMs`` in template.yaml). The charge is
        recorded first, so a function stopped while it waits (a Lambda timeout) has charged without knowing it; a
        repeated key is answered at once from the records. The demo and the tests set it to make races and
        mid-charge timeouts happen."""

    def charge(
        self,
        *,
        idempotency_key: str,
        reference: str,
        amount: int,
        currency: str,
        customer: str,
        description: str | None,
    ) -> Charge:
        item = {
            "idempotency_key": {"S": idempotency_key},
            "charge_id": {"S": f"ch_{os.urandom(12).hex()}"},
            "reference": {"S": reference},
            "amount": {"N": str(amount)},
            "currency": {"S": currency},
            "customer": {"S": customer},
            "status": {"S": "succeeded"},
            "created_at": {"N": str(int(time.time()))},
        }
        if description is not None:
            item["description"] = {"S": description}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(idempotency_key)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            first = _charge(exc.response["Item"])  # the first charge, returned with the failed condition
            if (first.amount, first.currency, first.customer) != (amount, currency, customer):
                raise ProviderKeyReuseError(f"gateway key {idempotency_key!r} was used for another charge") from None
            return first
        time.sleep(self.latency_s)
        return _charge(item)


def _charge(item: dict[str, Any]) -> Charge:
    return Charge(
        charge_id=item["charge_id"]["S"],
        amount=int(item["amount"]["N"]),
        currency=item["currency"]["S"],
        customer=item["customer"]["S"],
        reference=item["reference"]["S"],
        status=item["status"]["S"],
    )
