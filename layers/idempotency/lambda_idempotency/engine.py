"""The state machine of one idempotent call: claim, run, complete or release (DESIGN.md, "The state machine").

`Guard` knows no AWS and no decorator: the decorators call `begin`, run the function, then `finish` or `abort`;
the store answers with values and the rules for what a refused write means all live here: the claim and its
take-over, the completion and the fenced commit. What is not the state machine lives beside it, each part built once
with the guard: how an outcome becomes a stored payload and back (`outcomes.Outcomes`), the steps and writes of a
running execution (`effects.Effects`, its `Host`), and the lease (`lease.Lease`).

Two modes: "claim" (the default) claims the key before the function runs; "optimistic" claims and reads nothing,
so every call the local cache does not answer runs the function, and inserts the finished record together with the
function's writes: of all those executions exactly one commits and the others replay its result (DESIGN.md,
"Exactly-once effects").
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from . import observability as observe
from .cache import LocalCache
from .codec import Serializer
from .effects import Effects
from .errors import (
    InProgressError,
    InvalidWriteError,
    KeyReuseError,
    LeaseLostError,
    MissingKeyError,
    MissingScopeError,
    StoreConfigurationError,
    StoreUnavailableError,
    WriteConditionError,
)
from .execution import Execution, Mode
from .keys import fingerprint_of, normalise_key, normalise_scope, record_id
from .lease import Lease
from .outcomes import Outcomes
from .record import Payload, Record, Status
from .selectors import Arguments
from .stores.base import ClaimRequest, Refused, Store, WritesRefused

if TYPE_CHECKING:
    from .key_hashing import KeyHasher
    from .writes import Write

logger = logging.getLogger("lambda_idempotency")

FINISH_ATTEMPTS = 3
MAX_CLAIM_ROUNDS = 4
MODES: tuple[Mode, ...] = ("claim", "optimistic")
RECORD_OVERHEAD_BYTES = 1024
"""What a record's completion adds to a transaction besides its result (attribute names, ids, expressions)."""
T = TypeVar("T")
P = ParamSpec("P")

Clock = Callable[[], float]
"""Epoch seconds; injectable so tests move time instead of sleeping."""

_owners = random.Random()
"""Owner tokens' own generator, seeded from ``os.urandom``: a ``random.seed()`` in user code cannot make two
containers repeat each other's tokens. Re-seeded in a forked child, which would otherwise repeat its parent's."""
os.register_at_fork(after_in_child=_owners.seed)


def new_owner() -> str:
    """A fresh owner token (the fencing token of one execution): 128 random bits as 32 hex digits.

    It must be unique, not secret (it is stored in the record, readable by whoever reads the table), so a seeded
    generator serves: drawing it costs a sixth of ``os.urandom(16)``'s system call, which every call paid.
    """
    return _owners.getrandbits(128).to_bytes(16).hex()


