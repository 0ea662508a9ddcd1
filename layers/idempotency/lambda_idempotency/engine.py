"""The state machine of one idempotent call: claim, run, complete or release (DESIGN.md, "The state machine").

`Guard` knows no AWS and no decorator: the decorators call `begin`, run the function, then `finish` or `abort`;
the store answers with values and the rules for what a refused write means all live here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any

from .cache import LocalCache
from .codec import Serializer
from .errors import (
    CachedFailureError,
    InProgressError,
    KeyReuseError,
    MissingKeyError,
    ResultNotStoredError,
    StoreUnavailableError,
)
from .execution import Execution
from .keys import fingerprint_of, normalise_key, normalise_scope, record_id
from .record import Payload, Record, Status, pack, unpack
from .selectors import Arguments
from .stores.base import ClaimRequest, Refused, Store

logger = logging.getLogger("lambda_idempotency")

DEFAULT_LEASE_MS = 60_000
LEASE_MARGIN_MS = 1_000
"""Added to every lease, so a retry after a Lambda timeout can take over a little after the deadline."""
FINISH_ATTEMPTS = 3
MAX_CLAIM_ROUNDS = 4

Clock = Callable[[], float]
"""Epoch seconds; injectable so tests move time instead of sleeping."""


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
    ) -> None:
        self.store = store
        self.operation = operation
        self._key = key
        self._fingerprint = fingerprint
        self._scope = scope
        self.ttl_s = ttl_s
        self.lease_ms = lease_ms
        self.cache_errors = cache_errors
        self.cache = cache
        self.required = required
        self.fail_open = fail_open
        self.serializer = serializer
        self.clock = clock

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
        scope = normalise_scope(self._scope(call)) if self._scope else None
        fingerprint = fingerprint_of(self._fingerprint(call)) if self._fingerprint else None
        rid = record_id(self.operation, scope, key)
        now_ms = int(self.clock() * 1000)

        if self.cache is not None:
            cached = self.cache.get(rid, now_ms // 1000)
            if cached is not None:
                _check_fingerprint(cached, fingerprint, key)
                return cached

        lease_until = now_ms + self._lease_ms(lambda_context)
        request = ClaimRequest(
            record_id=rid,
            owner=os.urandom(16).hex(),
            key=key,
            scope=scope,
            fingerprint=fingerprint,
            now_ms=now_ms,
            lease_expires_at=lease_until,
            expires_at=max(now_ms // 1000 + self.ttl_s, math.ceil(lease_until / 1000)),
        )
        try:
            return self._claim(request)
        except StoreUnavailableError:
            if not self.fail_open:
                raise
            logger.warning("store unavailable; running %s without idempotency (fail_open)", self.operation)
            return None

    def _claim(self, request: ClaimRequest) -> Execution | Record:
        previous: Record | None = None
        for _ in range(MAX_CLAIM_ROUNDS):
            refused = self.store.claim(request) if previous is None else self.store.take_over(request, previous)
            if refused is None:
                return self._execution(request, previous.attempts + 1 if previous else 1, previous)
            found = refused.current
            if found is None or found.is_expired(request.now_s):
                previous = None
                continue
            if found.owner == request.owner:
                logger.debug("a resent claim of %s had landed: it is ours", request.record_id)
                return self._execution(request, found.attempts, found)
            _check_fingerprint(found, request.fingerprint, request.key)
            if found.status is Status.COMPLETED:
                if self.cache is not None:
                    self.cache.put(found)
                return found
            if found.status is Status.FAILED:
                return found
            if found.lease_is_live(request.now_ms):
                raise _in_progress(request, found)
            logger.info("lease of %s passed; taking it over (attempt %d)", request.record_id, found.attempts + 1)
            previous = found
        raise InProgressError(f"key {request.key!r} of {self.operation} is contended", retry_after=1)

    def _execution(self, request: ClaimRequest, attempt: int, holder: Record | None) -> Execution:
        """The execution that now holds the claim; ``holder`` is the record whose steps it inherits."""
        return Execution(
            key=request.key,
            scope=request.scope,
            operation=self.operation,
            record_id=request.record_id,
            attempt=attempt,
            owner=request.owner,
            fingerprint=request.fingerprint,
            lease_expires_at=request.lease_expires_at,
            steps=dict(holder.steps) if holder else {},
        )

    def _lease_ms(self, lambda_context: Any) -> int:
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        left = int(remaining()) if callable(remaining) else None
        if self.lease_ms is None:
            lease = DEFAULT_LEASE_MS if left is None else left
        else:
            lease = self.lease_ms if left is None else min(self.lease_ms, left)
        return max(lease, 0) + LEASE_MARGIN_MS

    def finish(self, execution: Execution, result: Any) -> None:
        """Store the result (COMPLETED); a refused write means the lease was lost, never an overwrite."""
        payload = self._payload(execution, result)
        now_ms = int(self.clock() * 1000)
        expires_at = now_ms // 1000 + self.ttl_s
        refused = self._finish(execution, Status.COMPLETED, payload, now_ms, expires_at)
        if refused is None:
            if self.cache is not None:
                self.cache.put(
                    Record(
                        record_id=execution.record_id,
                        status=Status.COMPLETED,
                        owner=execution.owner,
                        expires_at=expires_at,
                        key=execution.key,
                        scope=execution.scope,
                        fingerprint=execution.fingerprint,
                        result=payload,
                    )
                )
        elif not _is_mine(refused, execution):
            logger.warning(
                "lease lost: %s was taken over before it completed; its record stays the new owner's",
                execution.record_id,
            )

    def abort(self, execution: Execution, error: BaseException) -> None:
        """After an exception: store a declared failure, release the key, or (BaseException) leave the lease."""
        if self.cache_errors and isinstance(error, self.cache_errors):
            now_ms = int(self.clock() * 1000)
            payload = json.dumps({"type": _type_name(type(error)), "message": str(error), "args": _args(error)})
            self._finish(execution, Status.FAILED, payload, now_ms, now_ms // 1000 + self.ttl_s)
            return
        if not isinstance(error, Exception):
            logger.warning("%s interrupted by %s; its lease will expire", execution.record_id, type(error).__name__)
            return
        try:
            refused = self.store.release(execution.record_id, execution.owner, keep_steps=bool(execution.steps))
        except StoreUnavailableError as exc:
            logger.error("could not release %s (%s); it is blocked until its lease ends", execution.record_id, exc)
            return
        if refused is not None and refused.current is not None:  # gone: our own resent delete had landed
            logger.warning("lease lost: %s was taken over before it was released", execution.record_id)

    def replay(self, record: Record) -> Any:
        """The stored outcome of a finished record: its result, or its failure raised again."""
        if record.status is Status.FAILED:
            raise self._rebuild_error(record)
        if record.result is None:
            raise ResultNotStoredError(
                f"{self.operation} completed for key {record.key!r}, but its result was not stored"
            )
        return self.serializer.loads(unpack(record.result))

    def _payload(self, execution: Execution, result: Any) -> Payload | None:
        try:
            text = self.serializer.dumps(result)
        except Exception as exc:
            logger.error("result of %s cannot be stored (%s); replays will raise", execution.record_id, exc)
            return None
        payload = pack(text)
        if payload is None:
            logger.error("result of %s is too big to store (%d bytes)", execution.record_id, len(text))
        return payload

    def _finish(
        self, execution: Execution, status: Status, payload: Payload | None, now_ms: int, expires_at: int
    ) -> Refused | None:
        for attempt in range(FINISH_ATTEMPTS):
            try:
                return self.store.finish(execution.record_id, execution.owner, status, payload, now_ms, expires_at)
            except StoreUnavailableError as exc:
                if attempt + 1 == FINISH_ATTEMPTS:
                    logger.error(
                        "could not store the outcome of %s (%s); the key stays in flight until its lease ends",
                        execution.record_id,
                        exc,
                    )
                    return None
                time.sleep(0.05 * 2**attempt)
        return None

    def _rebuild_error(self, record: Record) -> BaseException:
        stored = json.loads(unpack(record.result)) if record.result is not None else {}
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


def _check_fingerprint(found: Record, fingerprint: str | None, key: str) -> None:
    if fingerprint is not None and found.fingerprint is not None and found.fingerprint != fingerprint:
        raise KeyReuseError(f"idempotency key {key!r} was already used with a different payload")


def _in_progress(request: ClaimRequest, found: Record) -> InProgressError:
    lease_end = found.lease_expires_at or request.now_ms
    retry_after = max(1, math.ceil((lease_end - request.now_ms) / 1000))
    return InProgressError(f"key {request.key!r} is in progress", retry_after=retry_after)


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


def _args(error: BaseException) -> list[Any] | None:
    try:
        json.dumps(error.args)
    except (TypeError, ValueError):
        return None
    return list(error.args)
