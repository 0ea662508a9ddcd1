"""Turning a function's return value into stored text and back into the same Python value.

A replay must return what the first call returned, falsy values included. Plain JSON loses `Decimal`, `datetime`,
`bytes`, tuples and sets, so those are written as tagged objects ``{"$li": "<type>", "v": ...}``; a user's own dict
that happens to contain the tag key is itself wrapped, so decoding is never ambiguous. Dataclasses and pydantic
models are written as their fields and rebuilt from the function's return annotation.

Users with other needs pass their own `Serializer` (the ``serializer=`` option of the decorators).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Protocol

from . import depth

TAG = "$li"


class Serializer(Protocol):
    """What a stored result goes through; `dumps` may raise TypeError/ValueError for unsupported values
    (the default one `InputTooDeepError` for values nested too deeply)."""

    def dumps(self, value: Any) -> str: ...

    def loads(self, text: str) -> Any: ...


class TaggedJsonSerializer:
    """The default serializer: JSON plus tags for the common non-JSON types (see module docstring)."""

    def __init__(self, return_type: Callable[[], Any] | None = None) -> None:
        self._return_type = return_type
        self._resolved: Any = None
        self._is_resolved = return_type is None

    def dumps(self, value: Any) -> str:
        """The stored JSON; `InputTooDeepError` past `depth.MAX_JSON_DEPTH` levels (tags included), so every stored
        result can be loaded again.

        A plain value (`_is_plain`, which also bounds its depth) is encoded as it is, with no copy and no scan of
        its text: that is almost every result."""
        try:
            if _is_plain(value, depth.MAX_JSON_DEPTH):
                text = _compact(value)
                return text if text.isascii() or _is_utf8(text) else _ascii(value)
            data = _encode(value)
            text = _compact(data)
            if not text.isascii() and not _is_utf8(text):
                text = _ascii(data)  # lone surrogates: only JSON's \u escapes can carry them into UTF-8
        except RecursionError:
            raise depth.too_deep_to_encode() from None
        depth.check_depth(text)
        return text

    def loads(self, text: str) -> Any:
        value = parse_json(text)
        if TAG in text:  # a tag is always written as this literal key; without one there is nothing to decode
            value = _decode(value)
        if not self._is_resolved:
            self._resolved = self._return_type() if self._return_type else None
            self._is_resolved = True
        return _rebuild(self._resolved, value) if self._resolved is not None else value


def compact_json(
    *, sort_keys: bool = False, ensure_ascii: bool = False, default: Callable[[Any], Any] | None = None
) -> Callable[[Any], str]:
    """What ``json.JSONEncoder(separators=(",", ":"), ...).encode`` does, with the encoder built once.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which costs as much as encoding a small document;
    each call of a decorated function encodes twice (fingerprint, result). The C encoder is built here once and
    keeps no state between calls (no circular-reference bookkeeping, which could not be shared between threads:
    a circular value raises RecursionError instead of ValueError). Where CPython's C encoder is missing, the
    pure-Python one is used as is.
    """
    options = json.JSONEncoder(
        separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=default, check_circular=False
    )
    if c_make_encoder is None:
        return options.encode
    text = encode_basestring_ascii if ensure_ascii else encode_basestring
    encoder = c_make_encoder(None, options.default, text, None, ":", ",", sort_keys, False, True)

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


_compact = compact_json()
_ascii = compact_json(ensure_ascii=True)


def parse_json(text: str | bytes | bytearray) -> Any:
    """What ``json.loads(text)`` returns or raises, a third faster for a document with nothing around it.

    ``json.loads`` checks the type, looks for a byte order mark and runs two whitespace regexes around the C
    scanner, which together cost as much as scanning a small document; each call of a decorated function parses
    twice (its body for the key, a stored result on a replay). A string the scanner reads to its very end is
    returned as is; anything else (whitespace around it, bytes, an error) goes through ``json.loads``.
    """
    if type(text) is str:
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end == len(text):
            return value
    return json.loads(text)


_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, absent from the stubs


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def return_annotation(fn: Callable[..., Any]) -> Callable[[], Any]:
    """A lazy lookup of ``fn``'s return annotation (evaluated at first replay, not at import)."""

    def resolve() -> Any:
        try:
            return typing.get_type_hints(fn).get("return")
        except Exception:
            return None

    return resolve


def _datetime(value: datetime.datetime) -> dict[str, Any]:
    """An aware datetime in a named zone (`zoneinfo.ZoneInfo`) keeps the zone's name beside its ISO text, so its
    replay is in that zone, not at the fixed offset the text carries (which would be wrong across a DST change)."""
    zone = value.tzinfo
    if zone is not None and type(zone) is not datetime.timezone:
        from zoneinfo import ZoneInfo

        if isinstance(zone, ZoneInfo) and zone.key:
            return {TAG: "zoned", "v": [value.isoformat(), zone.key]}
    return _wall_time("datetime", value)


