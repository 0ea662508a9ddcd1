"""One daemon thread per process that renews every held lease when it is due (DESIGN.md, "Leases").

One thread for all leases, as the DynamoDB Lock Client has one heartbeat thread per client, and for async functions
too: a call that ends before its first renewal costs a heap push and nothing else (no thread started per call, no
round trip), and a coroutine that blocks its event loop cannot starve its own renewals as an asyncio task would.
Leases leave the heap lazily: a stopped one is dropped when it comes due, so stopping costs no search.
The thread makes no call while no lease is held: between invocations, a frozen sandbox renews nothing.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lease import Lease

logger = logging.getLogger("lambda_idempotency")

GRANULARITY_S = 0.05
"""The thread wakes at most this often: the stale entries of many short calls are dropped together, not one wake-up
each (renewals come a few hundredths of a second late; their periods are seconds)."""


class Renewer:
    """A heap of (due, lease) and the thread that renews each lease when it comes due."""

    def __init__(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._due: list[tuple[float, int, Lease]] = []
        self._order = itertools.count()
        self._wake_at = math.inf
        """When the thread looks at the heap next: inf while it waits for work, -inf while it renews."""
        self._thread: threading.Thread | None = None

    def schedule(self, lease: Lease, due: float) -> None:
        """Renew ``lease`` at ``due`` (monotonic seconds)."""
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lambda-idempotency-renewer", daemon=True)
                self._thread.start()
            heapq.heappush(self._due, (due, next(self._order), lease))
            if due < self._wake_at:
                self._ready.notify()

    def _run(self) -> None:
        while True:
            lease = self._next()
            try:
                due = lease.renew_due()
            except Exception:  # never let one lease stop the renewal of the others
                logger.exception("renewal of %s failed", lease.record_id)
                continue
            if due is not None:
                self.schedule(lease, due)

    def _next(self) -> Lease:
        """Wait for the first active lease that is due, and take it off the heap."""
        with self._ready:
            while True:
                while self._due and not self._due[0][2].active:
                    heapq.heappop(self._due)
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    self._wake_at = -math.inf
                    return heapq.heappop(self._due)[2]
                self._wake_at = max(self._due[0][0], now + GRANULARITY_S) if self._due else math.inf
                self._ready.wait(None if not self._due else self._wake_at - now)


_renewer: Renewer | None = None


def renewer() -> Renewer:
    """The process's renewer, made on first use (a forked child makes its own: threads do not survive a fork)."""
    global _renewer  # noqa: PLW0603 - one renewer per process, by nature
    if _renewer is None:
        _renewer = Renewer()
    return _renewer


def _forget_after_fork() -> None:
    global _renewer  # noqa: PLW0603
    _renewer = None


os.register_at_fork(after_in_child=_forget_after_fork)