class Guard:
    """Everything one decorated function needs to run a call idempotently."""

    def __init__(
        self,
        *,
        store: Store,
        operation: str,
        key: Callable[[Arguments], Any],
        fingerprint: Callable[[Arguments], Any] | None,
        scope: Callable[[Arguments], Any] | None,
        ttl_s: int,
        lease_ms: int | None,
        cache_errors: tuple[type[BaseException], ...],
        cache: LocalCache | None,
        required: bool,
        fail_open: bool,
        serializer: Serializer,
        clock: Clock,
        mode: Mode = "claim",
        renew: bool = True,
        hash_keys: bool | bytes = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.store = store
        self.operation = operation
        self._key = key
        self._fingerprint = fingerprint
        self._scope = scope
        self.ttl_s = ttl_s
        self.lease_ms = lease_ms
        self.renew = renew
        self.cache_errors = cache_errors
        self.cache = cache
        self.required = required
        self.fail_open = fail_open
        self.outcomes = Outcomes(
            operation=operation, serializer=serializer, payloads=store.payloads, cache_errors=cache_errors
        )
        self.effects = Effects(store, self.outcomes, self._retrying)
        self.replay: Callable[[Record], Any] = self.outcomes.replay
        """The stored outcome of a finished record: its result, or its failure raised again (`Outcomes.replay`,
        bound once here so a duplicate call pays no extra call for it)."""
        self.clock = clock
        self.hasher: KeyHasher | None = None
        if hash_keys is not False:
            from .key_hashing import KeyHasher

            self.hasher = KeyHasher(operation, None if hash_keys is True else hash_keys)

    def begin(self, call: Arguments, lambda_context: Any) -> Execution | Record | None:
        """Claim the call's key: an `Execution` to run, a `Record` to replay, or None to run unguarded."""
        try:
            raw_key = self._key(call)
        except MissingKeyError:
            if self.required:
                raise
            raw_key = None
        if raw_key is None:
            if self.required:
                raise MissingKeyError(f"no idempotency key in the input of {self.operation}")
            logger.debug("no idempotency key for %s; running without idempotency", self.operation)
            return None
        key = normalise_key(raw_key)
        scope = None
        if self._scope is not None:
            scope = normalise_scope(self._scope(call))
            if scope is None:  # never the unscoped record: every caller shares it
                raise MissingScopeError(f"scope= of {self.operation} returned None for this call")
        fingerprint = fingerprint_of(self._fingerprint(call)) if self._fingerprint else None
        if fingerprint is not None and self.hasher is not None and self.hasher.secret is not None:
            fingerprint = self.hasher.hide("fingerprint", fingerprint)  # a payload hash is guessable too
        rid = record_id(self.operation, scope, key) if self.hasher is None else self.hasher.record_id(scope, key)
        now_ms = int(self.clock() * 1000)

        if self.cache is not None:
            cached = self.cache.get(rid, now_ms // 1000)
            if cached is not None:
                _check_fingerprint(cached, fingerprint, key, self.operation)
                observe.emit(observe.REPLAYS, self.operation, rid)
                return cached

        lease = Lease(self, rid, new_owner(), lambda_context, now_ms)
        stored_key, stored_scope = (key, scope) if self.hasher is None else self._hidden(key, scope)
        request = ClaimRequest(  # positional, in ClaimRequest's field order (the hot path)
            rid, lease.owner, stored_key, stored_scope, fingerprint, now_ms, lease.expires_at_ms, lease.ttl_expires_at
        )
        try:
            started = (
                self._execution(request, 1, None, None) if self.mode == "optimistic" else self._claim(request, lease)
            )
            if self.hasher is not None and isinstance(started, Execution):  # the caller's key, not the stored hash
                started.key, started.scope = key, scope
            return started
        except StoreConfigurationError as exc:  # a retry cannot help, and fail_open must not hide it
            observe.emit(observe.STORE_ERRORS, self.operation, request.record_id)
            logger.error("idempotency store misconfigured for %s: %s", self.operation, exc)
            raise
        except StoreUnavailableError:
            observe.emit(observe.STORE_ERRORS, self.operation, request.record_id)
            if not self.fail_open:
                raise
            logger.warning("store unavailable; running %s without idempotency (fail_open)", self.operation)
            return None

    def _hidden(self, key: str, scope: str | None) -> tuple[str, str | None]:
        """What the record stores of a key and scope: their keyed hashes when ``hash_keys`` is on."""
        if self.hasher is None:
            return key, scope
        return self.hasher.hide("key", key), None if scope is None else self.hasher.hide("scope", scope)

    def record_id_of(self, scope: str | None, key: str) -> str:
        """The record id of a normalised scope and key, as `begin` computes it."""
        return record_id(self.operation, scope, key) if self.hasher is None else self.hasher.record_id(scope, key)

    def _claim(self, request: ClaimRequest, lease: Lease) -> Execution | Record:
        previous: Record | None = None
        for _ in range(MAX_CLAIM_ROUNDS):
            if previous is None:
                refused = self.store.claim(request)
                if refused is None:
                    return self._execution(request, 1, None, lease)
            else:
                answer = self.store.take_over(request, previous)
                if isinstance(answer, Record):
                    return self._execution(request, answer.attempts, answer, lease)
                refused = answer
            found = refused.current
            if found is None or found.is_expired(request.now_s):
                previous = None
                continue
            if found.owner == request.owner:
                logger.debug("a resent claim of %s had landed: it is ours", request.record_id)
                return self._execution(request, found.attempts, found, lease)
            _check_fingerprint(found, request.fingerprint, request.key, self.operation)
            if found.status is Status.COMPLETED:
                if self.cache is not None:
                    self.cache.put(found)
                observe.emit(observe.REPLAYS, self.operation, request.record_id)
                return found
            if found.status is Status.FAILED:
                observe.emit(observe.REPLAYS, self.operation, request.record_id)
                return found
            if found.lease_is_live(request.now_ms):
                observe.emit(observe.IN_FLIGHT_CONFLICTS, self.operation, request.record_id)
                raise _in_progress(request.key, request.now_ms, found)
            logger.info("lease of %s passed; taking it over (attempt %d)", request.record_id, found.attempts + 1)
            previous = found
        raise InProgressError(f"key {request.key!r} of {self.operation} is contended", retry_after=1)

    def _execution(self, request: ClaimRequest, attempt: int, holder: Record | None, lease: Lease | None) -> Execution:
        """The execution that now holds the claim (and ``lease``, renewed from now on); ``holder`` is the record whose
        steps it inherits."""
        observe.emit(observe.EXECUTIONS, self.operation, request.record_id)
        if lease is not None:
            lease.hold()
        return Execution(  # positional, in Execution's field order: the hot path's busiest constructor
            request.key,
            request.scope,
            self.operation,
            request.record_id,
            attempt,
            request.owner,
            request.fingerprint,
            request.lease_expires_at,
            dict(holder.steps) if holder else {},
            self.mode,
            None,
            self.effects,
            None,
            lease,
        )

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
        now_ms = int(self.clock() * 1000)
        expires_at = now_ms // 1000 + self.ttl_s
        if execution.mode == "optimistic":
            return self._insert_finished(execution, Status.COMPLETED, payload, now_ms, expires_at, result)
        if execution.writes:
            self._commit(execution, payload, now_ms, expires_at)
        else:
            try:
                refused = self._finish(execution, Status.COMPLETED, payload, now_ms, expires_at)
            except StoreUnavailableError as exc:
                _log_unwritten(execution, exc)
                return result  # not cached: the table does not hold this completion, and a retry may run again
            if refused is not None:
                if not _is_mine(refused, execution):
                    observe.emit(observe.LEASE_LOST, self.operation, execution.record_id)
                    logger.warning(
                        "lease lost: %s was taken over before it completed; its record stays the new owner's",
                        execution.record_id,
                    )
                return result
        if self.cache is not None:
            self.cache.put(self._finished(execution, Status.COMPLETED, payload, now_ms, expires_at))
        return result

    def abort(self, execution: Execution, error: BaseException) -> None:
        """After an exception: store a declared failure, release the key, or (BaseException) leave the lease."""
        if _stopped_lost(execution):
            return
        if self.cache_errors and isinstance(error, self.cache_errors):
            now_ms = int(self.clock() * 1000)
            try:
                payload = self.outcomes.failure(execution, error)
            except StoreUnavailableError as exc:
                logger.error("could not store the failure of %s (%s); its lease will expire", execution.record_id, exc)
                return
            if execution.mode == "optimistic":
                try:
                    self._insert_finished(execution, Status.FAILED, payload, now_ms, now_ms // 1000 + self.ttl_s, None)
                except StoreUnavailableError as exc:
                    logger.error("could not store the failure of %s (%s)", execution.record_id, exc)
            else:
                try:
                    self._finish(execution, Status.FAILED, payload, now_ms, now_ms // 1000 + self.ttl_s)
                except StoreUnavailableError as exc:
                    _log_unwritten(execution, exc)
            return
        if not isinstance(error, Exception):
            logger.warning("%s interrupted by %s; its lease will expire", execution.record_id, type(error).__name__)
            return
        self.release(execution)

    def _commit(self, execution: Execution, payload: Payload | None, now_ms: int, expires_at: int) -> None:
        """The fenced commit: the writes and the completion in one transaction, conditioned on our owner token."""
        from . import writes as transaction

        try:
            transaction.check_total(execution.writes, _completion_size(payload))
            outcome = self._retrying(
                execution.record_id,
                self.store.commit,
                execution.record_id,
                execution.owner,
                payload,
                now_ms,
                expires_at,
                execution.writes,
            )
        except InvalidWriteError:
            self.release(execution)
            raise
        if outcome is None:
            return
        if isinstance(outcome, WritesRefused):
            self.release(execution)
            raise _write_condition_error(execution.writes, outcome.failed, "the key was released")
        if not _is_mine(outcome, execution):
            observe.emit(observe.LEASE_LOST, self.operation, execution.record_id)
            raise LeaseLostError(
                f"{execution.record_id} was taken over before it committed; none of its writes was applied"
            )

    def _insert_finished(
        self,
        execution: Execution,
        status: Status,
        payload: Payload | None,
        now_ms: int,
        expires_at: int,
        result: Any,
    ) -> Any:
        """The optimistic commit: our finished record and writes, or (when another won) the winner's outcome."""
        record = self._finished(execution, status, payload, now_ms, expires_at)
        writes: Sequence[Write] = execution.writes if status is Status.COMPLETED else ()
        if writes:
            from . import writes as transaction

            transaction.check_total(writes, _completion_size(payload))
        outcome = self._retrying(execution.record_id, self.store.insert_finished, record, writes)
        if outcome is None:
            if self.cache is not None:
                self.cache.put(record)
            return result
        if isinstance(outcome, WritesRefused):
            raise _write_condition_error(execution.writes, outcome.failed, "a retry runs the function again")
        found = outcome.current
        if found is None:  # refused, then gone before it could be read: nothing of ours was written
            raise InProgressError(f"key {execution.key!r} of {self.operation} is contended", retry_after=1)
        _check_fingerprint(found, execution.fingerprint, execution.key, self.operation)
        if found.status is Status.IN_PROGRESS:
            raise _in_progress(execution.key, now_ms, found)
        logger.info("%s was committed already (by a racer, or our own resent request); replaying", execution.record_id)
        if self.cache is not None:
            self.cache.put(found)
        return self.replay(found)

    def _finished(
        self, execution: Execution, status: Status, payload: Payload | None, now_ms: int, expires_at: int
    ) -> Record:
        """The record a finished execution leaves (the key and scope as stored: hashed with ``hash_keys``)."""
        key, scope = self._hidden(execution.key, execution.scope)
        return Record(
            record_id=execution.record_id,
            status=status,
            owner=execution.owner,
            expires_at=expires_at,
            key=key,
            scope=scope,
            fingerprint=execution.fingerprint,
            result=payload,
            attempts=execution.attempt,
            created_at=now_ms // 1000,
            completed_at=now_ms // 1000,
        )

    def release(self, execution: Execution) -> None:
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

    def _finish(
        self, execution: Execution, status: Status, payload: Payload | None, now_ms: int, expires_at: int
    ) -> Refused | None:
        """Write the outcome (tried `FINISH_ATTEMPTS` times); raises `StoreUnavailableError` if it never lands."""
        return self._retrying(
            execution.record_id,
            self.store.finish,
            execution.record_id,
            execution.owner,
            status,
            payload,
            now_ms,
            expires_at,
        )

    def _retrying(self, record_id: str, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
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


def _log_unwritten(execution: Execution, exc: Exception) -> None:
    logger.error(
        "could not store the outcome of %s (%s); the key stays in flight until its lease ends, then a retry runs "
        "the function again (at least once)",
        execution.record_id,
        exc,
    )


def _check_fingerprint(found: Record, fingerprint: str | None, key: str, operation: str) -> None:
    if fingerprint is not None and found.fingerprint is not None and found.fingerprint != fingerprint:
        observe.emit(observe.KEY_REUSE, operation, found.record_id)
        raise KeyReuseError(f"idempotency key {key!r} was already used with a different payload")


def _in_progress(key: str, now_ms: int, found: Record) -> InProgressError:
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


def _completion_size(payload: Payload | None) -> int:
    size = len(payload.encode()) if isinstance(payload, str) else len(payload or b"")
    return size + RECORD_OVERHEAD_BYTES


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
