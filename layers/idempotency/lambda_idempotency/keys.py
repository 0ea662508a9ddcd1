"""From a caller's key to the record's id, and from a payload to its fingerprint.

The raw key is never the item key: it is hashed with its scope, so its length and characters cannot break the
table and one scope can never address another scope's record (DESIGN.md, "The record").
"""

from __future__ import annotations

import hashlib
import math
from json.encoder import encode_basestring_ascii
from typing import Any

from . import depth
from .codec import compact_json
from .errors import IdempotencyError, InvalidKeyError, MissingKeyError, MissingScopeError

MAX_KEY_LENGTH = 255
MAX_SCOPE_LENGTH = 1024
"""Scopes up to this length are stored as given; longer ones are stored as their digest (see `normalise_scope`)."""
SCOPE_DIGEST_PREFIX = "sha256:"
MAX_OPERATION_LENGTH = 1024
"""An operation takes at most this many characters and as many bytes of UTF-8: the record id (the operation, ``#``
and 64 hex digits) stays well under DynamoDB's 2,048-byte partition key."""


def normalise_key(value: Any) -> str:
    """The key as the string that is stored and hashed; raises `InvalidKeyError` for unusable keys.

    Containers become canonical JSON (so key order does not matter); anything else goes through ``str()``. A
    container of nothing but nulls (``[user_id, order_id]`` read from an event that has neither), or an empty one, is
    `MissingKeyError`: as one key, it would give every such call the first one's result.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidKeyError(f"idempotency key must be a finite number, got {value!r}")
    else:
        if _all_null(value) or (isinstance(value, (dict, list, tuple)) and not value):
            raise MissingKeyError(f"every field of the idempotency key is missing ({'all null' if value else 'empty'})")
        try:
            text = canonical_json(value) if isinstance(value, (dict, list, tuple)) else stable_text(value)
        except IdempotencyError:  # nested too deeply: InputTooDeepError
            raise
        except Exception as exc:  # an int past 4,300 digits, a __str__ that raises: the caller's value, typed
            raise InvalidKeyError(f"the idempotency key cannot be written as text ({type(exc).__name__})") from exc
    _check_text("idempotency key", text, MAX_KEY_LENGTH)
    return text


def _all_null(value: Any) -> bool:
    """A multi-field key or scope (a list, tuple or dict) whose every field is null: read from an input that has
    none of them. As one value, it would make every such call share one record."""
    if isinstance(value, dict):
        return bool(value) and all(v is None for v in value.values())
    return isinstance(value, (list, tuple)) and bool(value) and all(v is None for v in value)


def normalise_scope(value: Any) -> str | None:
    """The scope (a tenant, a caller) as stored, or None for an unscoped key; raises `MissingScopeError` if empty.

    Any other value is usable, because a scope is whatever an authorizer produced (a 2 KB token as ``principalId``,
    text with lone surrogates): one that is longer than `MAX_SCOPE_LENGTH`, is not valid Unicode, or starts with
    `SCOPE_DIGEST_PREFIX` is stored as ``sha256:<hex>`` of its bytes instead. That keeps records bounded and
    stays one-to-one: a scope written literally can never equal the digest of another.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes, dict, list, tuple, set, frozenset)) and not value:
        raise MissingScopeError("the idempotency scope is empty; a scoped call needs a scope")
    if type(value) is not str and _all_null(value):  # scope="[tenant, user]" without either: no scope
        raise MissingScopeError("every field of the idempotency scope is missing (null); a scoped call needs a scope")
    try:
        text = value if isinstance(value, str) else stable_text(value)
    except InvalidKeyError as exc:  # known only by its address: no retry repeats it, so every call would be alone
        raise MissingScopeError(f"the idempotency scope is unusable: {exc}") from None
    except Exception as exc:  # an int past 4,300 digits, a list too deep to repr, a __str__ that raises
        raise MissingScopeError(f"the idempotency scope cannot be written as text ({type(exc).__name__})") from exc
    if len(text) <= MAX_SCOPE_LENGTH and not text.startswith(SCOPE_DIGEST_PREFIX) and _is_unicode(text):
        return text
    return SCOPE_DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def check_operation(operation: str) -> str:
    """Operations prefix record ids: non-empty text of at most `MAX_OPERATION_LENGTH` bytes of UTF-8, so that every
    record id fits a DynamoDB key (`InvalidKeyError` otherwise, when the function is decorated). Past 2,048 bytes
    DynamoDB refused every call, which the store took for an outage (and ``fail_open`` ran it unguarded)."""
    if not isinstance(operation, str):
        raise TypeError(f"operation must be a str, got {type(operation).__name__}")
    _check_text("operation", operation, MAX_OPERATION_LENGTH)
    if not operation.isascii() and len(size := operation.encode("utf-8")) > MAX_OPERATION_LENGTH:
        raise InvalidKeyError(f"operation must take at most {MAX_OPERATION_LENGTH} bytes of UTF-8, got {len(size)}")
    return operation


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(what: str, text: str, limit: int) -> None:
    if not 1 <= len(text) <= limit:
        raise InvalidKeyError(f"{what} must be 1-{limit} characters, got {len(text)}")
    if text.isascii():  # nothing to encode: ASCII holds no lone surrogate
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"{what} is not valid Unicode text (lone surrogate at {exc.start})") from None


