"""An in-process store with the same conditional semantics as `DynamoDBStore`.

For unit tests and local runs; records live in one process, so it gives no protection across Lambda containers.
One lock serialises every operation, as DynamoDB serialises writes to one item.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..record import Payload, Record, Status
from .base import ClaimRequest, Refused, Store, WritesRefused

if TYPE_CHECKING:
    from ..encryption import KmsEncryption
    from ..offload import S3Offload
    from ..writes import Write


class MemoryStore(Store):
    def __init__(self, *, offload: S3Offload | None = None, encryption: KmsEncryption | None = None) -> None:
        self.with_payloads(offload, encryption)
        self._records: dict[str, Record] = {}
        self._lock = threading.Lock()

    def claim(self, request: ClaimRequest) -> Refused | None:
        with self._lock:
            found = self._records.get(request.record_id)
            if found is not None and not found.is_expired(request.now_s):
                return Refused(found)
            self._records[request.record_id] = Record(
                record_id=request.record_id,
                status=Status.IN_PROGRESS,
                owner=request.owner,
                expires_at=request.expires_at,
                lease_expires_at=request.lease_expires_at,
                key=request.key,
                scope=request.scope,
                fingerprint=request.fingerprint,
                created_at=request.now_s,
            )
            return None

    def take_over(self, request: ClaimRequest, previous: Record) -> Refused | Record:
        with self._lock:
            found = self._records.get(request.record_id)
            if (
                found is None
                or found.owner != previous.owner
                or found.status is not Status.IN_PROGRESS
                or found.lease_expires_at is None
                or found.lease_expires_at > request.now_ms
            ):
                return Refused(found)
            taken = found.replace(
                owner=request.owner,
                lease_expires_at=request.lease_expires_at,
                expires_at=request.expires_at,
                attempts=found.attempts + 1,
            )
            self._records[request.record_id] = taken
            return taken

    def finish(self, record: Record) -> Refused | Record | None:
        with self._lock:
            found = self._records.get(record.record_id)
            if found is None or found.owner != record.owner or found.status is not Status.IN_PROGRESS:
                return Refused(found)
            self._records[record.record_id] = record
            return None

    def release(self, record_id: str, owner: str, *, keep_steps: bool) -> Refused | None:
        with self._lock:
            found = self._records.get(record_id)
            if found is None or found.owner != owner:
                return Refused(found)
            if keep_steps:
                self._records[record_id] = found.replace(lease_expires_at=0)
            else:
                del self._records[record_id]
            return None

    def save_step(self, record_id: str, owner: str, name: str, result: Payload, *, first: bool) -> Refused | None:
        with self._lock:
            found = self._records.get(record_id)
            return self._update_held(record_id, owner, steps={**found.steps, name: result} if found else {})

    def extend_lease(self, record_id: str, owner: str, lease_expires_at: int, expires_at: int) -> Refused | None:
        with self._lock:
            return self._update_held(record_id, owner, lease_expires_at=lease_expires_at, expires_at=expires_at)

    def insert_finished(
        self, record: Record, writes: Sequence[Write], replacing: Record | None = None
    ) -> Refused | WritesRefused | None:
        """Writes never reach this store: with no `record_key`, `current().write` refuses them."""
        with self._lock:
            found = self._records.get(record.record_id)
            if replacing is not None:
                if found is None or not _ended_claim_of(found, replacing.owner, (record.completed_at or 0) * 1000):
                    return Refused(found)
            elif found is not None and not found.is_expired(record.completed_at or 0):
                return Refused(found)
            self._records[record.record_id] = record
            return None

    def _update_held(self, record_id: str, owner: str, **changes: Any) -> Refused | None:
        """Change the record only while ``owner`` holds it IN_PROGRESS (the fencing condition); lock held."""
        found = self._records.get(record_id)
        if found is None or found.owner != owner or found.status is not Status.IN_PROGRESS:
            return Refused(found)
        self._records[record_id] = found.replace(**changes)
        return None

    def get(self, record_id: str) -> Record | None:
        with self._lock:
            return self._records.get(record_id)


def _ended_claim_of(found: Record, owner: str, now_ms: int) -> bool:
    """``found`` is still the claim of ``owner``, in progress, with its lease ended at ``now_ms``."""
    return (
        found.owner == owner
        and found.status is Status.IN_PROGRESS
        and found.lease_expires_at is not None
        and found.lease_expires_at <= now_ms
    )
