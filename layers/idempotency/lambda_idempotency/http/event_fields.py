"""Typed reads of a proxy event's fields: each is what API Gateway, Function URLs and ALB send, or `EventFieldError`.

The services send text, objects of text and booleans where the request goes, and null for what was not sent (REST's
``headers: null``). A direct invoke can send anything: a list for ``headers``, a number where a header value goes (one
of 5,000 digits, which ``str()`` refuses), null for ``requestContext.http``. Such an event is read no further, so the
adapter answers it rather than letting a ``TypeError`` escape or guessing (``str()`` would turn a null key into
``"None"``, a dict body into its Python repr). A null value is what was not sent, wherever it stands. No message repeats
a name or value from the event: the type is enough to find the field, and a caller's text is not echoed back.
"""

from __future__ import annotations

from typing import Any


class EventFieldError(ValueError):
    """A field of the event is missing, or holds a value of a type the services never send there."""


def object_field(container: dict[str, Any], name: str, where: str = "") -> dict[str, Any]:
    """``container[name]`` as an object; absent or null: an empty one."""
    value = container.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventFieldError(f"{where}{name} must be an object or null, got {json_type(value)}")
    return value


def text_field(container: dict[str, Any], name: str, where: str = "") -> str | None:
    """``container[name]`` as text; absent or null: None."""
    value = container.get(name)
    if value is None or isinstance(value, str):
        return value
    raise EventFieldError(f"{where}{name} must be a string or null, got {json_type(value)}")


def flag_field(container: dict[str, Any], name: str) -> bool:
    """``container[name]`` as a boolean; absent or null: False (a string ``"false"`` is not false, so it is refused)."""
    value = container.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise EventFieldError(f"{name} must be a boolean or null, got {json_type(value)}")


def pairs_field(container: dict[str, Any], name: str, *, multi_value: bool) -> list[tuple[str, str]]:
    """Every (name, value) of a header or query map: text values, or (``multi_value``) arrays of text; a null value,
    or a null in an array, is a value not sent. Pairs keep the map's order; a name may repeat (in another case)."""
    pairs: list[tuple[str, str]] = []
    for key, value in object_field(container, name).items():
        if not isinstance(key, str):  # JSON names are text: only a Python caller can get here
            raise EventFieldError(f"{name} has a name that is a {type(key).__name__}, not a string")
        if multi_value and value is not None and not isinstance(value, list):
            raise EventFieldError(f"each value of {name} must be an array of strings or null, got {json_type(value)}")
        for item in value if multi_value and value is not None else [value]:
            if item is None:
                continue
            if not isinstance(item, str):
                raise EventFieldError(f"{name} holds {json_type(item)} where a string or null belongs")
            pairs.append((key, item))
    return pairs


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as the event's author wrote it (Python's for what JSON cannot hold)."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (str, "a string"), (dict, "an object"), (list, "an array")):
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, (int, float)) else f"a {type(value).__name__}"
