"""What the CLI shows of a record: its fields as text and JSON, honest about every state.

An in-progress record's lease is told as held, lapsed or released; a result as text, or as encrypted, offloaded or
not stored; a time no date can show as its number. The CLI holds no key to decrypt and no S3 client to fetch.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from .errors import ResultUnreadableError
from .payloads import ENCRYPTED, OFFLOADED
from .record import Payload, Record, Status, unpack
from .scan import operation_of


def record_fields(record: Record, *, with_result: bool) -> dict[str, Any]:
    """The record as `show` (``with_result``: owner, fingerprint, steps, result) and `list` show it."""
    now_ms = int(time.time() * 1000)
    fields: dict[str, Any] = {
        "operation": operation_of(record),
        "key": record.key,
        "scope": record.scope,
        "status": record.status.value,
        "expired": record.is_expired(now_ms // 1000),
        "attempts": record.attempts,
        "created_at": when(record.created_at),
        "completed_at": when(record.completed_at),
        "expires_at": when(record.expires_at),
        "lease_expires_at": when(record.lease_expires_at / 1000) if record.lease_expires_at is not None else None,
        "lease": lease_text(record, now_ms),
        "record_id": record.record_id,
    }
    if with_result:
        fields["owner"] = record.owner
        fields["fingerprint"] = record.fingerprint
        fields["steps"] = sorted(record.steps)
        try:
            fields["result"] = result_text(record.result) if record.result is not None else None
            if record.result is None and record.status in NOT_STORED:
                fields["result_error"] = NOT_STORED[record.status]
        except ResultUnreadableError as exc:
            fields["result"] = None
            fields["result_error"] = str(exc)
    return fields


def lease_text(record: Record, now_ms: int) -> str | None:
    """What an in-progress record's lease means for the next call: held (it gets `InProgressError`), lapsed (a
    crashed or stuck execution: the next call takes the key over) or released (an undeclared error after saved
    steps ended the lease: the next call runs again and resumes them). None for a finished record."""
    lease = record.lease_expires_at
    if record.status is not Status.IN_PROGRESS:
        return None
    if lease is None:
        return "none stored (written by another tool or version)"
    if lease == 0:
        saved = len(record.steps)
        resuming = f", resuming {saved} saved step{'' if saved == 1 else 's'}" if saved else ""
        return f"released: the next call runs it again{resuming}"
    if record.lease_is_live(now_ms):
        return f"held until {when(lease / 1000)}: calls get InProgressError"
    return f"lapsed at {when(lease / 1000)}: the next call takes it over"


NOT_STORED = {
    Status.COMPLETED: "not stored (too big, or not serializable): every replay raises ResultNotStoredError",
    Status.FAILED: "not stored (too big, or not serializable): every replay raises CachedFailureError",
}
"""What a finished record without a stored outcome answers (the function's outcome could not be stored)."""


def result_text(payload: Payload) -> str:
    """A stored result as text; an encrypted or offloaded one as what it is (the CLI holds no key to read it)."""
    if isinstance(payload, bytes) and payload[:1] == ENCRYPTED:
        return f"(encrypted: {len(payload)} bytes)"
    if isinstance(payload, bytes) and payload[:1] == OFFLOADED:
        return f"(in S3: {payload[1:].decode(errors='replace')})"
    return unpack(payload)


def when(epoch_s: float | None) -> str | None:
    """An epoch time as an ISO date; one no date can show (milliseconds written as seconds, by another tool or an
    older version) as its number, rather than a traceback for the whole table."""
    if epoch_s is None:
        return None
    try:
        return datetime.datetime.fromtimestamp(epoch_s, datetime.UTC).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        return f"{epoch_s:.0f} (not a date)"
