"""The store contract: the few conditional operations the state machine needs, answered with values.

Every write is conditioned on the record's state or on the caller's owner token (the fencing token). A refused
write returns the record as it stood (`Refused`), so the engine decides what a conflict means; stores hold no
policy. Stores raise `StoreUnavailableError` when they cannot answer at all.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidWriteError
from ..record import Payload, Record

if TYPE_CHECKING:
    from ..encryption import KmsEncryption
    from ..offload import S3Offload
    from ..payloads import Payloads
    from ..writes import Write


class ClaimRequest:
    """What a claim (or a take-over) writes: the fields of a fresh IN_PROGRESS record.

    This and the two answers below are plain slotted classes: a dataclass or a named tuple is built by generated
    code when the module loads (a tenth to half a millisecond each), and every cold start pays it.
    """

    __slots__ = ("record_id", "owner", "key", "scope", "fingerprint", "now_ms", "lease_expires_at", "expires_at")  # noqa: RUF023

    def __init__(
        self,
        record_id: str,
        owner: str,
        key: str,
        scope: str | None,
        fingerprint: str | None,
        now_ms: int,
        lease_expires_at: int,
        expires_at: int,
    ) -> None:
        self.record_id = record_id
        self.owner = owner
        self.key = key
        self.scope = scope
        self.fingerprint = fingerprint
        self.now_ms = now_ms
        self.lease_expires_at = lease_expires_at
        self.expires_at = expires_at

    @property
    def now_s(self) -> int:
        return self.now_ms // 1000

    def __repr__(self) -> str:
        return f"ClaimRequest({', '.join(f'{name}={getattr(self, name)!r}' for name in self.__slots__)})"


class Refused:
    """A conditional write was refused; ``current`` is the record that refused it (None when absent)."""

    __slots__ = ("current",)

    def __init__(self, current: Record | None) -> None:
        self.current = current

    def __repr__(self) -> str:
        return f"Refused({self.current!r})"


class WritesRefused:
    """A commit was refused because conditions of the function's own writes failed, not the record's.

    ``failed`` holds the indexes of those writes.
    """

    __slots__ = ("failed",)

    def __init__(self, failed: tuple[int, ...]) -> None:
        self.failed = failed

    def __repr__(self) -> str:
        return f"WritesRefused({self.failed!r})"


class Store(abc.ABC):
    """Where idempotency records live. `DynamoDBStore` in production, `MemoryStore` for tests and local runs."""

    payloads: Payloads | None = None
    """The store's offload and encryption of payloads (`with_payloads`); None: payloads are stored as given."""

    def with_payloads(self, offload: S3Offload | None, encryption: KmsEncryption | None) -> None:
        """Offload big payloads to S3 and/or encrypt every payload (the engine applies them, DESIGN.md)."""
        if offload is None and encryption is None:
            return
        from ..payloads import Payloads

        self.payloads = Payloads(offload, encryption)

    @abc.abstractmethod
    def claim(self, request: ClaimRequest) -> Refused | None:
        """Create the record IN_PROGRESS if it is absent or expired; else refuse with the record found."""

    @abc.abstractmethod
    def take_over(self, request: ClaimRequest, previous: Record) -> Refused | Record:
        """Move an IN_PROGRESS record whose lease passed to a new owner, keeping its steps.

        Conditioned on ``previous.owner`` still holding it with its lease passed by the taker's clock
        (``request.now_ms``), so of two executions taking over only one wins, and a renewal that lands first wins
        over a take-over decided on the record as it stood before it.
        Returns the record as taken over: its steps are the ones saved up to that write.
        """

    @abc.abstractmethod
    def finish(self, record: Record) -> Refused | Record | None:
        """Write ``record``, COMPLETED or FAILED, in place of the stored one, if its owner still holds that one
        IN_PROGRESS (the fence). The finished record is whole: what it leaves out (the lease) is gone.

        None when it was written as given; the record as written when the store had to leave its result out (past
        the store's item limit); `Refused` with the record found when the fence refused it.
        """

    @abc.abstractmethod
    def release(self, record_id: str, owner: str, *, keep_steps: bool) -> Refused | None:
        """Give the key back after a failure: delete the record, or (with saved steps) end its lease."""

    @abc.abstractmethod
    def get(self, record_id: str) -> Record | None:
        """The record as stored (a strongly consistent read), expired or not."""

    @abc.abstractmethod
    def save_step(self, record_id: str, owner: str, name: str, result: Payload, *, first: bool) -> Refused | None:
        """Save a step's result in the record, if ``owner`` still holds it IN_PROGRESS.

        ``first``: the holder knows of no step saved in the record (a store may then write its steps whole).
        """

    @abc.abstractmethod
    def extend_lease(self, record_id: str, owner: str, lease_expires_at: int, expires_at: int) -> Refused | None:
        """Move the lease (and the TTL, so it outlives the lease) on, if ``owner`` still holds it IN_PROGRESS."""

    @abc.abstractmethod
    def insert_finished(
        self, record: Record, writes: Sequence[Write], replacing: Record | None = None
    ) -> Refused | WritesRefused | None:
        """Optimistic mode: write a finished record together with ``writes``, if no record is there.

        A record that expired before ``record.completed_at`` (the writer's now) counts as absent. ``replacing``: an
        IN_PROGRESS record whose lease has ended (a claim-mode execution of the same operation that crashed), to be
        replaced if it is still there as it was read: same owner, IN_PROGRESS, its lease ended.
        """

    def record_key(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        """The table and low-level key of a record, or None when this store cannot commit DynamoDB writes."""
        return None

    def commit(self, record: Record, writes: Sequence[Write]) -> Refused | WritesRefused | Record | None:
        """Write the finished ``record`` (as `finish`) and apply ``writes`` in one transaction: all or nothing.

        None when it was written as given; the record as written when its result was left out (past the store's
        item limit); `Refused` or `WritesRefused` when the record's fence or a write's own condition refused it.

        Only stores with a `record_key` get writes; the others keep this refusal.
        """
        raise InvalidWriteError(f"{type(self).__name__} cannot commit DynamoDB writes")
