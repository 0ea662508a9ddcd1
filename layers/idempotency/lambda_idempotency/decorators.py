"""`idempotent` for Lambda handlers and `idempotent_function` for any function, sync or async.

Both build a `Guard` from their options and wrap the function in the same run loop: begin (claim or replay),
run, then finish or abort. Async functions run the decorator's blocking store calls (claim, completion, release,
replay) in a worker thread, so those never block the event loop; `current().step()` and `heartbeat()` are the
function's own synchronous calls and save on its thread.

Importing this module loads nothing else of the package: the engine and its helpers load when a function is
decorated, so ``from lambda_idempotency import idempotent`` costs a cold start almost nothing by itself.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from .codec import Serializer
    from .engine import Clock, Guard
    from .execution import Mode
    from .selectors import Arguments, Selector
    from .stores.base import Store

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TTL = timedelta(hours=24)
DISABLED_ENV = "LAMBDA_IDEMPOTENCY_DISABLED"
POWERTOOLS_DISABLED_ENV = "POWERTOOLS_IDEMPOTENCY_DISABLED"
_TRUTHY = frozenset({"1", "true", "t", "yes", "y", "on"})
_warned_powertools_switch = False
_warned_own_switch = False


def warn_about_powertools_switch() -> None:
    """Warn once per process when Powertools' ``POWERTOOLS_IDEMPOTENCY_DISABLED`` is set and ours is not, and when
    ours is set to another true value than ``1`` (``true``, as Powertools' takes), which does not switch it off.

    Neither is honoured: a variable left over from a migration, or set for another function's Powertools, must not
    switch protection off in production unnoticed. Checked when a function is decorated (a cold start), not on
    every call: the calls' hot path reads one variable, ours, and compares it with ``1``.
    """
    environ = os.environ
    ours = environ.get(DISABLED_ENV)
    if not _warned_own_switch and ours != "1" and (ours or "").strip().lower() in _TRUTHY:
        _warn_own_switch(ours or "")
    if (
        not _warned_powertools_switch
        and ours != "1"
        and environ.get(POWERTOOLS_DISABLED_ENV, "").strip().lower() in _TRUTHY
    ):
        _warn_powertools_switch()


def _warn_own_switch(value: str) -> None:
    global _warned_own_switch  # noqa: PLW0603 - warn once per process
    _warned_own_switch = True
    import logging

    logging.getLogger("lambda_idempotency").warning(
        "%s=%r does not switch idempotency off: only %s=1 does. Idempotency stays ON", DISABLED_ENV, value, DISABLED_ENV
    )


def _warn_powertools_switch() -> None:
    global _warned_powertools_switch  # noqa: PLW0603 - warn once per process
    _warned_powertools_switch = True
    import logging

    logging.getLogger("lambda_idempotency").warning(
        "%s is set but lambda-idempotency does not read it: idempotency stays ON. Set %s=1 to turn it off "
        "(for unit tests), or unset %s",
        POWERTOOLS_DISABLED_ENV,
        DISABLED_ENV,
        POWERTOOLS_DISABLED_ENV,
    )


def disabled() -> bool:
    """Whether ``LAMBDA_IDEMPOTENCY_DISABLED=1``: read on every call, as tests and local runs set it at run time.

    ``os.environ.get`` of an unset variable raises and catches KeyError twice inside, about a microsecond, a tenth
    of what the rest of a duplicate costs; the mapping behind ``os.environ`` (which every change made through
    ``os.environ`` updates) answers the same in a twentieth of that. Where there is none (``os.environ`` replaced
    by a plain dict, as some tests do), ``os.environ.get``.
    """
    environ = os.environ
    data = getattr(environ, "_data", None)
    if data is None:
        return environ.get(DISABLED_ENV) == "1"
    return bool(data.get(_DISABLED_KEY) == _ON)


_DISABLED_KEY = os.environ.encodekey(DISABLED_ENV)
_ON = os.environ.encodevalue("1")


def idempotent(
    store: Store,
    *,
    key: Selector,
    fingerprint: Selector | None = None,
    scope: Callable[[Any], Any] | None = None,
    operation: str | None = None,
    ttl: timedelta | float = DEFAULT_TTL,
    lease: timedelta | float | None = None,
    renew: bool = True,
    cache_errors: tuple[type[BaseException], ...] = (),
    local_cache: bool | int = True,
    required: bool = True,
    fail_open: bool = False,
    serializer: Serializer | None = None,
    clock: Clock = time.time,
    mode: Mode = "claim",
    hash_keys: bool | bytes = False,
) -> Callable[[F], F]:
    """Make a Lambda handler ``(event, context)`` run once per key; retries get the stored result.

    ``key``/``fingerprint`` are JMESPath expressions on the event (``json(body).order_id``) or callables of the
    event; ``scope`` is a callable of the event. A method ``handle(self, event, context)`` (its first parameter named
    ``self`` or ``cls``) is read from the argument after ``self``. The key is held by a lease (``lease``, default
    20 s) renewed every lease/3 while the function runs; ``renew=False`` takes one lease for the whole invocation
    instead.
    ``mode="optimistic"`` claims and reads nothing, so every call the local cache does not answer runs the function
    and only the first commit's writes land: for short functions whose only effects are `current().write` calls.
    ``hash_keys`` stores keyed hashes of the key and scope instead of their text (True, or a secret: bytes).
    """

    def decorate(fn: F) -> F:
        from .selectors import event_position, event_selector

        at = event_position(fn)  # a method's event comes after its self
        guard = _guard(
            fn,
            store,
            key=event_selector(key, skip=at),
            fingerprint=event_selector(fingerprint, skip=at) if fingerprint is not None else None,
            scope=event_selector(scope, skip=at) if scope is not None else None,
            operation=operation,
            ttl=ttl,
            lease=lease,
            renew=renew,
            cache_errors=cache_errors,
            local_cache=local_cache,
            required=required,
            fail_open=fail_open,
            serializer=serializer,
            clock=clock,
            mode=mode,
            hash_keys=hash_keys,
        )

        def context_of(call: Arguments) -> Any:
            args = call[0]
            return args[at + 1] if len(args) > at + 1 else call[1].get("context")

        return _wrap(fn, guard, context_of)

    return decorate


def idempotent_function(
    store: Store,
    *,
    key: Selector,
    fingerprint: Selector | None = None,
    scope: Callable[..., Any] | None = None,
    operation: str | None = None,
    ttl: timedelta | float = DEFAULT_TTL,
    lease: timedelta | float | None = None,
    renew: bool = True,
    cache_errors: tuple[type[BaseException], ...] = (),
    local_cache: bool | int = True,
    required: bool = True,
    fail_open: bool = False,
    serializer: Serializer | None = None,
    clock: Clock = time.time,
    mode: Mode = "claim",
    hash_keys: bool | bytes = False,
) -> Callable[[F], F]:
    """Make any function run once per key taken from its own arguments.

    Callables get the function's arguments; a JMESPath sees them as an object by parameter name
    (``"order.id"`` for ``def charge(order)``).
    """

    def decorate(fn: F) -> F:
        from . import execution as running
        from .selectors import argument_selector

        guard = _guard(
            fn,
            store,
            key=argument_selector(key, fn),
            fingerprint=argument_selector(fingerprint, fn) if fingerprint is not None else None,
            scope=argument_selector(scope, fn) if scope is not None else None,
            operation=operation,
            ttl=ttl,
            lease=lease,
            renew=renew,
            cache_errors=cache_errors,
            local_cache=local_cache,
            required=required,
            fail_open=fail_open,
            serializer=serializer,
            clock=clock,
            mode=mode,
            hash_keys=hash_keys,
        )
        return _wrap(fn, guard, lambda call: running.lambda_context())

    return decorate


def _guard(
    fn: Callable[..., Any],
    store: Store,
    *,
    key: Callable[[Arguments], Any],
    fingerprint: Callable[[Arguments], Any] | None,
    scope: Callable[[Arguments], Any] | None,
    operation: str | None,
    ttl: timedelta | float,
    lease: timedelta | float | None,
    renew: bool,
    cache_errors: tuple[type[BaseException], ...],
    local_cache: bool | int,
    required: bool,
    fail_open: bool,
    serializer: Serializer | None,
    clock: Clock,
    mode: Mode,
    hash_keys: bool | bytes,
) -> Guard:
    from . import option_values
    from .codec import TaggedJsonSerializer, return_annotation
    from .engine import Guard
    from .keys import check_operation

    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"{fn.__qualname__} is a generator function: its body would run while its caller iterates, after the "
            "call was recorded as complete. Decorate a function that returns the values (a list, say)"
        )
    warn_about_powertools_switch()
    return Guard(
        store=store,
        operation=check_operation(default_operation(fn) if operation is None else operation),
        key=key,
        fingerprint=fingerprint,
        scope=scope,
        ttl_s=option_values.ttl_s(ttl),
        lease_ms=option_values.lease_ms(lease),
        cache_errors=_error_types(cache_errors),
        cache=option_values.local_cache(local_cache),
        required=required,
        fail_open=fail_open,
        serializer=serializer or TaggedJsonSerializer(return_annotation(fn)),
        clock=clock,
        mode=mode,
        renew=renew,
        hash_keys=hash_keys,
    )


def _error_types(cache_errors: Any) -> tuple[type[BaseException], ...]:
    """``cache_errors`` as a tuple of exception classes; anything else (a string, an instance) is a ``TypeError`` now,
    not when the first failure is matched against it (which would replace the function's own exception)."""
    types = (cache_errors,) if isinstance(cache_errors, type) else tuple(cache_errors)
    bad = [t for t in types if not (isinstance(t, type) and issubclass(t, BaseException))]
    if bad:
        raise TypeError(f"cache_errors must be exception classes, got {bad!r}")
    return types


def default_operation(fn: Callable[..., Any]) -> str:
    """The Lambda function's name (when set) + module + qualified name: two functions never share records.

    A callable without a qualified name of its own (an instance with ``__call__``, a ``functools.partial``) has no
    default: its type's name would be shared by every instance or partial, each with its own records.
    """
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(qualname, str):
        raise TypeError(
            f"a {type(fn).__name__} has no qualified name to name its records after: pass operation= (a name that "
            "survives renames and redeploys)"
        )
    name = f"{getattr(fn, '__module__', None)}.{qualname}"
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    return f"{function_name}:{name}" if function_name else name


def _wrap(fn: F, guard: Guard, context_of: Callable[[Arguments], Any]) -> F:
    from . import execution as running
    from .record import Record

    if inspect.iscoroutinefunction(fn):
        replay_offloop = guard.outcomes.payloads is not None  # S3 or KMS behind a replay: boto3 calls, in a thread

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            if disabled():
                return await fn(*args, **kwargs)
            import asyncio
            import contextvars

            call = (args, kwargs)
            context = context_of(call)
            # What asyncio.to_thread does, with the thread's own future kept: a cancelled caller gives its claim back
            claiming = _claims().submit(contextvars.copy_context().run, guard.begin, call, context)
            try:
                started = await asyncio.wrap_future(claiming)
            except asyncio.CancelledError:  # give the claim back once it lands, in a pool thread (a store call)
                claiming.add_done_callback(lambda claimed: _claims().submit(_give_back, guard, claimed))
                raise
            if started is None:
                return await fn(*args, **kwargs)
            if isinstance(started, Record):
                return await asyncio.to_thread(guard.replay, started) if replay_offloop else guard.replay(started)
            tokens = running.enter(started, context)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                replayed = await asyncio.to_thread(guard.abort, started, error)
                if replayed is not None:  # optimistic: another call's result is the key's outcome
                    return replayed.value
                raise
            finally:
                running.leave(tokens)
            return await asyncio.to_thread(guard.finish, started, result)

        guard_attr(run_async, guard)
        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if disabled():
            return fn(*args, **kwargs)
        call = (args, kwargs)
        context = context_of(call)
        started = guard.begin(call, context)
        if started is None:
            return fn(*args, **kwargs)
        if isinstance(started, Record):
            return guard.replay(started)
        tokens = running.enter(started, context)
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            replayed = guard.abort(started, error)
            if replayed is not None:  # optimistic: another call's result is the key's outcome
                return replayed.value
            raise
        finally:
            running.leave(tokens)
        return guard.finish(started, result)

    guard_attr(run, guard)
    return run  # type: ignore[return-value]


_claim_pool: Executor | None = None


def _claims() -> Executor:
    """The threads async functions claim their keys in (as many as ``asyncio.to_thread``'s default pool)."""
    global _claim_pool  # noqa: PLW0603 - one pool per process, made at the first async call
    if _claim_pool is None:
        from concurrent.futures import ThreadPoolExecutor

        with _claim_pool_lock:  # event loops in two threads: one pool
            if _claim_pool is None:
                _claim_pool = ThreadPoolExecutor(thread_name_prefix="lambda-idempotency-claim")
    return _claim_pool


_claim_pool_lock = threading.Lock()


def _give_back(guard: Guard, claiming: Future[Any]) -> None:
    """The claim of a call cancelled while it was made (in a pool thread, once it landed): the function never ran,
    so its key is released (its lease stopped) and a retry runs it at once. Nobody reads this thread's outcome, so a
    release that fails is logged here (else the lease frees the key when it ends)."""
    from .execution import Execution

    if claiming.cancelled() or claiming.exception() is not None:
        return
    started = claiming.result()
    if isinstance(started, Execution):
        try:
            guard.release(started)
        except Exception:
            import logging

            logging.getLogger("lambda_idempotency").exception("could not give back the claim of a cancelled call")


def guard_attr(wrapper: Callable[..., Any], guard: Guard) -> None:
    """Expose the guard as ``wrapper.idempotency`` (its operation, store and cache), for tools and tests."""
    wrapper.idempotency = guard  # type: ignore[attr-defined]
