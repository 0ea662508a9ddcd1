"""The state machine of one idempotent call: claim, run, complete or release (DESIGN.md, "The state machine").

`Guard` knows no AWS and no decorator: the decorators call `begin`, run the function, then `finish` or `abort`;
the store answers with values and the rules for what a refused write means all live here. The guard is also the
`Host` of its executions: it collects their writes for the commit, saves their steps and extends their leases.

Two modes: "claim" (the default) claims the key before the function runs; "optimistic" claims nothing and
inserts the finished record together with the function's writes, so of racing executions exactly one commits
and the others replay its result (DESIGN.md, "Exactly-once effects").
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from . import depth
from . import observability as observe
from .cache import LocalCache
from .codec import Serializer, TaggedJsonSerializer, return_annotation
from .errors import (
    CachedFailureError,
    InProgressError,
    InputTooDeepError,
    InvalidWriteError,
    KeyReuseError,
    LeaseLostError,
    MissingKeyError,
    MissingScopeError,
    ModeError,
    ResultNotStoredError,
    ResultUnreadableError,
    StoreConfigurationError,
    StoreUnavailableError,
    WriteConditionError,
)
from .execution import Execution, Mode
from .keys import fingerprint_of, normalise_key, normalise_scope, record_id
from .lease import Lease
from .record import Payload, Record, Status, pack, unpack
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
        self.serializer = serializer
        self.custom_serializer = type(serializer) is not TaggedJsonSerializer
        """A serializer the user chose serializes steps and stored failures too (DESIGN.md, "One serializer")."""
        self.payloads = store.payloads
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
        request = ClaimRequest(
            record_id=rid,
            owner=lease.owner,
            key=stored_key,
            scope=stored_scope,
            fingerprint=fingerprint,
            now_ms=now_ms,
            lease_expires_at=lease.expires_at_ms,
            expires_at=lease.ttl_expires_at,
        )
        if self.mode == "optimistic":
            return self._given_keys(self._execution(request, 1, None, None), key, scope)
        try:
            return self._given_keys(self._claim(request, lease), key, scope)
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

    def _given_keys(self, started: Execution | Record, key: str, scope: str | None) -> Execution | Record:
        """`current().key` and ``.scope`` are what the caller gave, even where the record keeps their hashes."""
        if self.hasher is not None and isinstance(started, Execution):
            started.key, started.scope = key, scope
        return started

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
            self,
            None,
            lease,
        )

    def finish(self, execution: Execution, result: Any) -> Any:
        """Store the outcome and return what the caller gets: ``result``, or an optimistic race winner's.

        With collected writes the completion and the writes commit together or not at all: a lease lost to
        another execution raises `LeaseLostError`, a failed condition of a write `WriteConditionError`; so does
        an execution whose lease was lost while it ran, before anything is sent.
        """
        _end_renewals(execution, "the completion")
        try:
            payload = self._payload(execution, result)
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
            failure = _failure(error)
            try:
                payload = self._payload(execution, failure, self._plain_serializer())
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

    def add_write(self, execution: Execution, action: Mapping[str, Any], *, resource: bool) -> None:
        """`Host`: check a write against the transaction rules and keep it for the commit."""
        if execution.lease is not None:
            execution.lease.check("write()")
        if execution.running_step is not None:
            raise InvalidWriteError(
                f"write() inside step {execution.running_step!r}: an execution that resumes skips the step and "
                "would lose the write; call write() outside steps"
            )
        from . import writes as transaction  # loaded by the first write, not by every cold start

        write = transaction.normalise(action, resource=resource)
        transaction.check_can_add(execution.writes, write, self.store.record_key(execution.record_id))
        execution.writes.append(write)

    def run_step(
        self, execution: Execution, name: str, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        """`Host`: the saved result of step ``name``, or run ``fn`` and save its result before returning it."""
        lease = _need_claim(execution, "step()")
        lease.check(f"step {name!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"a step needs a non-empty name, got {name!r}")
        if not name.isascii():  # the name is a key of the record's ``steps`` map: DynamoDB needs valid UTF-8
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"a step name must be valid Unicode text, got {name!r}") from None
        serializer = self.serializer if self.custom_serializer else TaggedJsonSerializer(return_annotation(fn))
        saved = execution.steps.get(name)
        if saved is not None:
            logger.debug("step %r of %s was saved by an earlier attempt; not running it", name, execution.record_id)
            replayed: T = _load(serializer.loads, self._open(execution.record_id, saved))
            return replayed
        lease.fence(f"step {name!r}")
        outer, execution.running_step = execution.running_step, name
        try:
            result = fn(*args, **kwargs)
        finally:
            execution.running_step = outer
        if hasattr(result, "__await__"):
            getattr(result, "close", lambda: None)()  # never awaited: close it quietly
            raise ModeError(f"step {name!r} returned an awaitable: steps run plain (not async) functions")
        try:
            payload = self._seal(execution, f"step:{name}", serializer.dumps(result))
        except (TypeError, ValueError, InputTooDeepError) as exc:
            raise ResultNotStoredError(f"the result of step {name!r} cannot be saved: {exc}") from exc
        if payload is None:
            raise ResultNotStoredError(f"the result of step {name!r} is too big to save")
        if self._retrying(
            execution.record_id, self.store.save_step, execution.record_id, execution.owner, name, payload
        ):
            raise LeaseLostError(f"{execution.record_id} was taken over before step {name!r} was saved")
        execution.steps[name] = payload
        return result

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

    def replay(self, record: Record) -> Any:
        """The stored outcome of a finished record: its result, or its failure raised again."""
        if record.status is Status.FAILED:
            raise self._rebuild_error(record)
        if record.result is None:
            raise ResultNotStoredError(
                f"{self.operation} completed for key {record.key!r}, but its result was not stored"
            )
        return _load(self.serializer.loads, self._open(record.record_id, record.result))

    def _seal(self, execution: Execution, slot: str, text: str) -> Payload | None:
        """The stored form of serialized ``text`` (`record.pack`, or the store's offload and encryption)."""
        if self.payloads is None:
            return pack(text)
        return self.payloads.seal(
            text, operation=self.operation, record_id=execution.record_id, owner=execution.owner, slot=slot
        )

    def _open(self, record_id: str, payload: Payload) -> str:
        """The serialized text of a stored payload; `ResultUnreadableError` when it cannot be read back."""
        if self.payloads is not None:
            return self.payloads.open(payload, operation=self.operation, record_id=record_id)
        if type(payload) is str or payload[:1] == b"x":  # text, or zlib: the forms `pack` writes
            return unpack(payload)
        from .payloads import open_plain

        return open_plain(payload, record_id)

    def _plain_serializer(self) -> Serializer:
        """The serializer of stored failures: the user's, or the default without the function's return type."""
        return self.serializer if self.custom_serializer else TaggedJsonSerializer()

    def _payload(self, execution: Execution, result: Any, serializer: Serializer | None = None) -> Payload | None:
        try:
            text = (serializer or self.serializer).dumps(result)
            payload = self._seal(execution, "result", text)  # UnicodeEncodeError: text UTF-8 cannot carry
        except StoreUnavailableError:
            raise
        except Exception as exc:
            logger.error("result of %s cannot be stored (%s); replays will raise", execution.record_id, exc)
            return None
        if payload is None:
            logger.error("result of %s is too big to store (%d bytes)", execution.record_id, len(text))
        elif observe.watching():
            observe.emit(observe.RESULT_BYTES, self.operation, execution.record_id, observe.size_of(payload))
        return payload

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

    def _rebuild_error(self, record: Record) -> BaseException:
        stored = (
            _load(self._plain_serializer().loads, self._open(record.record_id, record.result))
            if record.result is not None
            else {}
        )
        if not isinstance(stored, dict):
            stored = {}
        name = str(stored.get("type", "Exception"))
        message = str(stored.get("message", ""))
        for declared in self.cache_errors:
            for cls in _with_subclasses(declared):
                if _type_name(cls) == name:
                    args = stored.get("args")
                    try:
                        rebuilt: BaseException = cls(*(args if args is not None else [message]))
                        return rebuilt
                    except Exception:
                        break
        return CachedFailureError(f"{name}: {message}", error_type=name)


def _load(loads: Callable[[str], Any], text: str) -> Any:
    """A stored payload's text as a value. This library never stores one nested deeper than `depth.MAX_JSON_DEPTH`;
    one that is too deep to read (written by something else) is unreadable, not a `RecursionError`. So is one the
    serializer cannot read back (not its format, an unknown tag, a return type that changed since it was stored):
    `ResultUnreadableError` (HTTP 500 ``idempotency-result-unavailable``), never the serializer's own exception."""
    try:
        return loads(text)
    except RecursionError:
        raise ResultUnreadableError("the stored result nests too deeply to be read") from None
    except Exception as exc:
        raise ResultUnreadableError(f"the stored result cannot be read back ({type(exc).__name__})") from exc


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


def _need_claim(execution: Execution, what: str) -> Lease:
    if execution.lease is None:
        raise ModeError(f"{what} needs mode='claim': an optimistic execution holds no record until it commits")
    return execution.lease


def _stopped_lost(execution: Execution) -> bool:
    """Stop renewing; whether the lease was lost (then nothing more is sent: the record is another's)."""
    if execution.lease is None:
        return False
    execution.lease.stop()
    if execution.lease.lost is not None:
        logger.warning("%s lost its lease; nothing more is sent for it", execution.record_id)
    return execution.lease.lost is not None


def _end_renewals(execution: Execution, what: str) -> None:
    """Stop renewing before the outcome is written (and before the handler returns); lost: `LeaseLostError`."""
    if execution.lease is not None:
        execution.lease.stop()
        execution.lease.check(what)


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


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _with_subclasses(cls: type[BaseException]) -> list[type[BaseException]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_with_subclasses(sub))
    return found


def _failure(error: BaseException) -> dict[str, Any]:
    """What is stored of a declared failure: its type, its message and, when JSON carries them, its arguments."""
    try:
        message = str(error)
    except RecursionError:  # the repr of an argument nested deeper than Python can walk
        message = "<exception str() failed>"
    return {"type": _type_name(type(error)), "message": message, "args": _args(error)}


def _args(error: BaseException) -> list[Any] | None:
    """The arguments that rebuild the error on replay, or None when JSON cannot carry them within the depth limit."""
    try:
        depth.check_depth(json.dumps(error.args))
    except (TypeError, ValueError, RecursionError, InputTooDeepError):
        return None
    return list(error.args)
