"""Reading a key, a fingerprint or a scope out of an event or a function's arguments.

A selector is a JMESPath expression or a callable. JMESPath gets one extra function, ``json()``, for bodies that
arrive as JSON strings (``json(body).order_id``); it passes non-strings through, so direct invocations with an
object body work too. ``powertools_json()`` is the same function, so Powertools' expressions work as written.
Expressions compile on first use, not at import: a cold start pays only for what it runs. An expression that
calls a function JMESPath does not have (Powertools' ``powertools_base64()``) is a `ValueError` at that first use,
never a key that is missing on every call (which ``required=False`` would turn into no idempotency at all).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from . import depth
from .codec import parse_json
from .errors import InputTooDeepError, MissingKeyError

Selector = str | Callable[..., Any]
Arguments = tuple[tuple[Any, ...], dict[str, Any]]
"""A call's positional and keyword arguments."""


def _parse_json(value: Any) -> Any:
    """``json()``: parse a JSON string, pass anything else through.

    The key and the fingerprint usually read the same body: the last string parsed is remembered (by identity,
    strings being immutable), so one call parses its body once.
    """
    if not isinstance(value, (str, bytes)):
        return value
    global _last_parsed  # noqa: PLW0603 - a one-entry cache; replacing the tuple is atomic
    last = _last_parsed
    if last[0] is value:
        return last[1]
    depth.check_depth(value)  # InputTooDeepError, typed, for a body nested past the limit
    parsed = parse_json(value)
    _last_parsed = (value, parsed)
    return parsed


_last_parsed: tuple[Any, Any] = (None, None)


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
                    return _parse_json(value)

                @functions.signature({"types": []})  # type: ignore[untyped-decorator]
                def _func_powertools_json(self, value: Any) -> Any:
                    return _parse_json(value)

            cls.options = jmespath.Options(custom_functions=Functions())
        return cls.options


JSON_FUNCTIONS = frozenset({"json", "powertools_json"})
"""``json()``, and Powertools' name for it."""


class UnknownFunctionError(ValueError):
    """A JMESPath selector calls a function JMESPath does not have: a misconfiguration, never a missing key (not even
    inside another selector, as `idempotent_record`'s key is)."""


class _NotDirect(Exception):
    """The expression uses more of JMESPath than `_direct` reads itself."""


def _direct(node: dict[str, Any]) -> Callable[[Any], Any]:
    """Plain Python for the expressions keys are made of (``a.b``, ``json(body).id``), with JMESPath's meaning.

    Walking jmespath's tree costs more CPU than the rest of a call; fields, sub-expressions and ``json()`` are read
    directly instead (a field of a non-object is null, null propagates). Anything else raises `_NotDirect`.
    """
    kind = node["type"]
    if kind == "field":
        name = node["value"]

        def field(data: Any) -> Any:
            try:
                return data.get(name)
            except AttributeError:
                return None

        return field
    if kind == "subexpression":  # fields read in the loop itself: a function call less per field
        steps = [child["value"] if child["type"] == "field" else _direct(child) for child in node["children"]]

        def path(data: Any) -> Any:
            for step in steps:
                if type(step) is str:
                    try:
                        data = data.get(step)
                    except AttributeError:
                        data = None
                else:
                    data = step(data)
            return data

        return path
    if kind == "function_expression" and node["value"] in JSON_FUNCTIONS and len(node["children"]) == 1:
        child = node["children"][0]
        if child["type"] == "field":  # json(body), the usual case: the field read here, a call less
            body = child["value"]

            def json_field(data: Any) -> Any:
                try:
                    value = data.get(body)
                except AttributeError:  # a field of a non-object is null, and json(null) is null
                    return None
                return _parse_json(value)

            return json_field
        inner = _direct(child)
        return lambda data: _parse_json(inner(data))
    if kind == "current":
        return lambda data: data
    raise _NotDirect(kind)


class _JmesPath:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._search: Callable[[Any], Any] | None = None

    def search(self, data: Any) -> Any:
        if self._search is None:
            self._search = _compile(self.expression)
        try:
            return self._search(data)
        except (ValueError, TypeError) as exc:
            raise MissingKeyError(f"{self.expression!r} could not be read from the input: {_told(exc)}") from None
        except RecursionError:  # JMESPath's own functions (to_string, comparisons) on a deeply nested input
            raise InputTooDeepError(f"{self.expression!r} recursed too deeply into the input") from None
        except Exception as exc:
            if type(exc).__module__.startswith("jmespath"):
                raise MissingKeyError(f"{self.expression!r} could not be read from the input: {_told(exc)}") from None
            raise


def _told(exc: Exception) -> str:
    """An error's message, or its type when the message cannot be written: JMESPath's messages show the input's
    values, and the input is the caller's (an int past 4,300 digits, a list too deep to repr)."""
    try:
        return str(exc)
    except (ValueError, RecursionError):
        return type(exc).__name__


