"""The DynamoDB store: every protocol step is one conditional call (DESIGN.md, "The state machine").

A refused condition returns the old item with the error (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), so a
duplicate costs one round trip and no extra read. Backends that do not return it get one consistent GetItem instead.
A commit with the function's own writes is one ``TransactWriteItems``: the writes plus the record's completion,
which carries the fencing condition, so a refused record refuses every write with it.
Every attribute name goes through ``ExpressionAttributeNames``: ``status``, ``owner``, ``result`` and ``key`` are
reserved words.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import (
    ResultNotStoredError,
    ResultUnreadableError,
    StoreConfigurationError,
    StoreUnavailableError,
)
from ..record import STATUSES, Payload, Record, Status
from .base import ClaimRequest, Refused, Store, WritesRefused

if TYPE_CHECKING:
    from ..encryption import KmsEncryption
    from ..offload import S3Offload
    from ..writes import Write

logger = logging.getLogger("lambda_idempotency")

CONDITION_FAILED = "ConditionalCheckFailedException"

_NAMES = {
    "#pk": "pk",
    "#st": "status",
    "#ow": "owner",
    "#le": "lease_expires_at",
    "#ex": "expires_at",
    "#steps": "steps",
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
MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item limit, by its sizing rules (attribute names and values)."""
_IN_PROGRESS = {"S": Status.IN_PROGRESS}
"""The value every claim sends, built once (botocore never changes the request it is given)."""
_HELD = "#ow = :me AND #st = :ip"
"""The fence: a write lands only while its execution holds the record, IN_PROGRESS."""
_HELD_WITHOUT_STEPS = _HELD + " AND attribute_not_exists(#steps)"


