"""Reading records out of the table for the CLI: scans filtered in DynamoDB, page by page, with a progress bar.

Only the console script imports this module (it draws with rich). `Scan` is the one place that knows how a raw key
is stored (the ``key`` attribute), so a change to that (hashed keys) changes the search by key here alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import Progress

from .errors import ResultUnreadableError
from .record import Record
from .stores.dynamodb import DynamoDBStore, record_from_item

LISTED = [
    "pk",
    "key",
    "scope",
    "status",
    "owner",
    "expires_at",
    "lease_expires_at",
    "attempts",
    "created_at",
    "completed_at",
]
"""What `list` and `stats` read: everything but results, fingerprints and steps, so scans stay cheap."""
FOREIGN_ITEM = "is not a lambda-idempotency record (a Powertools table? its records differ: see the migration guide)"


class ForeignItemError(ValueError):
    """An item of the table that is not a record of this library."""


def record_of(item: dict[str, Any]) -> Record:
    try:
        return record_from_item(item)
    except ResultUnreadableError:  # what record_from_item says of an item it cannot decode
        pk = item.get("pk")
        described = pk.get("S", pk) if isinstance(pk, dict) else item
        raise ForeignItemError(f"item {described} {FOREIGN_ITEM}") from None


class Scan:
    """Every record that matches, page by page, with a progress bar on a terminal (the table's size is approximate).

    ``keys`` finds a key under any scope by the forms it may be stored in: the ``key`` attribute holds the raw key,
    or its keyed hash with ``hash_keys`` (DESIGN.md, "The record"); this filter is the one place that searches by it.
    With ``max_scanned`` the scan stops after reading that many items; ``complete`` then says whether it read them all.
    An item that is not a record raises `ForeignItemError`, or with ``skip_foreign`` is noted in ``foreign`` and passed.
    """

    def __init__(
        self,
        store: DynamoDBStore,
        err: Console,
        page_size: int | None,
        *,
        status: str | None = None,
        operation: str | None = None,
        keys: list[str] | None = None,
        scope: str | None = None,
        max_scanned: int | None = None,
        skip_foreign: bool = False,
    ) -> None:
        self.store = store
        self.skip_foreign = skip_foreign
        self.foreign: list[str] = []
        """With ``skip_foreign``: what was said of each item that is not a record (the scan goes on past them)."""
        self.err = err
        self.operation = operation
        self.max_scanned = max_scanned
        self.scanned = 0
        self.complete = False
        names = {f"#a{i}": name for i, name in enumerate(LISTED)}
        self.request: dict[str, Any] = {
            "TableName": store.table_name,
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
        }
        if page_size is not None:
            self.request["Limit"] = page_size
        conditions, values = [], {}
        for attribute, value in (("status", status), ("scope", scope)):
            if value is not None:
                conditions.append(f"#a{LISTED.index(attribute)} = :{attribute}")
                values[f":{attribute}"] = {"S": value}
        if keys:
            placeholders = [f":key{i}" for i in range(len(keys))]
            conditions.append(f"#a{LISTED.index('key')} IN ({', '.join(placeholders)})")
            values.update({name: {"S": value} for name, value in zip(placeholders, keys, strict=True)})
        if operation is not None:
            conditions.append("begins_with(#a0, :prefix)")
            values[":prefix"] = {"S": f"{operation}#"}
        if conditions:
            self.request["FilterExpression"] = " AND ".join(conditions)
            self.request["ExpressionAttributeValues"] = values

    def __iter__(self) -> Iterator[Record]:
        client, request = self.store.client, dict(self.request)
        size = client.describe_table(TableName=self.store.table_name)["Table"].get("ItemCount") or None
        if self.max_scanned is not None and size is not None:
            size = min(size, self.max_scanned)
        with Progress(console=self.err, transient=True, disable=not self.err.is_terminal) as progress:
            task = progress.add_task(f"scanning {self.store.table_name}", total=size)
            while self.max_scanned is None or self.scanned < self.max_scanned:
                if self.max_scanned is not None:
                    request["Limit"] = min(request.get("Limit", self.max_scanned), self.max_scanned - self.scanned)
                page = client.scan(**request)
                self.scanned += page.get("ScannedCount", 0)
                progress.advance(task, page.get("ScannedCount", 0))
                for item in page.get("Items", []):
                    try:
                        record = record_of(item)
                    except ForeignItemError as exc:
                        if not self.skip_foreign:
                            raise
                        self.foreign.append(str(exc))
                        continue
                    if self.operation is None or operation_of(record) == self.operation:
                        yield record
                if "LastEvaluatedKey" not in page:
                    self.complete = True
                    return
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def operation_of(record: Record) -> str:
    return record.record_id.rsplit("#", 1)[0]
