"""A test payment function: POST /payments charges once per Idempotency-Key, GET /payments/{id} reads it.

A charge is a row in the charges table, so a test counts charges by scanning it. ``processing_seconds`` in the
body makes the charge take that long, so concurrent duplicates find the key in flight.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import boto3
from lambda_idempotency import DynamoDBStore, current
from lambda_idempotency.http import RequestValidationError, idempotent_http

store = DynamoDBStore(os.environ["IDEMPOTENCY_TABLE"])
dynamodb = boto3.client("dynamodb")
CHARGES_TABLE = os.environ["CHARGES_TABLE"]


def validate(event: dict[str, Any]) -> None:
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        raise RequestValidationError("the body must be JSON") from None
    if not isinstance(body.get("amount"), int) or body["amount"] <= 0:
        raise RequestValidationError("amount must be a positive integer", errors=[{"loc": ["amount"]}])


@idempotent_http(store, operation="payments.create", validate=validate)
def create_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = json.loads(event["body"])
    time.sleep(float(body.get("processing_seconds", 0)))
    charge_id = f"ch_{uuid.uuid4().hex[:16]}"
    item = {"charge_id": {"S": charge_id}, "amount": {"N": str(body["amount"])}, "key": {"S": current().key}}
    dynamodb.put_item(TableName=CHARGES_TABLE, Item=item)
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "Location": f"/payments/{charge_id}"},
        "body": json.dumps({"id": charge_id, "amount": body["amount"], "label": os.environ["SERVICE_LABEL"]}),
    }


def get_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    charge_id = event["pathParameters"]["id"]
    item = dynamodb.get_item(TableName=CHARGES_TABLE, Key={"charge_id": {"S": charge_id}}, ConsistentRead=True)
    if "Item" not in item:
        return {"statusCode": 404, "body": json.dumps({"message": "no such payment"})}
    return {"id": charge_id, "amount": int(item["Item"]["amount"]["N"])}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["routeKey"] == "POST /payments":
        return create_payment(event, context)
    return get_payment(event, context)