def create_table(store: DynamoDBStore, *, wait: bool = True) -> None:
    """Create the store's table (pk S, on-demand) with TTL on ``expires_at``; does nothing if both exist.

    An existing table that cannot serve (another key than ``pk`` (S) alone: a Powertools table, say; TTL on another
    attribute) is `StoreConfigurationError`, as are missing credentials, a wrong region and denied access: a setup
    step that said nothing would leave every call to fail.
    """
    client = store.client
    try:
        try:
            client.create_table(**table_definition(store.table_name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        if wait:
            waiter = client.get_waiter("table_exists")
            waiter.wait(TableName=store.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        table = client.describe_table(TableName=store.table_name)["Table"]
        ttl = client.describe_time_to_live(TableName=store.table_name)["TimeToLiveDescription"]
        wrong = _unfit(table, ttl)
        if wrong:
            raise StoreConfigurationError(
                f"table {store.table_name!r} exists but has {'; '.join(wrong)}: an idempotency table has the key "
                "pk (S) alone and TTL on expires_at; pick another name, or remove that table if it is not needed"
            )
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=store.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
    except (ClientError, BotoCoreError) as exc:
        raise store._error(exc) from exc


def _unfit(table: dict[str, Any], ttl: dict[str, Any]) -> list[str]:
    """What keeps an existing table from serving as the store's: another key schema, TTL on another attribute."""
    from .diagnosis import FIT_KEY_SCHEMA, key_schema

    schema = key_schema(table)
    wrong = [] if schema == FIT_KEY_SCHEMA else [schema]
    if ttl.get("AttributeName", TTL_ATTRIBUTE) != TTL_ATTRIBUTE:
        wrong.append(f"TTL on {ttl['AttributeName']}")
    return wrong


class DynamoDBStore(Store):
    """Records in one DynamoDB table (partition key ``pk``, TTL on ``expires_at``).

    A store that makes its own client uses botocore's ``standard`` retry mode and short timeouts, so a hung call
    cannot eat the Lambda's time; a ``client`` passed in is used as given. ``offload`` keeps results past its
    threshold in S3, ``encryption`` encrypts every result, step and failure before it is written.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        offload: S3Offload | None = None,
        encryption: KmsEncryption | None = None,
    ) -> None:
        self.table_name = table_name
        self.with_payloads(offload, encryption)
        if client is None:
            import boto3
            from botocore.config import Config

            try:
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
            except BotoCoreError as exc:  # no region, or one botocore cannot resolve: a configuration error
                from .diagnosis import store_error

                raise store_error(exc, table_name, None) from exc
        self.client = client

    def claim(self, request: ClaimRequest) -> Refused | None:
        """A conditional PutItem of the fresh record: it replaces an expired one whole, so nothing of it survives.

        A PutItem rather than an UpdateItem: the same effect (every attribute is either written or dropped) with
        no update expression to send and for DynamoDB to parse. Lean: no ``attempts`` (absent is 1) and no steps
        map (the first step writes it), two attributes fewer for DynamoDB to store on every first execution.
        """
        now = {"N": str(request.now_ms // 1000)}
        item: dict[str, Any] = {
            "pk": {"S": request.record_id},
            "status": _IN_PROGRESS,
            "owner": {"S": request.owner},
            "lease_expires_at": {"N": str(request.lease_expires_at)},
            "expires_at": {"N": str(request.expires_at)},
            "key": {"S": request.key},
            "created_at": now,
        }
        if request.scope is not None:
            item["scope"] = {"S": request.scope}
        if request.fingerprint is not None:
            item["fingerprint"] = {"S": request.fingerprint}
        return _refused_or_none(
            self._write(
                "put_item",
                request.record_id,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk) OR #ex < :now",
                ExpressionAttributeNames=_CLAIM_NAMES,
                ExpressionAttributeValues={":now": now},
            )
        )

    def take_over(self, request: ClaimRequest, previous: Record) -> Refused | Record:
        answer = self._write(
            "update_item",
            request.record_id,
            Key={"pk": {"S": request.record_id}},
            UpdateExpression="SET #ow = :me, #le = :lease, #ex = :exp, #at = :at",
            ConditionExpression="#ow = :old AND #st = :ip AND #le <= :now",
            ReturnValues="ALL_NEW",
            ExpressionAttributeNames=_names("#ow", "#le", "#ex", "#at", "#st"),
            ExpressionAttributeValues={
                ":now": {"N": str(request.now_ms)},
                ":me": {"S": request.owner},
                ":lease": {"N": str(request.lease_expires_at)},
                ":exp": {"N": str(request.expires_at)},
                ":at": {"N": str(previous.attempts + 1)},
                ":old": {"S": previous.owner},
                ":ip": _IN_PROGRESS,
            },
        )
        return answer if isinstance(answer, Refused) else record_from_item(answer["Attributes"])

    def finish(self, record: Record) -> Refused | Record | None:
        """A conditional PutItem of the finished record, fenced by its owner token.

        A PutItem rather than an UpdateItem of the claimed item: the execution knows every attribute of its record,
        and DynamoDB Local answers the PutItem about 140 µs sooner (bench/request_shapes.py).
        """
        try:
            return _refused_or_none(self._write("put_item", record.record_id, **_completion(record)))
        except _ItemTooLargeError:
            if record.result is None:  # nothing left to leave out (was a loop)
                raise ResultNotStoredError(f"{record.record_id} cannot be completed: its item is past 400 KB") from None
            logger.warning("result of %s does not fit the item; completing without it", record.record_id)
            stored = record.replace(result=None)
            answer = self.finish(stored)
            return stored if answer is None else answer

    def release(self, record_id: str, owner: str, *, keep_steps: bool) -> Refused | None:
        if keep_steps:
            return _refused_or_none(
                self._write(
                    "update_item",
                    record_id,
                    Key={"pk": {"S": record_id}},
                    UpdateExpression="SET #le = :zero",
                    ConditionExpression="#ow = :me",
                    ExpressionAttributeNames=_names("#le", "#ow"),
                    ExpressionAttributeValues={":zero": {"N": "0"}, ":me": {"S": owner}},
                )
            )
        return _refused_or_none(
            self._write(
                "delete_item",
                record_id,
                Key={"pk": {"S": record_id}},
                ConditionExpression="#ow = :me",
                ExpressionAttributeNames=_names("#ow"),
                ExpressionAttributeValues={":me": {"S": owner}},
            )
        )

    def save_step(self, record_id: str, owner: str, name: str, result: Payload, *, first: bool) -> Refused | None:
        """One UpdateItem: the first step writes the steps map whole, on condition that there is none yet (a claim
        writes none); every other step, or a first one that finds a map (a record taken over from 0.2.0, whose
        claims wrote an empty one), is set in the map. A first save refused because its own resent request had
        landed (the map holds this very result) is saved."""
        value = _payload_value(result)
        try:
            if first:
                refused = self._update_held(
                    record_id,
                    owner,
                    "SET #steps = :steps",
                    _names("#steps"),
                    {":steps": {"M": {name: value}}},
                    no_steps=True,
                )
                found = None if refused is None else refused.current
                if found is None or found.owner != owner or found.status is not Status.IN_PROGRESS:
                    return refused  # saved, or the record is no longer ours
                if found.steps.get(name) == result:
                    return None
            return self._update_held(
                record_id, owner, "SET #steps.#step = :res", {**_names("#steps"), "#step": name}, {":res": value}
            )
        except _ItemTooLargeError:  # each result fits alone, but with the steps saved before it the item passes 400 KB
            raise ResultNotStoredError(
                f"the result of step {name!r:.100} does not fit the record with the steps saved before it (400 KB)"
            ) from None

    def extend_lease(self, record_id: str, owner: str, lease_expires_at: int, expires_at: int) -> Refused | None:
        return self._update_held(
            record_id,
            owner,
            "SET #le = :lease, #ex = :exp",
            _names("#le", "#ex"),
            {":lease": {"N": str(lease_expires_at)}, ":exp": {"N": str(expires_at)}},
        )

    def _update_held(
        self,
        record_id: str,
        owner: str,
        update: str,
        names: dict[str, str],
        values: dict[str, Any],
        no_steps: bool = False,
    ) -> Refused | None:
        """An UpdateItem applied only while ``owner`` holds the record IN_PROGRESS (the fencing condition) and, with
        ``no_steps``, while it has no steps map."""
        return _refused_or_none(
            self._write(
                "update_item",
                record_id,
                Key={"pk": {"S": record_id}},
                UpdateExpression=update,
                ConditionExpression=_HELD_WITHOUT_STEPS if no_steps else _HELD,
                ExpressionAttributeNames={**names, **_HELD_NAMES},
                ExpressionAttributeValues={**values, ":me": {"S": owner}, ":ip": _IN_PROGRESS},
            )
        )

    def record_key(self, record_id: str) -> tuple[str, dict[str, Any]]:
        return self.table_name, {"pk": {"S": record_id}}

    def commit(self, record: Record, writes: Sequence[Write]) -> Refused | WritesRefused | Record | None:
        """The fenced commit; a record whose result does not fit the item with its steps is committed without it
        (as `finish` does), measured before sending: DynamoDB refuses the whole transaction for the item's size."""
        from ..writes import item_size
        from .transaction import transact

        stored = None  # a result alone fits (`record.MAX_PAYLOAD_BYTES`): only saved steps can push it past the limit
        if record.steps and record.result is not None and item_size(item_from_record(record)) > MAX_ITEM_BYTES:
            logger.warning("result of %s does not fit the item; committing without it", record.record_id)
            stored = record.replace(result=None)
        put = {"TableName": self.table_name, **_completion(stored or record)}
        answer = transact(self, writes, {"Put": put}, token=record.owner, record_id=record.record_id)
        return stored if answer is None else answer

    def insert_finished(
        self, record: Record, writes: Sequence[Write], replacing: Record | None = None
    ) -> Refused | WritesRefused | None:
        from .transaction import transact

        now_s = record.completed_at or 0
        put: dict[str, Any] = {"TableName": self.table_name, "Item": item_from_record(record)}
        token = record.owner
        if replacing is None:
            put["ConditionExpression"] = "attribute_not_exists(#pk) OR #ex < :now"
            put["ExpressionAttributeNames"] = _names("#pk", "#ex")
            put["ExpressionAttributeValues"] = {":now": {"N": str(now_s)}}
        else:  # another request than the refused one, so another token: DynamoDB ties a token to its parameters
            put["ConditionExpression"] = "#ow = :old AND #st = :ip AND #le <= :now"
            put["ExpressionAttributeNames"] = _names("#ow", "#st", "#le")
            put["ExpressionAttributeValues"] = {
                ":old": {"S": replacing.owner},
                ":ip": _IN_PROGRESS,
                ":now": {"N": str(now_s * 1000)},
            }
            token = hashlib.sha256(f"{record.owner} replacing {replacing.owner}".encode()).hexdigest()
        return transact(self, writes, {"Put": put}, token=token, record_id=record.record_id)

    def get(self, record_id: str) -> Record | None:
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key={"pk": {"S": record_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from exc
        item = response.get("Item")
        return record_from_item(item) if item else None

    def _error(self, exc: Exception) -> StoreUnavailableError | StoreConfigurationError:
        """The typed error of a failed call: a misconfiguration (`StoreConfigurationError`) or an outage."""
        from .diagnosis import store_error

        return store_error(exc, self.table_name, self.client)

    def _write(self, operation: str, record_id: str, **request: Any) -> Refused | dict[str, Any]:
        """Send one conditional write: its response, or `Refused` with the record that refused the condition."""
        try:
            response: dict[str, Any] = getattr(self.client, operation)(
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
            raise self._error(exc) from exc
        except BotoCoreError as exc:
            raise self._error(exc) from exc
        return response


def _refused_or_none(answer: Refused | dict[str, Any]) -> Refused | None:
    return answer if isinstance(answer, Refused) else None


def _completion(record: Record) -> dict[str, Any]:
    """The conditional put of a finished record (fenced by its owner), as PutItem or a transaction takes it."""
    return {
        "Item": item_from_record(record),
        "ConditionExpression": _HELD,
        "ExpressionAttributeNames": _HELD_NAMES,
        "ExpressionAttributeValues": {":me": {"S": record.owner}, ":ip": _IN_PROGRESS},
    }


def _payload_value(payload: Payload) -> dict[str, Any]:
    return {"S": payload} if isinstance(payload, str) else {"B": payload}


class _ItemTooLargeError(Exception):
    """DynamoDB refused an item past its size limit (internal: `finish` retries without the result; `save_step`
    says `ResultNotStoredError`)."""


@cache
def _names(*placeholders: str) -> dict[str, str]:
    """The ExpressionAttributeNames of ``placeholders``, built once per combination (callers never change it)."""
    return {p: _NAMES[p] for p in placeholders}


_CLAIM_NAMES = _names("#pk", "#ex")
_HELD_NAMES = _names("#ow", "#st")
"""The names of the claim's condition and of the fence (`_HELD`), looked up once rather than per call."""


def record_from_item(item: dict[str, Any]) -> Record:
    """A record from its low-level DynamoDB item (every duplicate goes through here: kept to plain lookups).

    An item this library did not write (an unknown status, an attribute of the wrong type) is `ResultUnreadableError`:
    it is reported as unusable, like a corrupt result, and nothing runs again because of it.
    """
    try:
        return _record(item)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        pk = item.get("pk", {}).get("S") if isinstance(item.get("pk"), dict) else None
        raise ResultUnreadableError(f"the record {pk!r} is malformed ({type(exc).__name__}: {exc})") from None


def _record(item: dict[str, Any]) -> Record:
    """Plain lookups and conditional expressions, no helper calls: every duplicate reads a record."""
    get = item.get
    steps, result = get("steps"), get("result")
    lease, key, scope, fingerprint = get("lease_expires_at"), get("key"), get("scope"), get("fingerprint")
    attempts, created, completed = get("attempts"), get("created_at"), get("completed_at")
    return Record(
        item["pk"]["S"],
        _STATUSES[item["status"]["S"]],
        item["owner"]["S"],
        int(item["expires_at"]["N"]),
        int(lease["N"]) if lease else None,
        key["S"] if key else None,
        scope["S"] if scope else None,
        fingerprint["S"] if fingerprint else None,
        _payload(result) if result else None,
        {name: _payload(value) for name, value in steps["M"].items()} if steps else None,
        (int(attempts["N"]) if attempts else 0) or 1,
        int(created["N"]) if created else None,
        int(completed["N"]) if completed else None,
    )


_STATUSES = {status.value: status for status in STATUSES}


def _payload(value: dict[str, Any]) -> Payload:
    return value["S"] if "S" in value else bytes(value["B"])


def item_from_record(record: Record) -> dict[str, Any]:
    """The low-level DynamoDB item of a record (the inverse of `record_from_item`), with only the attributes it has:
    every completion sends one, so plain conditions rather than loops."""
    item: dict[str, Any] = {
        "pk": {"S": record.record_id},
        "status": {"S": record.status},
        "owner": {"S": record.owner},
        "expires_at": {"N": str(record.expires_at)},
    }
    if record.attempts != 1:  # absent is 1, as a claim writes it
        item["attempts"] = {"N": str(record.attempts)}
    if record.key is not None:
        item["key"] = {"S": record.key}
    if record.scope is not None:
        item["scope"] = {"S": record.scope}
    if record.fingerprint is not None:
        item["fingerprint"] = {"S": record.fingerprint}
    if record.result is not None:
        item["result"] = _payload_value(record.result)
    if record.steps:
        item["steps"] = {"M": {name: _payload_value(p) for name, p in record.steps.items()}}
    if record.lease_expires_at is not None:
        item["lease_expires_at"] = {"N": str(record.lease_expires_at)}
    if record.created_at is not None:
        item["created_at"] = {"N": str(record.created_at)}
    if record.completed_at is not None:
        item["completed_at"] = {"N": str(record.completed_at)}
    return item
