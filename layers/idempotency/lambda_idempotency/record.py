"""The idempotency record: one item per (operation, scope, key), and how its stored result is packed.

A record is a plain value; stores turn it into their own representation. Time fields follow DESIGN.md:
``expires_at`` in epoch seconds (the table's TTL attribute), ``lease_expires_at`` in epoch milliseconds.
"""

from __future__ import annotations

import enum
import zlib
from typing import Any

Payload = str | bytes
"""A stored result: JSON text, or zlib-compressed JSON once it is past `COMPRESS_ABOVE` bytes."""

COMPRESS_ABOVE = 4096
MAX_PAYLOAD_BYTES = 350_000
"""A result bigger than this after compression is not stored (DynamoDB's item limit is 400 KB in all)."""


class Status(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Record:
    """One record as stored. Immutable: `replace` makes a changed copy (caches and stores share instances).

    A plain slotted class, not a dataclass: defining a frozen dataclass costs most of a millisecond at import,
    and every cold start pays it.
    """

    __slots__ = (  # noqa: RUF023 - in field order: repr and replace() follow it
        "record_id",
        "status",
        "owner",
        "expires_at",
        "lease_expires_at",
        "key",
        "scope",
        "fingerprint",
        "result",
        "steps",
        "attempts",
        "created_at",
        "completed_at",
    )
    record_id: str
    status: Status
    owner: str
    expires_at: int
    lease_expires_at: int | None
    key: str | None
    scope: str | None
    fingerprint: str | None
    result: Payload | None
    steps: dict[str, Payload]
    attempts: int
    created_at: int | None
    completed_at: int | None

    def __init__(
        self,
        record_id: str,
        status: Status,
        owner: str,
        expires_at: int,
        lease_expires_at: int | None = None,
        key: str | None = None,
        scope: str | None = None,
        fingerprint: str | None = None,
        result: Payload | None = None,
        steps: dict[str, Payload] | None = None,
        attempts: int = 1,
        created_at: int | None = None,
        completed_at: int | None = None,
    ) -> None:
        init = object.__setattr__
        init(self, "record_id", record_id)
        init(self, "status", status)
        init(self, "owner", owner)
        init(self, "expires_at", expires_at)
        init(self, "lease_expires_at", lease_expires_at)
        init(self, "key", key)
        init(self, "scope", scope)
        init(self, "fingerprint", fingerprint)
        init(self, "result", result)
        init(self, "steps", {} if steps is None else steps)
        init(self, "attempts", attempts)
        init(self, "created_at", created_at)
        init(self, "completed_at", completed_at)

    def replace(self, **changes: Any) -> Record:
        """A copy with ``changes`` applied (what ``dataclasses.replace`` does for a dataclass)."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return Record(**fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Record is immutable; use replace(). Cannot assign {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Record is immutable. Cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Record:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # equal by value, and ``steps`` is a dict

    def __repr__(self) -> str:
        return f"Record({', '.join(f'{name}={getattr(self, name)!r}' for name in self.__slots__)})"

    def is_expired(self, now_s: int) -> bool:
        """TTL deletes late: a record past ``expires_at`` counts as absent everywhere."""
        return self.expires_at < now_s

    def lease_is_live(self, now_ms: int) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > now_ms


def pack(text: str) -> Payload | None:
    """The stored form of a result's JSON text, or None when it is too big to store."""
    data = text.encode()
    if len(data) <= COMPRESS_ABOVE:
        return text
    packed = zlib.compress(data, 6)
    return packed if len(packed) <= MAX_PAYLOAD_BYTES else None


def unpack(payload: Payload) -> str:
    return payload if isinstance(payload, str) else zlib.decompress(payload).decode()
