"""The two libraries under test, set up the same way: same handler, same key and payload check, same client.

The handler is an order API: the key is ``order_id`` in the JSON body, the whole body is the payload that must
match on a replay, and the result is a small dict. The payment scenarios also write the business item (a charge)
to a second table, each library the way it offers: Powertools' handler puts it with the client (claim, put,
complete: 3 round trips); ours adds it to the commit with ``current().write`` (claim, then one transaction with
the completion: 2), or in optimistic mode commits it with the finished record in one transaction (1). Each
library gets its own idempotency table in its own record layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Handler = Callable[[dict[str, Any], Any], Any]

OURS = "lambda-idempotency"
THEIRS = "Powertools"
PAYMENTS_TABLE = "bench-payments"


@dataclass
class Scenario:
    name: str
    fresh_key: bool
    """A new key per call (first executions) or one key answered again and again (duplicates)."""
    local_cache: bool
    """Our local cache (on by default). Powertools runs with its default, ``use_local_cache=False``, throughout."""
    writes_payment: bool = False
    mode: Literal["claim", "optimistic"] = "claim"
    """Our mode (claim or optimistic); Powertools has one."""
    fingerprint: bool = True
    """The whole body is checked on a replay (both libraries hash it); False: a plain key, nothing hashed."""


SCENARIOS = [
    Scenario("first execution", fresh_key=True, local_cache=False),
    Scenario("duplicate", fresh_key=False, local_cache=False),
    Scenario("warm duplicate (defaults)", fresh_key=False, local_cache=True),
    Scenario("payment + business write", fresh_key=True, local_cache=False, writes_payment=True),
    Scenario("payment, ours optimistic", fresh_key=True, local_cache=False, writes_payment=True, mode="optimistic"),
]


class LambdaContext:
    """What both libraries read from the Lambda context."""

    function_name = "bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def event(order_id: str) -> dict[str, Any]:
    return {"body": json.dumps({"order_id": order_id, "amount": 1250, "currency": "EUR"})}


def payment(body: dict[str, Any]) -> dict[str, Any]:
    """The business write, as a PutItem request (without its table)."""
    return {"Item": {"pk": {"S": body["order_id"]}, "amount": {"N": str(body["amount"])}}}


def answer(body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 201, "body": {"order_id": body["order_id"], "status": "charged"}}


def business(client: Any, writes_payment: bool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The handler body as Powertools (and the undecorated handler) run it: the charge is written directly."""

    def handle(body: dict[str, Any]) -> dict[str, Any]:
        if writes_payment:
            client.put_item(TableName=PAYMENTS_TABLE, **payment(body))
        return answer(body)

    return handle


def ours(client: Any, table: str, scenario: Scenario) -> Handler:
    from lambda_idempotency import DynamoDBStore, current, idempotent

    @idempotent(
        DynamoDBStore(table, client=client),
        key="json(body).order_id",
        fingerprint="json(body)" if scenario.fingerprint else None,
        operation="bench",
        local_cache=scenario.local_cache,
        mode=scenario.mode,
    )
    def handler(event: dict[str, Any], context: Any) -> Any:
        body = json.loads(event["body"])
        if scenario.writes_payment:  # committed with the record: exactly once, in the same transaction
            current().write({"Put": {"TableName": PAYMENTS_TABLE, **payment(body)}})
        return answer(body)

    return handler


def theirs(client: Any, table: str, scenario: Scenario) -> Handler:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent,
    )

    handle = business(client, scenario.writes_payment)
    config = IdempotencyConfig(
        event_key_jmespath="powertools_json(body).order_id",
        payload_validation_jmespath="powertools_json(body)" if scenario.fingerprint else "",
    )

    @idempotent(persistence_store=DynamoDBPersistenceLayer(table, boto3_client=client), config=config)
    def handler(event: dict[str, Any], context: Any) -> Any:
        return handle(json.loads(event["body"]))

    return handler


def undecorated(client: Any, table: str, scenario: Scenario) -> Handler:
    """The same handler with no idempotency: what a call costs before either library adds its share."""
    handle = business(client, scenario.writes_payment)

    def handler(event: dict[str, Any], context: Any) -> Any:
        return handle(json.loads(event["body"]))

    return handler


BUILDERS: dict[str, Callable[[Any, str, Scenario], Handler]] = {OURS: ours, THEIRS: theirs}


def create_tables(client: Any, prefix: str) -> dict[str, str]:
    """One idempotency table per library (pk ``pk`` here, ``id`` there) and the payments table."""
    from lambda_idempotency import DynamoDBStore, create_table

    tables = {OURS: f"{prefix}-ours", THEIRS: f"{prefix}-powertools"}
    create_table(DynamoDBStore(tables[OURS], client=client))
    for name, key in ((tables[THEIRS], "id"), (PAYMENTS_TABLE, "pk")):
        client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return tables
