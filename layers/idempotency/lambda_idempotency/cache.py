"""A bounded, per-container cache of COMPLETED records: a warm duplicate costs no round trip.

Only completed records are kept (an in-flight or failed key must be asked of the store), each until its own
``expires_at``. An operator deleting a record in the table does not reach a warm container: it may replay from
here until the entry is evicted or expires (documented in the README).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .record import Record, Status

DEFAULT_SIZE = 256


class LocalCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError(f"local_cache size must be at least 1, got {size!r}")
        self._size = size
        self._entries: OrderedDict[str, Record] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, record_id: str, now_s: int) -> Record | None:
        with self._lock:
            record = self._entries.get(record_id)
            if record is None:
                return None
            if record.is_expired(now_s):
                del self._entries[record_id]
                return None
            self._entries.move_to_end(record_id)
            return record

    def put(self, record: Record) -> None:
        """Keep a COMPLETED record without its steps: a replay reads the result alone, and steps may take 400 KB."""
        if record.status is not Status.COMPLETED:
            return
        if record.steps:
            record = record.replace(steps=None)
        with self._lock:
            self._entries[record.record_id] = record
            self._entries.move_to_end(record.record_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
