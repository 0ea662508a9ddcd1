"""How an execution ends: its outcome written, a declared failure stored, or its key given back (DESIGN.md, "The state
machine").

The other half of the engine's state machine: `engine.Guard` claims a key and starts an execution, and the
`Completion` built with it ends that execution. Every write here is conditioned on the execution's owner token (the
fence), and a refusal is read for what it means: our own resent write that had landed, or a lease another execution
took over. Three ways to finish: the completion (one conditional put of the finished record, whole), the fenced
commit (the function's writes and the completion in one transaction) and, in optimistic mode, the insert of the
finished record.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from . import observability as observe
from .errors import (
    InProgressError,
    InvalidWriteError,
    KeyReuseError,
    LeaseLostError,
    StoreConfigurationError,
    StoreUnavailableError,
    WriteConditionError,
)
from .record import Payload, Record, Status
from .stores.base import Refused, Store, WritesRefused

if TYPE_CHECKING:
    from .cache import LocalCache
    from .execution import Execution
    from .outcomes import Outcomes
    from .writes import Write

logger = logging.getLogger("lambda_idempotency")

FINISH_ATTEMPTS = 3
INSERT_ROUNDS = 3
"""Optimistic inserts refused by a crashed claim's record, replaced, and refused again by a racer's, at most."""
RECORD_OVERHEAD_BYTES = 1024
"""What a finished record adds to a transaction besides its texts, result and steps (attribute names, numbers, the
condition)."""
T = TypeVar("T")
P = ParamSpec("P")


class Completion:
    """How one guarded function's executions end (see the module docstring)."""

    def __init__(
        self,
        *,
        store: Store,
        operation: str,
        outcomes: Outcomes,
        cache: LocalCache | None,
        cache_errors: tuple[type[BaseException], ...],
        ttl_s: int,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.operation = operation
        self.outcomes = outcomes
        self.replay = outcomes.replay
        self.cache = cache
        self.cache_errors = cache_errors
        self.ttl_s = ttl_s
        self.clock = clock

    def finish(self, execution: Execution, result: Any) -> Any:
        """Store the outcome and return what the caller gets: ``result``, or an optimistic race winner's.

        With collected writes the completion and the writes commit together or not at all: a lease lost to
        another execution raises `LeaseLostError`, a failed condition of a write `WriteConditionError`; so does
        an execution whose lease was lost while it ran, before anything is sent.
        """
        lease = execution.lease
        if lease is not None:  # renewals end before the outcome is written (and before the handler returns)
            lease.stop()
            lease.check("the completion")
        try:
            payload = self.outcomes.result(execution, result)
        except StoreUnavailableError as exc:  # S3 or KMS: nothing was written to the record
            observe.emit(observe.STORE_ERRORS, self.operation, execution.record_id)
            if execution.writes or execution.mode == "optimistic":
                raise  # the writes were not applied: the caller must not see a success
            logger.error("could not store the result of %s (%s); the key stays in flight", execution.record_id, exc)
            return result
        except StoreConfigurationError as exc:  # their bucket or key is missing or denied: loud, whatever fail_open
            observe.emit(observe.STORE_ERRORS, self.operation, execution.record_id)
            logger.error("could not store the result of %s: %s; the key stays in flight", execution.record_id, exc)
            raise
        record = self._finished(execution, Status.COMPLETED, payload)
        try:
            return self._complete(execution, record, result)
        except StoreConfigurationError as exc:  # the table went missing or was denied while the function ran
            _log_misconfigured(self.operation, execution, exc)
            raise

    def _complete(self, execution: Execution, record: Record, result: Any) -> Any:
        """`finish`'s write of the finished ``record``: what the caller gets."""
        if execution.mode == "optimistic":
            return self._insert_finished(execution, record, result)
        if execution.writes:
            if not self._commit(execution, record):
                return result  # committed without its result (past the item limit): not what the cache would hold
        else:
            try:
                answer = self._finish(execution, record)
            except StoreUnavailableError as exc:
                _log_unwritten(execution, exc)
                return result  # not cached: the table does not hold this completion, and a retry may run again
            if answer is not None:  # refused, or stored without its result: not what the cache would hold
                if isinstance(answer, Refused) and not _is_mine(answer, execution):
                    observe.emit(observe.LEASE_LOST, self.operation, execution.record_id)
                    logger.warning(
                        "lease lost: %s was taken over before it completed; its record stays the new owner's",
                        execution.record_id,
                    )
                return result
        if self.cache is not None:
            self.cache.put(record)
        return result

    def abort(self, execution: Execution, error: BaseException) -> Replayed | None:
        """After an exception: store a declared failure, release the key, or (BaseException) leave the lease.

        In optimistic mode a declared failure that lost the insert to another call's finished record answers with
        that record's outcome, as a loser whose function returned does: its result (`Replayed`), or its failure
        raised. None: the caller raises ``error``.
        """
        if _stopped_lost(execution):
            return None
        try:
            return self._end_after(execution, error)
        except StoreConfigurationError as exc:  # the table went missing or was denied while the function ran
            _log_misconfigured(self.operation, execution, exc)
            raise

    def _end_after(self, execution: Execution, error: BaseException) -> Replayed | None:
        """`abort`'s writes: the declared failure stored, or the key released."""
        if self.cache_errors and isinstance(error, self.cache_errors):
            try:
                payload = self.outcomes.failure(execution, error)
            except StoreUnavailableError as exc:
                logger.error("could not store the failure of %s (%s); its lease will expire", execution.record_id, exc)
                return None
            record = self._finished(execution, Status.FAILED, payload)
            if execution.mode == "optimistic":
                try:
                    answer = self._insert_finished(execution, record, _INSERTED)
                except StoreUnavailableError as exc:
                    logger.error("could not store the failure of %s (%s)", execution.record_id, exc)
                    return None
                return None if answer is _INSERTED else Replayed(answer)  # another call's result came first
            else:
                try:
                    self._finish(execution, record)
                except StoreUnavailableError as exc:
                    _log_unwritten(execution, exc)
            return None
        if not isinstance(error, Exception):
            logger.warning("%s interrupted by %s; its lease will expire", execution.record_id, type(error).__name__)
            return None
        self._release(execution)
        return None

    def _commit(self, execution: Execution, record: Record) -> bool:
        """The fenced commit: the writes and the completion in one transaction, conditioned on our owner token.
        Whether ``record`` was stored as given (False: without its result, past the store's item limit)."""
        from . import writes as transaction

        try:
            transaction.check_total(execution.writes, _completion_size(record))
            outcome = self.retrying(execution.record_id, self.store.commit, record, execution.writes)
        except InvalidWriteError:
            self._release(execution)
            raise
        if outcome is None or isinstance(outcome, Record):
            return outcome is None
        if isinstance(outcome, WritesRefused):
            self._release(execution)
            raise _write_condition_error(execution.writes, outcome.failed, "the key was released")
        if not _is_mine(outcome, execution):
            observe.emit(observe.LEASE_LOST, self.operation, execution.record_id)
            raise LeaseLostError(
                f"{execution.record_id} was taken over before it committed; none of its writes was applied"
            )
        return outcome.current is not None and outcome.current.result == record.result  # my resent commit landed

    def _insert_finished(self, execution: Execution, record: Record, result: Any) -> Any:
        """The optimistic commit: our finished ``record`` and writes, or (when another won) the winner's outcome."""
        writes: Sequence[Write] = execution.writes if record.status is Status.COMPLETED else ()
        if writes:
            from . import writes as transaction

            transaction.check_total(writes, _completion_size(record))
        replacing: Record | None = None
        for _ in range(INSERT_ROUNDS):
            outcome = self.retrying(execution.record_id, self.store.insert_finished, record, writes, replacing)
            if outcome is None:
                if self.cache is not None:
                    self.cache.put(record)
                return result
            if isinstance(outcome, WritesRefused):
                raise _write_condition_error(execution.writes, outcome.failed, "a retry runs the function again")
            found = outcome.current
            if found is None:  # refused, then gone before it could be read: nothing of ours was written
                raise InProgressError(f"key {execution.key!r} of {self.operation} is contended", retry_after=1)
            check_fingerprint(found, execution.fingerprint, execution.key, self.operation)
            if found.status is not Status.IN_PROGRESS:
                break
            if found.lease_is_live((record.completed_at or 0) * 1000):
                raise in_progress_error(execution.key, int(self.clock() * 1000), found)
            logger.info("lease of %s passed (a claim that crashed); committing in its place", execution.record_id)
            replacing = found
        else:
            raise InProgressError(f"key {execution.key!r} of {self.operation} is contended", retry_after=1)
        logger.info("%s was committed already (by a racer, or our own resent request); replaying", execution.record_id)
        if self.cache is not None:
            self.cache.put(found)
        return self.replay(found)

    def _finished(self, execution: Execution, status: Status, payload: Payload | None) -> Record:
        """The record a finished execution leaves, whole: the store writes it in place of the claimed one (the key
        and scope as stored, hashed with ``hash_keys``; the steps it saved kept, to show what happened)."""
        now_s = int(self.clock())
        key, scope = execution.stored_as or (execution.key, execution.scope)
        return Record(  # positional, in Record's field order (the hot path)
            execution.record_id,
            status,
            execution.owner,
            now_s + self.ttl_s,
            None,
            key,
            scope,
            execution.fingerprint,
            payload,
            dict(execution.steps) if execution.steps else None,  # a copy: records are shared
            execution.attempt,
            execution.created_at or now_s,
            now_s,
        )

    def release(self, execution: Execution) -> None:
        """Give the key back so a retry runs again (an HTTP 5xx, a cancelled claim); a misconfiguration it finds is
        logged at ERROR and raised. `abort` and `finish` release through `_release`, and log it themselves."""
        try:
            self._release(execution)
        except StoreConfigurationError as exc:
            _log_misconfigured(self.operation, execution, exc)
            raise

    def _release(self, execution: Execution) -> None:
        """Give the key back so a retry runs again (a failure, an HTTP 5xx); saved steps stay, so a retry resumes them.

        An optimistic execution holds no claim, so there is nothing to give back.
        """
        if execution.lease is None or _stopped_lost(execution):
            return
        try:
            refused = self.store.release(execution.record_id, execution.owner, keep_steps=bool(execution.steps))
        except StoreUnavailableError as exc:
            observe.emit(observe.STORE_ERRORS, self.operation, execution.record_id)
            logger.error("could not release %s (%s); it is blocked until its lease ends", execution.record_id, exc)
            return
        # Refused with no record left is our own resent delete that had landed, not a lost lease.
        if refused is not None and refused.current is not None:
            observe.emit(observe.LEASE_LOST, self.operation, execution.record_id)
            logger.warning("lease lost: %s was taken over before it was released", execution.record_id)

    def _finish(self, execution: Execution, record: Record) -> Refused | Record | None:
        """Write the finished record (tried `FINISH_ATTEMPTS` times); raises `StoreUnavailableError` if it never
        lands."""
        return self.retrying(execution.record_id, self.store.finish, record)

    def retrying(self, record_id: str, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call(*args)``, a store call that must land, tried again after `StoreUnavailableError` (each is safe to
        resend)."""
        attempt = 0
        while True:
            try:
                return call(*args, **kwargs)
            except StoreUnavailableError:
                observe.emit(observe.STORE_ERRORS, self.operation, record_id)
                attempt += 1
                if attempt == FINISH_ATTEMPTS:
                    raise
                time.sleep(0.05 * 2 ** (attempt - 1))


class Replayed:
    """What `Completion.abort` answers when another call's finished record, not the failure, is the key's outcome."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_INSERTED = object()
"""What `_insert_finished` answers for a failure whose own record was inserted (a result could be anything)."""


def _log_unwritten(execution: Execution, exc: Exception) -> None:
    logger.error(
        "could not store the outcome of %s (%s); the key stays in flight until its lease ends, then a retry runs "
        "the function again (at least once)",
        execution.record_id,
        exc,
    )


def _log_misconfigured(operation: str, execution: Execution, exc: StoreConfigurationError) -> None:
    """A misconfiguration found after the function ran (its table deleted, its access revoked): raised to the caller
    whatever ``fail_open`` says, and logged at ERROR as one found by the claim is."""
    observe.emit(observe.STORE_ERRORS, operation, execution.record_id)
    logger.error(
        "idempotency store misconfigured for %s after its function ran: %s; its outcome was not stored",
        operation,
        exc,
    )


def check_fingerprint(found: Record, fingerprint: str | None, key: str, operation: str) -> None:
    """`KeyReuseError` when ``found`` was stored for another payload under the same key."""
    if fingerprint is not None and found.fingerprint is not None and found.fingerprint != fingerprint:
        observe.emit(observe.KEY_REUSE, operation, found.record_id)
        raise KeyReuseError(f"idempotency key {key!r} was already used with a different payload")


def in_progress_error(key: str, now_ms: int, found: Record) -> InProgressError:
    """The error for a key still in flight, with ``Retry-After`` when its lease ends."""
    lease_end = found.lease_expires_at or now_ms
    retry_after = max(1, math.ceil((lease_end - now_ms) / 1000))
    return InProgressError(f"key {key!r} is in progress", retry_after=retry_after)


def _stopped_lost(execution: Execution) -> bool:
    """Stop renewing; whether the lease was lost (then nothing more is sent: the record is another's)."""
    if execution.lease is None:
        return False
    execution.lease.stop()
    if execution.lease.lost is not None:
        logger.warning("%s lost its lease; nothing more is sent for it", execution.record_id)
    return execution.lease.lost is not None


def _completion_size(record: Record) -> int:
    """About what the finished record takes in a transaction: its texts, result and steps, plus
    `RECORD_OVERHEAD_BYTES`."""
    texts = (record.record_id, record.key, record.scope, record.fingerprint, record.result, *record.steps)
    return sum(_size(t) for t in (*texts, *record.steps.values())) + RECORD_OVERHEAD_BYTES


def _size(value: Payload | None) -> int:
    return len(value.encode()) if isinstance(value, str) else len(value or b"")


def _write_condition_error(writes: Sequence[Write], failed: tuple[int, ...], then: str) -> WriteConditionError:
    from . import writes as transaction

    described = ", ".join(transaction.describe(i, writes[i]) for i in failed)
    return WriteConditionError(
        f"the condition of {described} failed; none of the writes was applied; {then}",
        failed=tuple((i, writes[i].kind, writes[i].table) for i in failed),
    )


def _is_mine(refused: Refused, execution: Execution) -> bool:
    """A refused finish whose record shows my owner, finished, was my own resent write."""
    found = refused.current
    return found is not None and found.owner == execution.owner and found.status is not Status.IN_PROGRESS