def _compile(expression: str) -> Callable[[Any], Any]:
    import jmespath

    compiled = jmespath.compile(expression)
    try:
        return _direct(compiled.parsed)
    except _NotDirect:
        pass
    options = _JsonFunctions.get()
    _check_functions(expression, compiled.parsed, options.custom_functions.FUNCTION_TABLE)
    return lambda data: compiled.search(data, options=options)


def _check_functions(expression: str, node: dict[str, Any], known: Any) -> None:
    """`ValueError` naming a function the expression calls that JMESPath does not have: else every call would fail
    to read its key, a misconfiguration reported as a missing key (or, with ``required=False``, hidden)."""
    if node.get("type") == "function_expression" and node["value"] not in known:
        raise UnknownFunctionError(
            f"{expression!r} calls {node['value']}(), which is not a JMESPath function here (json() and "
            "powertools_json() parse a JSON string; for anything else pass a callable)"
        )
    for child in node.get("children", ()):
        if isinstance(child, dict):
            _check_functions(expression, child, known)


def check_selector(selector: Any) -> None:
    """`TypeError` for a selector that is neither a JMESPath expression nor a callable (``key=None`` from an unset
    setting): each call would find no key, which ``required=False`` would turn into no idempotency at all."""
    if not isinstance(selector, str) and not callable(selector):
        raise TypeError(
            f"key=, fingerprint= and scope= take a JMESPath expression (a str) or a callable, got {selector!r:.100}"
        )


def event_selector(selector: Selector, *, skip: int = 0) -> Callable[[Arguments], Any]:
    """For `idempotent`: a JMESPath runs on the event, a callable gets the event. ``skip``: the positional arguments
    before the event (1 for a method's ``self`` or ``cls``, see `event_position`)."""
    check_selector(selector)
    if isinstance(selector, str):
        path = _JmesPath(selector)
        return lambda call: path.search(call[0][skip] if len(call[0]) > skip else call[1].get("event"))
    return _guarded(lambda call: selector(call[0][skip] if len(call[0]) > skip else call[1]["event"]))  # event=...


METHOD_RECEIVERS = frozenset({"self", "cls"})
"""The first parameter's names that make a handler a method: its event is the argument after it."""


def event_position(fn: Callable[..., Any]) -> int:
    """Where a handler's event is among its positional arguments: 1 for a method (``handle(self, event, context)``,
    its first parameter named ``self`` or ``cls``), else 0 (also for a bound method, whose ``self`` is given). Read
    from the code object at decoration: a function in a class body is not yet bound, so the call alone cannot tell
    ``self`` from the event."""
    target = inspect.unwrap(fn)
    if inspect.ismethod(fn) or inspect.ismethod(target):  # bound already: its self is not among the arguments
        return 0
    code = getattr(target, "__code__", None)
    if code is None or not code.co_argcount:
        return 0
    return 1 if code.co_varnames[0] in METHOD_RECEIVERS else 0


def argument_selector(selector: Selector, fn: Callable[..., Any]) -> Callable[[Arguments], Any]:
    """For `idempotent_function`: a callable gets the arguments, a JMESPath sees them by parameter name, with
    dataclass and pydantic arguments as dicts (``key="order.id"`` for ``def charge(order: Order)``)."""
    check_selector(selector)
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
        return path.search({name: as_data(value) for name, value in bound.arguments.items()})

    return by_name


_PLAIN = frozenset({str, int, float, bool, dict, list, type(None)})
"""The usual argument types, answered without looking for dataclass fields or ``model_dump``."""


def as_data(value: Any) -> Any:
    """A dataclass instance or a pydantic model as its dict form, which JMESPath can read (as Powertools does), a
    Powertools event data class (``SQSRecord``) as the event it wraps (``raw_event``, as Powertools does), a tuple
    (``*args``) as a list, which JMESPath indexes (both write the same key and fingerprint text); anything else
    unchanged."""
    if type(value) in _PLAIN or isinstance(value, type):
        return value
    if type(value) is tuple:
        return list(value)
    if hasattr(type(value), "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        return dump()
    raw = getattr(value, "raw_event", None)  # else its text (a listing of its properties) was the fingerprint
    return raw if isinstance(raw, dict) else value


def _guarded(read: Callable[[Arguments], Any]) -> Callable[[Arguments], Any]:
    """A user's selector that fails on a malformed input (a missing field, a wrong type) means: no key."""

    def guarded(call: Arguments) -> Any:
        try:
            return read(call)
        except UnknownFunctionError:
            raise
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            raise MissingKeyError(f"the selector could not read the input: {exc!r}") from exc

    return guarded
