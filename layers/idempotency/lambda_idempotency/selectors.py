"""Reading a key, a fingerprint or a scope out of an event or a function's arguments.

A selector is a JMESPath expression or a callable. JMESPath gets one extra function, ``json()``, for bodies that
arrive as JSON strings (``json(body).order_id``); it passes non-strings through, so direct invocations with an
object body work too. Expressions compile on first use, not at import: a cold start pays only for what it runs.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from .errors import MissingKeyError

Selector = str | Callable[..., Any]
Arguments = tuple[tuple[Any, ...], dict[str, Any]]
"""A call's positional and keyword arguments."""


class _JsonFunctions:
    """Holds the compiled jmespath options (built once, on first use)."""

    options: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls.options is None:
            import jmespath
            from jmespath import functions

            class Functions(functions.Functions):  # type: ignore[misc]
                @functions.signature({"types": []})  # type: ignore[untyped-decorator]
                def _func_json(self, value: Any) -> Any:
                    return json.loads(value) if isinstance(value, (str, bytes)) else value

            cls.options = jmespath.Options(custom_functions=Functions())
        return cls.options


class _JmesPath:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._compiled: Any = None

    def search(self, data: Any) -> Any:
        if self._compiled is None:
            import jmespath

            self._compiled = jmespath.compile(self.expression)
        try:
            return self._compiled.search(data, options=_JsonFunctions.get())
        except (ValueError, TypeError) as exc:
            raise MissingKeyError(f"{self.expression!r} could not be read from the input: {exc}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("jmespath"):
                raise MissingKeyError(f"{self.expression!r} could not be read from the input: {exc}") from None
            raise


def event_selector(selector: Selector) -> Callable[[Arguments], Any]:
    """For `idempotent`: a JMESPath runs on the event, a callable gets the event."""
    if isinstance(selector, str):
        path = _JmesPath(selector)
        return lambda call: path.search(call[0][0] if call[0] else None)
    return _guarded(lambda call: selector(call[0][0]))


def argument_selector(selector: Selector, fn: Callable[..., Any]) -> Callable[[Arguments], Any]:
    """For `idempotent_function`: a callable gets the arguments, a JMESPath sees them by parameter name."""
    if not isinstance(selector, str):
        return _guarded(lambda call: selector(*call[0], **call[1]))
    path = _JmesPath(selector)
    signature = inspect.signature(fn)

    def by_name(call: Arguments) -> Any:
        try:
            bound = signature.bind(*call[0], **call[1])
        except TypeError as exc:
            raise MissingKeyError(f"arguments do not match {fn.__qualname__}: {exc}") from None
        bound.apply_defaults()
        return path.search(bound.arguments)

    return by_name


def _guarded(read: Callable[[Arguments], Any]) -> Callable[[Arguments], Any]:
    """A user's selector that fails on a malformed input (a missing field, a wrong type) means: no key."""

    def guarded(call: Arguments) -> Any:
        try:
            return read(call)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            raise MissingKeyError(f"the selector could not read the input: {exc!r}") from exc

    return guarded
