"""One daemon thread per process that renews every held lease when it is due (DESIGN.md, "Leases").

One thread for all leases, as the DynamoDB Lock Client has one heartbeat thread per client, and for async functions
too: a coroutine that blocks its event loop cannot starve its own renewals as an asyncio task would.

A call that ends before its first renewal must cost next to nothing: holding a lease is one dict insert and one
comparison, releasing it one dict removal, with no lock taken and no thread woken. The thread publishes when it
will look next (``_wake_at``); only a lease due before then takes the lock to wake it. The thread publishes before
it looks at the held leases, and a holder inserts before it reads the publication, so (the interpreter running one
of them at a time) either the thread sees the new lease or the holder sees that it must wake the thread.
The thread makes no call while no lease is held: between invocations, a frozen sandbox renews nothing.
"""

from __future__ import annotations

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
"""The thread wakes at most this often (renewals come a few hundredths of a second late; their periods are seconds)."""


class Renewer:
    """The held leases, each with when its next renewal is due, and the thread that renews them."""

    def __init__(self) -> None:
        self._held: dict[Lease, float] = {}
        """Every lease to renew, with its due time (monotonic s); only leases still running are in it."""
        self._ready = threading.Condition(threading.Lock())
        self._wake_at = math.inf
        """When the thread looks next (monotonic s): -inf while it is awake, inf before it starts or with no lease."""
        self._thread: threading.Thread | None = None

    def hold(self, lease: Lease, due: float) -> None:
        """Renew ``lease`` from ``due`` (monotonic s) on, until `release`."""
        self._held[lease] = due
        if due < self._wake_at:  # the thread would sleep past it (or is not started): wake it
            with self._ready:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="lambda-idempotency-renewer", daemon=True)
                    self._thread.start()
                self._ready.notify()

    def release(self, lease: Lease) -> None:
        """Renew ``lease`` no more (its execution ended)."""
        self._held.pop(lease, None)

    def _run(self) -> None:
        while True:
            self._renew_due()
            with self._ready:
                self._wake_at = math.inf  # published first: a lease held from here on is seen below, or wakes us
                now = time.monotonic()
                earliest = min(self._held.copy().values(), default=math.inf)
                if earliest > now:
                    self._wake_at = max(earliest, now + GRANULARITY_S)
                    self._ready.wait(None if self._wake_at == math.inf else self._wake_at - now)
                self._wake_at = -math.inf

    def _renew_due(self) -> None:
        """Renew each held lease that is due, and note when it is due next (or drop it)."""
        now = time.monotonic()
        for lease, due in self._held.copy().items():  # a copy: holders insert and remove while it runs
            if due > now:
                continue
            try:
                following = lease.renew_due()
            except Exception:  # never let one lease stop the renewal of the others
                logger.exception("renewal of %s failed", lease.record_id)
                following = None
            if following is None or not lease.active:
                self._held.pop(lease, None)
            else:
                self._held[lease] = following


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
