"""The lease an execution holds on its key: renewed in the background, checked before every step (DESIGN.md, "Leases").

Built on the pattern of AWS's DynamoDB Lock Client (``leaseDuration`` plus ``heartbeatPeriod``): a key is held by
renewing a short lease, not by taking one long lease, so an execution that is killed frees its key within one lease
instead of blocking every retry until its invocation's time would have run out.

A `Lease` is one execution's hold on its record: when the hold was last confirmed, whether it was lost, the fence a
step passes before its function runs, and `heartbeat`. The renewals themselves come from `renewer.Renewer`, one
daemon thread for every lease of the process. The protocol (claim, renewal, take-over, fence, fenced commit) is
model-checked with spin under crashes, freezes and clock skew: docs/lease-model.md and tests/model/lease.pml.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from . import observability as observe
from .errors import LeaseLostError, StoreUnavailableError
from .renewer import renewer

if TYPE_CHECKING:
    from .stores.base import Refused, Store


class Terms(Protocol):
    """What a lease takes from the engine's `Guard` that claims it."""

    store: Store
    operation: str
    lease_ms: int | None
    renew: bool
    ttl_s: int
    clock: Clock

    def retrying(self, record_id: str, call: Callable[..., Any], *args: Any) -> Any: ...


logger = logging.getLogger("lambda_idempotency")

DEFAULT_LEASE_MS = 20_000
"""The default lease, as the DynamoDB Lock Client's. Renewed every third (6.7 s), a renewal that fails still has two
periods (13 s, more than two of botocore's 5 s read timeouts) to land before the lease is lost; an execution that is
killed frees its key at most 21 s (lease + margin) after its last renewal."""
UNRENEWED_LEASE_MS = 60_000
"""The lease of ``renew=False`` outside Lambda, where no remaining time sizes it."""
LEASE_MARGIN_MS = 1_000
"""Added to every stored lease end: a retry after a Lambda timeout takes over a little after the deadline, and a
container whose clock runs ahead (up to `MAX_CLOCK_SKEW_MS`) still sees the lease live while its holder counts on it."""
MAX_CLOCK_SKEW_MS = 500
"""The assumption about clocks: two containers' epoch clocks differ by at most this much (NTP or Amazon Time Sync
keep them within milliseconds). A holder counts on its lease until the stored end, less this, by its own clocks."""
RENEWALS_PER_LEASE = 3
"""A lease is renewed every lease/3; the fence renews first when less than that is left."""
MIN_RETRY_S = 0.05

Clock = Callable[[], float]
Send = Callable[..., Any]
"""How a call that must land is sent: `Completion.retrying`, through the guard (``send(record_id, call, *args)``)."""