def _time(value: datetime.time) -> dict[str, Any]:
    """A time at a fixed offset, or none. One in a zone with rules (`ZoneInfo`) has no offset without a date, so its
    ISO text would drop the zone: it is not stored, rather than replayed as a different value."""
    if value.tzinfo is not None and type(value.tzinfo) is not datetime.timezone:
        raise TypeError(
            f"a time in the zone {value.tzinfo} cannot be stored (without a date it has no offset); "
            "return a datetime, or pass serializer= to store it"
        )
    return _wall_time("time", value)


def _wall_time(tag: str, value: datetime.datetime | datetime.time) -> dict[str, Any]:
    """ISO text, with the fold beside it when it is 1 (the second of a repeated wall time), which ISO text drops."""
    text = value.isoformat()
    return {TAG: tag, "v": [text, value.fold] if value.fold else text}


def _parsed_wall_time(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def read(value: str | list[Any]) -> Any:
        if isinstance(value, list):
            return parse(value[0]).replace(fold=value[1])
        return parse(value)

    return read


def _zoned(value: list[str]) -> datetime.datetime:
    """The instant the text gives, in the zone it was made in: `astimezone` sets the wall time and `fold` the zone
    gives it. Where that zone is unknown (no tz database), the fixed offset the text carries."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    at = datetime.datetime.fromisoformat(value[0])
    try:
        return at.astimezone(ZoneInfo(value[1]))
    except ZoneInfoNotFoundError:
        return at


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    Decimal: lambda v: {TAG: "decimal", "v": str(v)},
    datetime.datetime: _datetime,
    datetime.date: lambda v: {TAG: "date", "v": v.isoformat()},
    datetime.time: _time,
    datetime.timedelta: lambda v: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    bytes: lambda v: {TAG: "bytes", "v": base64.b64encode(v).decode()},
    bytearray: lambda v: {TAG: "bytearray", "v": base64.b64encode(v).decode()},
    uuid.UUID: lambda v: {TAG: "uuid", "v": str(v)},
    tuple: lambda v: {TAG: "tuple", "v": [_encode(x) for x in v]},
    set: lambda v: {TAG: "set", "v": _members(v, "set")},
    frozenset: lambda v: {TAG: "frozenset", "v": _members(v, "frozenset")},
}


def _members(values: Any, kind: str) -> list[Any]:
    """The encoded members of a set (or keys of a dict); ``TypeError`` (the result is not stored) when one would be
    read back as something unhashable, a dict or a list (a frozen dataclass, a model): the replay could not rebuild
    the set."""
    encoded = [_encode(x) for x in values]
    for value, member in zip(values, encoded, strict=True):
        try:
            hash(_decode(member))
        except TypeError:
            raise TypeError(
                f"a {kind} of {type(value).__qualname__} cannot be stored (its members would be read back as "
                "dicts or lists); pass serializer= to store it"
            ) from None
    return encoded


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "decimal": Decimal,
    "datetime": _parsed_wall_time(datetime.datetime.fromisoformat),
    "zoned": _zoned,
    "date": datetime.date.fromisoformat,
    "time": _parsed_wall_time(datetime.time.fromisoformat),
    "timedelta": lambda v: datetime.timedelta(*v),
    "bytes": base64.b64decode,
    "bytearray": lambda v: bytearray(base64.b64decode(v)),
    "uuid": uuid.UUID,
    "tuple": lambda v: tuple(_decode(x) for x in v),
    "set": lambda v: {_decode(x) for x in v},
    "frozenset": lambda v: frozenset(_decode(x) for x in v),
    "dict": lambda v: {_decode(k): _decode(x) for k, x in v},
}


def _is_plain(value: Any, levels: int) -> bool:
    """True when ``value`` is JSON that `_encode` would return unchanged, and nests at most ``levels`` deep, so it
    can skip the copy and the depth scan of its text.

    Exact types only: subclasses (enums, named tuples) and every tagged type take the full path. Loops rather
    than ``all()`` over generators, and scalars checked before recursing: this runs on every stored result.
    """
    kind = type(value)
    if kind in _SCALARS:
        return True
    if not levels:
        return False
    if kind is dict:
        if TAG in value:
            return False
        for key, item in value.items():
            if type(key) is not str or (type(item) not in _SCALARS and not _is_plain(item, levels - 1)):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110 - a loop: all() over a generator costs a frame per item
            if type(item) not in _SCALARS and not _is_plain(item, levels - 1):
                return False
        return True
    return False


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _encode(value: Any) -> Any:
    if value is None or (isinstance(value, (str, bool, int, float)) and not isinstance(value, enum.Enum)):
        return value
    kind = type(value)
    if kind is list:
        return [_encode(x) for x in value]
    if kind is dict:
        if TAG in value or not all(type(k) is str for k in value):
            keys = _members(value, "dict keyed by")
            return {TAG: "dict", "v": [[k, _encode(x)] for k, x in zip(keys, value.values(), strict=True)]}
        return {k: _encode(x) for k, x in value.items()}
    encoder = _ENCODERS.get(kind)
    if encoder is not None:
        return encoder(value)
    if isinstance(value, enum.Enum):
        return _encode(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = _encode({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        return {**_extras(value, fields), **fields}
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic v2: the form its validation reads back (no computed fields)
        return _encode(dump(round_trip=True) if hasattr(type(value), "__pydantic_serializer__") else dump())
    for base, encoder in _ENCODERS.items():
        if isinstance(value, base):
            return encoder(value)
    if isinstance(value, (list, dict)):
        return _encode(list(value) if isinstance(value, list) else dict(value))
    raise TypeError(f"a result of type {kind.__qualname__} cannot be stored; pass serializer= to store it")


def _decode(data: Any) -> Any:
    if isinstance(data, list):
        return [_decode(x) for x in data]
    if isinstance(data, dict):
        tag = data.get(TAG)
        if tag is not None and len(data) == 2:
            return _DECODERS[tag](data["v"])
        return {k: _decode(x) for k, x in data.items()}
    return data


def _rebuild(annotation: Any, value: Any) -> Any:
    """Rebuild dataclasses, pydantic models and enums that ``annotation`` names, through containers."""
    if value is None or annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and args and isinstance(value, list):
        return [_rebuild(args[0], x) for x in value]
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        if args[0] in _SCALARS or args[0] is Any:
            return {k: _rebuild(args[1], x) for k, x in value.items()}
        return {_rebuild(args[0], k): _rebuild(args[1], x) for k, x in value.items()}  # enum keys
    if origin is tuple and args and isinstance(value, tuple):
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]
            return tuple(_rebuild(args[0], x) for x in value)
        if len(args) == len(value):  # tuple[A, B]
            return tuple(_rebuild(a, x) for a, x in zip(args, value, strict=True))
        return value
    if origin in (set, frozenset) and args and isinstance(value, (set, frozenset)):
        return origin(_rebuild(args[0], x) for x in value)
    if origin in (typing.Union, _UNION_TYPE):
        members = [a for a in args if a is not type(None)]
        return _rebuild(members[0], value) if len(members) == 1 else value
    if not isinstance(annotation, type):
        return value
    if dataclasses.is_dataclass(annotation) and isinstance(value, dict):
        return _dataclass(annotation, value)
    validate = getattr(annotation, "model_validate", None)
    if callable(validate) and isinstance(value, dict):
        if hasattr(annotation, "__pydantic_serializer__"):  # stored by field name, whatever its aliases
            try:
                return validate(value, by_name=True)
            except TypeError:  # pydantic before 2.11: no by_name
                pass
        return validate(value)
    if issubclass(annotation, tuple) and hasattr(annotation, "_fields") and isinstance(value, tuple):
        hints = typing.get_type_hints(annotation)  # a named tuple
        return annotation(*(_rebuild(hints.get(f, Any), x) for f, x in zip(annotation._fields, value, strict=False)))
    if issubclass(annotation, enum.Enum):
        return annotation(value)
    return value


def _extras(value: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """What ``__post_init__`` set on a dataclass besides its fields, encoded, to be set back on replay as pickle keeps
    it: public attributes only (not private state, a lock, a client), each only if it can be stored by itself."""
    extras: dict[str, Any] = {}
    for name, extra in getattr(value, "__dict__", {}).items():
        if name in fields or name.startswith("_"):
            continue
        try:
            extras[name] = _encode(extra)
        except (TypeError, ValueError):  # not storable: left out, as a replay without it beats no replay at all
            continue
    return extras


def _dataclass(cls: type, value: dict[str, Any]) -> Any:
    """The dataclass instance that was stored, rebuilt as pickle rebuilds one: its fields, and the attributes
    ``__post_init__`` set besides, set on a new instance without running ``__init__`` and ``__post_init__`` again
    (which may change them, or need an ``InitVar`` that was never stored). A record missing a field (the class
    changed since) goes through ``__init__`` with its fields, which fills defaults or raises."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    stored = {k: _rebuild(hints.get(k, Any), x) for k, x in value.items()}
    if not all(name in stored for name in names):
        return cls(**{k: x for k, x in stored.items() if k in names})
    instance: Any = object.__new__(cls)
    for name, x in stored.items():
        object.__setattr__(instance, name, x)  # frozen ones too
    return instance


_UNION_TYPE = type(int | None)
