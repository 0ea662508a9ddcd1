"""The state machine of one idempotent call: claim, run, complete or release (DESIGN.md, "The state machine").

`Guard` knows no AWS and no decorator: the decorators call `begin`, run the function, then `finish` or `abort`.
The store answers with values; what a refused write means is decided here for the claim and its take-over, and in
`completion.Completion` for the ways an execution ends (the completion, the fenced commit, a stored failure, a
release), which the guard builds and whose `finish`, `abort` and `release` it exposes as its own. What is not the
state machine lives beside it, each part built once with the guard: how an outcome becomes a stored payload and back
(`outcomes.Outcomes`), the steps and writes of a running execution (`effects.Effects`, its `Host`), and the lease
(`lease.Lease`).

Two modes: "claim" (the default) claims the key before the function runs; "optimistic" claims and reads nothing,
so every call the local cache does not answer runs the function, and inserts the finished record together with the
function's writes: of all those executions exactly one commits and the others replay its result (DESIGN.md,
"Exactly-once effects").
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import observability as observe
from .cache import LocalCache
from .codec import Serializer
from .completion import Completion, check_fingerprint, in_progress_error
from .effects import Effects
from .errors import (
    InProgressError,
    MissingKeyError,
    MissingScopeError,
    StoreConfigurationError,
    StoreUnavailableError,
)
from .execution import Execution, Mode
from .keys import fingerprint_of, normalise_key, normalise_scope, record_id
from .lease import Lease
from .outcomes import Outcomes
from .record import Record, Status
from .selectors import Arguments
from .stores.base import ClaimRequest, Store

if TYPE_CHECKING:
    from .key_hashing import KeyHasher

logger = logging.getLogger("lambda_idempotency")

MAX_CLAIM_ROUNDS = 4
MODES: tuple[Mode, ...] = ("claim", "optimistic")

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


def _check_hooks(store: Any, serializer: Any, clock: Any) -> None:
    """`TypeError` at decoration for a store, serializer or clock that cannot serve: a ``serializer=`` without
    ``dumps``/``loads`` would leave every result not stored (its function run, its replays `ResultNotStoredError`)."""
    if not isinstance(store, Store):
        raise TypeError(f"store must be a Store (DynamoDBStore, MemoryStore, ...), got {store!r:.100}")
    if not (callable(getattr(serializer, "dumps", None)) and callable(getattr(serializer, "loads", None))):
        raise TypeError(f"serializer must have dumps(value) -> str and loads(text) methods, got {serializer!r:.100}")
    if not callable(clock):
        raise TypeError(f"clock must be a callable returning epoch seconds, got {clock!r:.100}")


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
        for name, flag in (("required", required), ("fail_open", fail_open), ("renew", renew)):
            if type(flag) is not bool:  # fail_open="false" is true: it would run unguarded whenever the store fails
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        _check_hooks(store, serializer, clock)
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
        self.replay: Callable[[Record], Any] = self.outcomes.replay
        """The stored outcome of a finished record: its result, or its failure raised again (`Outcomes.replay`,
        bound once here so a duplicate call pays no extra call for it)."""
        self.clock = clock
        self.hasher: KeyHasher | None = None
        if hash_keys is not False:
            from .key_hashing import KeyHasher

            self.hasher = KeyHasher(operation, None if hash_keys is True else hash_keys)
        completion = Completion(
            store=store,
            operation=operation,
            outcomes=self.outcomes,
            cache=cache,
            cache_errors=cache_errors,
            ttl_s=ttl_s,
            clock=clock,
        )
        # How an execution ends, bound once (no extra call per use): see `completion.Completion`.
        self.finish = completion.finish
        self.abort = completion.abort
        self.release = completion.release
        self.retrying = completion.retrying
        """A store call that must land, tried again after `StoreUnavailableError` (steps' saves, renewals)."""
        self.effects = Effects(store, self.outcomes, self.retrying)

    def begin(self, call: Arguments, lambda_context: Any) -> Execution | Record | None:
        """Claim the call's key: an `Execution` to run, a `Record` to replay, or None to run unguarded."""
        try:
            raw_key = self._key(call)
            # An empty text is a missing key to Powertools: with required=False it runs unguarded there, and here
            if raw_key is None or (not self.required and type(raw_key) is str and not raw_key):
                raise MissingKeyError(f"no idempotency key in the input of {self.operation}")
            key = normalise_key(raw_key)  # MissingKeyError too: a key of nothing but nulls
        except MissingKeyError:
            if self.required:
                raise
            logger.debug("no idempotency key for %s; running without idempotency", self.operation)
            return None
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
                check_fingerprint(cached, fingerprint, key, self.operation)
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
                started.stored_as = started.key, started.scope
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
            check_fingerprint(found, request.fingerprint, request.key, self.operation)
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
                raise in_progress_error(request.key, request.now_ms, found)
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
            None,
            holder.created_at if holder else request.now_ms // 1000,
        )