class Lease:
    """One execution's hold on its record: renewed by the `Renewer`, fenced before steps, lost once refused.

    The hold is measured from the moment the request that confirmed it was *sent* (the claim, or the last renewal
    that was accepted), on the local monotonic clock and on the injected epoch clock, whichever says more time has
    passed: a frozen process that resumes sees its whole freeze, and a test's clock moves leases as it moves time.
    """

    __slots__ = (  # noqa: RUF023 - public first, then private
        "record_id",
        "owner",
        "lost",
        "expires_at_ms",
        "ttl_expires_at",
        "_terms",
        "_length_ms",
        "_deadline_ms",
        "_sent_ms",
        "_sent_mono",
        "_stopped",
        "_lock",
    )

    def __init__(self, terms: Terms, record_id: str, owner: str, lambda_context: Any, now_ms: int) -> None:
        """The lease a claim sent at ``now_ms`` asks for: ``lease=`` (else the default), capped by the invocation's
        remaining time when ``lambda_context`` gives it."""
        try:
            left: int | None = int(lambda_context.get_remaining_time_in_millis())
        except (AttributeError, TypeError):  # no Lambda context (None, or a stand-in without the method)
            left = None
        length_ms = terms.lease_ms  # `lease=`, else the renewed default, else (not renewed) the remaining time
        if length_ms is None:
            length_ms = DEFAULT_LEASE_MS if terms.renew else UNRENEWED_LEASE_MS if left is None else max(left, 0)
        self.record_id = record_id
        self.owner = owner
        self.lost: str | None = None
        """Why the lease was lost (refused, or no renewal landed in time); None while it is held."""
        self._terms = terms
        self._length_ms = length_ms
        self._deadline_ms = None if left is None else now_ms + left
        self._sent_ms = now_ms
        self._sent_mono = time.monotonic()
        self.expires_at_ms = self._end(now_ms)
        """The lease's end as stored (epoch ms): the claim's, then each accepted renewal's."""
        self.ttl_expires_at = _ttl(now_ms, terms.ttl_s, self.expires_at_ms)
        """The record's TTL (epoch s) the claim stores, which outlives the lease (a renewal sends its own)."""
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def period_s(self) -> float:
        """How often the lease is renewed."""
        return self._length_ms / RENEWALS_PER_LEASE / 1000

    @property
    def active(self) -> bool:
        """Still to be renewed: the execution runs and the lease is held."""
        return not self._stopped and self.lost is None

    def left_ms(self) -> float:
        """How much longer this execution provably holds the lease, by the more pessimistic of its two clocks."""
        elapsed = max((time.monotonic() - self._sent_mono) * 1000, self._terms.clock() * 1000 - self._sent_ms)
        return self.expires_at_ms - MAX_CLOCK_SKEW_MS - self._sent_ms - elapsed

    def hold(self) -> None:
        """The claim won: renew from now on (unless ``renew=False``)."""
        if self._terms.renew:
            renewer().hold(self, self._sent_mono + self._length_ms / (RENEWALS_PER_LEASE * 1000))

    def check(self, what: str) -> None:
        """Raise `LeaseLostError` if the lease was lost, before ``what`` does anything."""
        if self.lost is not None:
            raise LeaseLostError(f"{self.record_id} lost its lease ({self.lost}); {what} did nothing")

    def fence(self, what: str) -> None:
        """Before a step's function runs: prove the lease is held for at least a renewal period more, renewing it
        first (synchronously) when less is left.

        A renewal still in flight does not count, so a process frozen between two steps renews (and learns that the
        key was taken over) before it runs anything. Once the lease runs to the invocation's deadline it cannot be
        renewed: the step runs while any of it is left (Lambda stops the invocation at the deadline).
        """
        self.check(what)
        period_ms = self._length_ms / RENEWALS_PER_LEASE
        if self.left_ms() > period_ms:
            return
        with self._lock:  # a background renewal may be in flight: its answer counts
            while self.left_ms() <= period_ms and self._extends():  # renewed until a period is left, or lost
                self.check(what)
                if self.left_ms() <= 0:
                    self._lose("no renewal landed before it ended")
                    self.check(what)
                try:
                    self._renew(retried=True)
                except StoreUnavailableError as exc:
                    logger.warning("could not renew the lease of %s before %s (%s)", self.record_id, what, exc)
            self.check(what)
            if self.left_ms() <= 0:  # capped by the invocation's deadline, and past it
                self._lose("no renewal landed before it ended")
                self.check(what)

    def heartbeat(self) -> None:
        """Renew now (`Execution.heartbeat`); `LeaseLostError` if another execution took the key over."""
        self.check("heartbeat()")
        with self._lock:
            try:
                self._renew(retried=True)
            except StoreUnavailableError:
                if self.left_ms() <= 0:
                    self._lose("no renewal landed before it ended")
                raise
        self.check("heartbeat()")

    def renew_due(self) -> float | None:
        """The `Renewer`'s call, when a renewal is due: renew, and say when (monotonic s) the next one is due.

        None stops the renewals: the execution ended, the lease was lost, or it already runs to the invocation's
        deadline. A renewal that cannot be sent is tried again soon, until the lease ends: then it is lost.
        """
        with self._lock:
            if not self.active or not self._extends():
                return None
            try:
                self._renew(retried=False)
            except Exception as exc:  # the thread outlives any failure; StoreUnavailableError is the usual one
                left_ms = self.left_ms()
                if left_ms <= 0:
                    self._lose(f"no renewal landed before it ended: {exc}")
                    return None
                logger.debug("renewal of %s failed (%s); trying again", self.record_id, exc)
                return time.monotonic() + max(min(self.period_s, left_ms / 2000), MIN_RETRY_S)
            return self._sent_mono + self.period_s if self.active else None

    def stop(self) -> None:
        """End the renewals (the execution finishes, fails or is interrupted); waits for one that is in flight."""
        if not self._stopped:
            with self._lock:
                self._stopped = True
            if self._terms.renew:
                renewer().release(self)

    def _end(self, now_ms: int) -> int:
        """The stored end of a lease confirmed now: a lease length on, capped by the invocation, plus the margin."""
        until = now_ms + self._length_ms
        if self._deadline_ms is not None:
            until = min(until, self._deadline_ms)
        return max(until, now_ms) + LEASE_MARGIN_MS

    def _extends(self) -> bool:
        """Whether a renewal sent now would move the lease's end on (not past the invocation's deadline)."""
        return self._end(int(self._terms.clock() * 1000)) > self.expires_at_ms

    def _renew(self, *, retried: bool) -> None:
        """One conditional UpdateItem that moves the lease on from now (``_lock`` held); refused: the lease is lost."""
        terms = self._terms
        now_ms = int(terms.clock() * 1000)
        sent_mono = time.monotonic()
        until = self._end(now_ms)
        args = (self.record_id, self.owner, until, _ttl(now_ms, terms.ttl_s, until))
        refused: Refused | None
        if retried:
            refused = terms.retrying(self.record_id, terms.store.extend_lease, *args)
        else:
            refused = terms.store.extend_lease(*args)
        if refused is not None:
            self._lose("another execution took the key over")
            return
        self._sent_ms, self._sent_mono, self.expires_at_ms = now_ms, sent_mono, until

    def _lose(self, reason: str) -> None:
        if self.lost is None and not self._stopped:
            self.lost = reason
            observe.emit(observe.LEASE_LOST, self._terms.operation, self.record_id)
            logger.warning("lease lost: %s (%s); its next step, write or completion raises", self.record_id, reason)


def _ttl(now_ms: int, ttl_s: int, lease_end_ms: int) -> int:
    """The record's TTL (epoch s) for a lease confirmed at ``now_ms``: ``ttl_s`` on, and never before the lease ends."""
    ttl = now_ms // 1000 + ttl_s
    lease_end_s = -(-lease_end_ms // 1000)
    return ttl if ttl >= lease_end_s else lease_end_s
