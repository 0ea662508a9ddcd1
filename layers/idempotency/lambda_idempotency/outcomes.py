"""How an outcome becomes a stored payload and back: a result, a saved step, a stored failure (DESIGN.md, "Results of
any size, stored data").

One `Outcomes` per guarded function, built with its `Guard`, so no call allocates one. It owns the one serializer
rule (the user's serializer, else tagged JSON with the return annotation; DESIGN.md, "One serializer") and the one
path past it (`record.pack`, or the store's offload and encryption), so the engine keeps the state machine and never
touches stored bytes. Nothing here writes to the store: the engine decides when, this module decides what.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import depth
from . import observability as observe
from .codec import Serializer, TaggedJsonSerializer, return_annotation
from .errors import (
    CachedFailureError,
    InputTooDeepError,
    ResultNotStoredError,
    ResultUnreadableError,
    StoreConfigurationError,
    StoreUnavailableError,
)
from .record import Payload, Record, Status, pack, unpack

if TYPE_CHECKING:
    from .execution import Execution
    from .payloads import Payloads

logger = logging.getLogger("lambda_idempotency")


class Outcomes:
    """The stored form of one guarded function's results, steps and declared failures, and their replay."""

    def __init__(
        self,
        *,
        operation: str,
        serializer: Serializer,
        payloads: Payloads | None,
        cache_errors: tuple[type[BaseException], ...],
    ) -> None:
        self.operation = operation
        self.serializer = serializer
        self.custom_serializer = type(serializer) is not TaggedJsonSerializer
        """A serializer the user chose serializes steps and stored failures too (DESIGN.md, "One serializer")."""
        self.payloads = payloads
        self.cache_errors = cache_errors

    def result(self, execution: Execution, result: Any, serializer: Serializer | None = None) -> Payload | None:
        """The stored form of a result; None (logged: replays will raise) when it cannot be serialized or is too
        big. Raises `StoreUnavailableError` when S3 or KMS fail, `StoreConfigurationError` when their bucket or key is
        missing or denied: then nothing was written."""
        try:
            text = (serializer or self.serializer).dumps(result)
            # `seal` inlined for a store without offload or encryption; UnicodeEncodeError: text UTF-8 cannot carry
            payload = pack(text) if self.payloads is None else self.seal(execution, "result", text)
        except (StoreUnavailableError, StoreConfigurationError):  # S3 or KMS: nothing was written
            raise
        except Exception as exc:
            logger.error("result of %s cannot be stored (%s); replays will raise", execution.record_id, exc)
            return None
        if payload is None:
            logger.error("result of %s is too big to store (%d bytes)", execution.record_id, len(text))
        elif observe.watching():
            observe.emit(observe.RESULT_BYTES, self.operation, execution.record_id, observe.size_of(payload))
        return payload

    def failure(self, execution: Execution, error: BaseException) -> Payload | None:
        """The stored form of a declared failure (`cache_errors`), in the record's result slot like a result."""
        serializer = self._plain_serializer()
        return self.result(execution, _failure(error, serializer), serializer)

    def replay(self, record: Record) -> Any:
        """The stored outcome of a finished record: its result, or its failure raised again."""
        if record.status is Status.FAILED:
            raise self._rebuild_error(record)
        if record.result is None:
            raise ResultNotStoredError(
                f"{self.operation} completed for key {record.key!r}, but its result was not stored"
            )
        return _load(self.serializer.loads, self.open(record.record_id, record.result))

    def step_serializer(self, fn: Callable[..., Any]) -> Serializer:
        """The serializer of step ``fn``'s result: the user's, or tagged JSON with the step's return annotation."""
        return self.serializer if self.custom_serializer else TaggedJsonSerializer(return_annotation(fn))

    def saved_step(self, execution: Execution, serializer: Serializer, saved: Payload) -> Any:
        """The result an earlier attempt saved for a step."""
        return _load(serializer.loads, self.open(execution.record_id, saved))

    def step(self, execution: Execution, name: str, serializer: Serializer, result: Any) -> Payload:
        """The stored form of step ``name``'s result; `ResultNotStoredError` when it cannot be saved (the step's
        caller must know: a resumed execution would otherwise run it again)."""
        try:
            payload = self.seal(execution, f"step:{name}", serializer.dumps(result))
        except (TypeError, ValueError, InputTooDeepError) as exc:
            raise ResultNotStoredError(f"the result of step {name!r} cannot be saved: {exc}") from exc
        if payload is None:
            raise ResultNotStoredError(f"the result of step {name!r} is too big to save")
        return payload

    def seal(self, execution: Execution, slot: str, text: str) -> Payload | None:
        """The stored form of serialized ``text`` (`record.pack`, or the store's offload and encryption)."""
        if self.payloads is None:
            return pack(text)
        return self.payloads.seal(
            text, operation=self.operation, record_id=execution.record_id, owner=execution.owner, slot=slot
        )

    def open(self, record_id: str, payload: Payload) -> str:
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

    def _rebuild_error(self, record: Record) -> BaseException:
        """The declared failure a record stores, raised again as its own type when one of `cache_errors` (or
        their subclasses) has its name and accepts its arguments; otherwise `CachedFailureError`."""
        stored = (
            _load(self._plain_serializer().loads, self.open(record.record_id, record.result))
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
                        return _rebuilt(
                            cls,
                            tuple(args) if isinstance(args, list) else (message,),
                            stored.get("attrs"),
                            whole=isinstance(args, list) and not stored.get("partial"),
                        )
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


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _with_subclasses(cls: type[BaseException]) -> list[type[BaseException]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_with_subclasses(sub))
    return found


def _rebuilt(cls: type[BaseException], args: tuple[Any, ...], attrs: Any, *, whole: bool) -> BaseException:
    """The declared failure raised again: ``cls(*args)`` with the attributes it had. When that ``__init__`` turns
    its arguments into others (``super().__init__(f"balance {balance} too low")``) or refuses them (keyword-only
    parameters), the error is made as pickle cannot: without running ``__init__`` again, its args and attributes set
    as they were. That needs all of them (``whole``); else the instance ``__init__`` made gets its args and the stored
    attributes set over it, and an ``__init__`` that refuses raises (the caller answers `CachedFailureError`)."""
    try:
        rebuilt = cls(*args)
    except Exception:
        if not whole:
            raise
        rebuilt = cls.__new__(cls, *args)
    if rebuilt.args != args and whole:  # nothing of it is left for __init__ to set: made without it
        rebuilt = cls.__new__(cls, *args)
    rebuilt.args = args  # else what __init__ made, with its own args and attributes set back over it
    if isinstance(attrs, dict):
        for name, value in attrs.items():
            try:
                setattr(rebuilt, name, value)
            except Exception:  # a read-only attribute: the error is raised without it
                continue
    return rebuilt


def _failure(error: BaseException, serializer: Serializer) -> dict[str, Any]:
    """What is stored of a declared failure: its type, its message and, when ``serializer`` carries them, its
    arguments and the attributes its ``__init__`` names (``self.balance = balance``): what was passed to it, as
    its args are. Other attributes (a response, a customer kept on the error) are not stored: the table, the CLI
    and every replay would show them."""
    try:
        message = str(error)
    except Exception:  # a buggy __str__, an argument too deep or too big (ints past 4,300 digits) to write
        message = f"<{type(error).__name__}: str() failed>"
    failure: dict[str, Any] = {"type": _type_name(type(error)), "message": message, "args": _args(error, serializer)}
    attrs: dict[str, Any] = {}
    room = MAX_FAILURE_ATTRS_CHARS
    named = _init_parameters(type(error))
    for name, value in getattr(error, "__dict__", {}).items():
        size = _written_size(value, serializer) if name in named else -1
        if 0 <= size <= room:
            attrs[name] = value
            room -= size
        else:
            failure["partial"] = True  # not all of it: an __init__ that refuses its args cannot be bypassed
    if attrs:
        failure["attrs"] = attrs
    return failure


def _init_parameters(cls: type[BaseException]) -> frozenset[str]:
    """The names ``cls.__init__`` takes (not ``self``, ``*args`` or ``**kwargs``): the attributes worth storing."""
    import inspect

    try:
        parameters = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):  # a builtin's __init__ without a signature
        return frozenset()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in kinds and p.name != "self")


MAX_FAILURE_ATTRS_CHARS = 16_384
"""What a stored failure keeps of its attributes, written: past it (a whole HTTP response kept on the error) the
others are left out, so an error that was stored before its attributes were (its type, args, message) still is."""


def _args(error: BaseException, serializer: Serializer) -> list[Any] | None:
    """The arguments that rebuild the error on replay, or None when ``serializer`` cannot carry them within the depth
    limit."""
    args = list(error.args)
    return args if _written_size(args, serializer) >= 0 else None


def _written_size(value: Any, serializer: Serializer) -> int:
    """The length of ``value`` written by ``serializer`` within the depth limit; -1 when it cannot be."""
    try:
        text = serializer.dumps(value)
        depth.check_depth(text)
    except Exception:  # not serializable (TypeError), too big or too deep (ValueError, RecursionError, ...)
        return -1
    return len(text)