def record_id(operation: str, scope: str | None, key: str) -> str:
    """``{operation}#{sha256 of [scope, key]}``: fixed length, any charset, scopes kept apart.

    The hashed text is ``json.dumps([scope, key])``, written out directly (the same bytes, a third of the CPU).
    """
    scope_json = "null" if scope is None else encode_basestring_ascii(scope)
    digest = hashlib.sha256(f"[{scope_json}, {encode_basestring_ascii(key)}]".encode()).hexdigest()
    return f"{operation}#{digest}"


def fingerprint_of(payload: Any) -> str:
    """A stable hash of a payload: whitespace and key order do not count. A payload that cannot be written as JSON
    text (an int past 4,300 digits) is `InvalidKeyError`: the key's call cannot be checked against it."""
    try:
        text = canonical_json(payload)
    except ValueError as exc:
        raise InvalidKeyError(f"the payload to fingerprint cannot be written as JSON text ({exc})") from None
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces; sets sorted; other values JSON lacks are written as their text.

    Dicts whose keys JSON cannot order or write (``{1: .., "a": ..}``, tuple keys) become sorted [key, value] pairs.
    A value too deep to encode raises `InputTooDeepError`; any depth the encoder manages is hashed as it is.
    """
    try:
        try:
            return _canonical(value)
        except TypeError:
            return _canonical(_with_text_keys(value))
    except RecursionError:
        raise depth.too_deep_to_encode() from None


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):  # str() of a set follows the process's hash seed: sort instead
        return sorted(value, key=canonical_json)
    return stable_text(value)


def stable_text(value: Any) -> str:
    """``str(value)``; `InvalidKeyError` for an object whose only text is its memory address (no ``__str__`` nor
    ``__repr__`` of its own): it differs from one instance and one process to another, so a key made of it would
    never repeat and a fingerprint holding it (a method's ``self``) would never match a retry."""
    kind: Any = type(value)
    if kind.__str__ is object.__str__ and kind.__repr__ is object.__repr__:
        raise InvalidKeyError(
            f"a {kind.__qualname__} has no text but its memory address, which no retry repeats: select one of its "
            "fields, or give it a __str__"
        )
    return str(value)


def _with_text_keys(value: Any) -> Any:
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _with_text_keys(v) for k, v in value.items()}
        return sorted(([canonical_json(k), _with_text_keys(v)] for k, v in value.items()), key=lambda kv: kv[0])
    if isinstance(value, (list, tuple)):
        return [_with_text_keys(v) for v in value]
    return value


_canonical = compact_json(sort_keys=True, ensure_ascii=True, default=_json_default)
