"""The idempotency record: one item per (operation, scope, key), and how its stored result is packed.

A record is a plain value; stores turn it into their own representation. Time fields follow DESIGN.md:
``expires_at`` in epoch seconds (the table's TTL attribute), ``lease_expires_at`` in epoch milliseconds.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass, field

Payload = str | bytes
"""A stored result: JSON text, or zlib-compressed JSON once it is past `COMPRESS_ABOVE` bytes."""

COMPRESS_ABOVE = 4096
MAX_PAYLOAD_BYTES = 350_000
"""A result bigger than this after compression is not stored (DynamoDB's item limit is 400 KB in all)."""


class Status(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Record:
    record_id: str
    status: Status
    owner: str
    expires_at: int
    lease_expires_at: int | None = None
    key: str | None = None
    scope: str | None = None
    fingerprint: str | None = None
    result: Payload | None = None
    steps: dict[str, Payload] = field(default_factory=dict)
    attempts: int = 1
    created_at: int | None = None
    completed_at: int | None = None

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
