"""The DynamoDB store: every protocol step is one conditional call (DESIGN.md, "The state machine").

A refused condition returns the old item with the error (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), so a
duplicate costs one round trip and no extra read. Backends that do not return it get one consistent GetItem instead.
Every attribute name goes through ``ExpressionAttributeNames``: ``status``, ``owner``, ``result`` and ``key`` are
reserved words.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import StoreUnavailableError
from ..record import Payload, Record, Status
from .base import ClaimRequest, Refused, Store

logger = logging.getLogger("lambda_idempotency")

CONDITION_FAILED = "ConditionalCheckFailedException"

_NAMES = {
    "#pk": "pk",
    "#st": "status",
    "#ow": "owner",
    "#le": "lease_expires_at",
    "#ex": "expires_at",
    "#k": "key",
    "#sc": "scope",
    "#fp": "fingerprint",
    "#res": "result",
    "#steps": "steps",
    "#cr": "created_at",
    "#co": "completed_at",
    "#at": "attempts",
}


def table_definition(table_name: str) -> dict[str, Any]:
    """The CreateTable request for an idempotency table; template.yaml declares the same shape."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


TTL_ATTRIBUTE = "expires_at"


def create_table(store: DynamoDBStore, *, wait: bool = True) -> None:
    """Create the store's table (pk S, on-demand) with TTL on ``expires_at``; does nothing if both exist."""
    client = store.client
    try:
        client.create_table(**table_definition(store.table_name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    if wait:
        client.get_waiter("table_exists").wait(TableName=store.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = client.describe_time_to_live(TableName=store.table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client.update_time_to_live(
            TableName=store.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )


class DynamoDBStore(Store):
    """Records in one DynamoDB table (partition key ``pk``, TTL on ``expires_at``).

    A store that makes its own client uses botocore's ``standard`` retry mode and short timeouts, so a hung call
    cannot eat the Lambda's time; a ``client`` passed in is used as given.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
    ) -> None:
        self.table_name = table_name
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "dynamodb",
                endpoint_url=endpoint_url,
                region_name=region_name,
                config=Config(
                    retries={"mode": "standard", "max_attempts": 3},
                    connect_timeout=2,
                    read_timeout=5,
                    tcp_keepalive=True,
                ),
            )
        self.client = client

    def claim(self, request: ClaimRequest) -> Refused | None:
        names, update = _claim_expression(request.scope is not None, request.fingerprint is not None)
        values: dict[str, Any] = {
            ":ip": {"S": Status.IN_PROGRESS},
            ":me": {"S": request.owner},
            ":lease": {"N": str(request.lease_expires_at)},
            ":exp": {"N": str(request.expires_at)},
            ":key": {"S": request.key},
            ":now": {"N": str(request.now_s)},
            ":one": {"N": "1"},
        }
        if request.scope is not None:
            values[":sc"] = {"S": request.scope}
        if request.fingerprint is not None:
            values[":fp"] = {"S": request.fingerprint}
        return self._write(
            "update_item",
            request.record_id,
            Key={"pk": {"S": request.record_id}},
            UpdateExpression=update,
            ConditionExpression="attribute_not_exists(#pk) OR #ex < :now",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def take_over(self, request: ClaimRequest, previous: Record) -> Refused | None:
        return self._write(
            "update_item",
            request.record_id,
            Key={"pk": {"S": request.record_id}},
            UpdateExpression="SET #ow = :me, #le = :lease, #ex = :exp, #at = :at",
            ConditionExpression="#ow = :old AND #st = :ip",
            ExpressionAttributeNames=_names("#ow", "#le", "#ex", "#at", "#st"),
            ExpressionAttributeValues={
                ":me": {"S": request.owner},
                ":lease": {"N": str(request.lease_expires_at)},
                ":exp": {"N": str(request.expires_at)},
                ":at": {"N": str(previous.attempts + 1)},
                ":old": {"S": previous.owner},
                ":ip": {"S": Status.IN_PROGRESS},
            },
        )

    def finish(
        self,
        record_id: str,
        owner: str,
        status: Status,
        result: Payload | None,
        now_ms: int,
        expires_at: int,
    ) -> Refused | None:
        values: dict[str, Any] = {
            ":st": {"S": status},
            ":now": {"N": str(now_ms // 1000)},
            ":exp": {"N": str(expires_at)},
            ":me": {"S": owner},
            ":ip": {"S": Status.IN_PROGRESS},
        }
        if result is None:
            update = "SET #st = :st, #co = :now, #ex = :exp REMOVE #le, #res"
        else:
            update = "SET #st = :st, #co = :now, #ex = :exp, #res = :res REMOVE #le"
            values[":res"] = {"S": result} if isinstance(result, str) else {"B": result}
        try:
            return self._write(
                "update_item",
                record_id,
                Key={"pk": {"S": record_id}},
                UpdateExpression=update,
                ConditionExpression="#ow = :me AND #st = :ip",
                ExpressionAttributeNames=_names("#st", "#co", "#ex", "#le", "#res", "#ow"),
                ExpressionAttributeValues=values,
            )
        except _ItemTooLargeError:
            logger.warning("result of %s does not fit the item; completing without it", record_id)
            return self.finish(record_id, owner, status, None, now_ms, expires_at)

    def release(self, record_id: str, owner: str, *, keep_steps: bool) -> Refused | None:
        if keep_steps:
            return self._write(
                "update_item",
                record_id,
                Key={"pk": {"S": record_id}},
                UpdateExpression="SET #le = :zero",
                ConditionExpression="#ow = :me",
                ExpressionAttributeNames=_names("#le", "#ow"),
                ExpressionAttributeValues={":zero": {"N": "0"}, ":me": {"S": owner}},
            )
        return self._write(
            "delete_item",
            record_id,
            Key={"pk": {"S": record_id}},
            ConditionExpression="#ow = :me",
            ExpressionAttributeNames=_names("#ow"),
            ExpressionAttributeValues={":me": {"S": owner}},
        )

    def get(self, record_id: str) -> Record | None:
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key={"pk": {"S": record_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        item = response.get("Item")
        return record_from_item(item) if item else None

    def _write(self, operation: str, record_id: str, **request: Any) -> Refused | None:
        """Send one conditional write; a refused condition becomes `Refused` with the record that refused it."""
        try:
            getattr(self.client, operation)(
                TableName=self.table_name, ReturnValuesOnConditionCheckFailure="ALL_OLD", **request
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == CONDITION_FAILED:
                item = exc.response.get("Item")
                if item is not None:
                    return Refused(record_from_item(item))
                logger.debug("backend returned no item with the failed condition; reading %s", record_id)
                return Refused(self.get(record_id))
            if error.get("Code") == "ValidationException" and "size" in str(error.get("Message", "")).lower():
                raise _ItemTooLargeError from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return None


class _ItemTooLargeError(Exception):
    """DynamoDB refused an item past its size limit (internal: `finish` retries without the result)."""


def _unavailable(exc: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(f"idempotency store unavailable: {exc}")


def _names(*placeholders: str) -> dict[str, str]:
    return {p: _NAMES[p] for p in placeholders}


@cache
def _claim_expression(with_scope: bool, with_fingerprint: bool) -> tuple[dict[str, str], str]:
    """The claim's attribute names and update expression (one per combination of optional fields)."""
    sets = ["#st = :ip", "#ow = :me", "#le = :lease", "#ex = :exp", "#k = :key", "#cr = :now", "#at = :one"]
    removes = ["#steps", "#res", "#co"]
    (sets if with_scope else removes).append("#sc = :sc" if with_scope else "#sc")
    (sets if with_fingerprint else removes).append("#fp = :fp" if with_fingerprint else "#fp")
    names = _names("#pk", "#st", "#ow", "#le", "#ex", "#k", "#cr", "#at", "#steps", "#res", "#co", "#sc", "#fp")
    return names, f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"


def record_from_item(item: dict[str, Any]) -> Record:
    """A record from its low-level DynamoDB item."""

    def text(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value else None

    def number(name: str) -> int | None:
        value = item.get(name)
        return int(value["N"]) if value else None

    def payload(value: dict[str, Any] | None) -> Payload | None:
        if value is None:
            return None
        return value["S"] if "S" in value else bytes(value["B"])

    steps = item.get("steps", {}).get("M", {})
    return Record(
        record_id=item["pk"]["S"],
        status=Status(item["status"]["S"]),
        owner=item["owner"]["S"],
        expires_at=int(item["expires_at"]["N"]),
        lease_expires_at=number("lease_expires_at"),
        key=text("key"),
        scope=text("scope"),
        fingerprint=text("fingerprint"),
        result=payload(item.get("result")),
        steps={name: p for name, value in steps.items() if (p := payload(value)) is not None},
        attempts=number("attempts") or 1,
        created_at=number("created_at"),
        completed_at=number("completed_at"),
    )
