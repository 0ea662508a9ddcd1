"""The ``Idempotency-Key`` request header (IETF draft "The Idempotency-Key HTTP Header Field").

The draft defines the value as a Structured Field string (``"8e03978e-..."``); many clients send it bare, as
Stripe documents it. Both are accepted. An sf-string may carry RFC 8941 parameters (``"k1";v=1``): they are
well-formed or the value is a 400, and they are not part of the key (a bare ``k1;v=1`` is that whole text).
The key must be 1-255 printable ASCII characters: anything else is a 400, never silently normalised, so two
clients cannot collide on a key that was changed behind their backs.
A bare key may not contain a comma: HTTP API v2 and Function URL events join a header sent twice with commas, so
``k1,k2`` is two keys, not one; a key that must contain a comma is sent quoted (``"a,b"``).
"""

from __future__ import annotations

import re

from ..keys import MAX_KEY_LENGTH

HEADER = "Idempotency-Key"


_BARE_ITEMS = (  # RFC 9651 bare items: decimal, integer, string, token, byte sequence, boolean, date, display string
    r"-?\d{1,12}\.\d{1,3}",
    r"-?\d{1,15}",
    r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"',
    r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*",
    r":[A-Za-z0-9+/]*=*:",
    r"\?[01]",
    r"@-?\d{1,15}",
    r'%"(?:[\x20\x21\x23\x24\x26-\x5b\x5d-\x7e]|%[0-9a-f]{2})*"',
)
_PARAMETERS = re.compile(rf"(?:;\x20*[a-z*][a-z0-9_\-.*]*(?:=(?:{'|'.join(_BARE_ITEMS)}))?)*")
"""What may follow an sf-string's closing quote: its parameters (RFC 8941 3.1.2), which a key ignores."""


class InvalidIdempotencyKeyError(ValueError):
    """The header is present but its value is not a usable key."""


def parse_idempotency_key(values: tuple[str, ...]) -> str | None:
    """The key the header carries, None when absent; raises `InvalidIdempotencyKeyError` when unusable.

    Values sent more than once are compared as the keys they name, so ``k1``, ``"k1"`` and `` k1 `` are one key
    (the bare and sf-string forms name the same key; RFC 9110 leaves surrounding whitespace out of a value)."""
    if len(values) == 1:  # the usual request: one header, one value
        return _parse_one(values[0])
    keys = {_parse_one(value) for value in dict.fromkeys(values)}
    if len(keys) > 1:
        raise InvalidIdempotencyKeyError(f"{HEADER} was sent more than once with different values")
    return keys.pop() if keys else None


def _parse_one(value: str) -> str:
    raw = value.strip(" \t")
    key = _unquote(raw) if raw.startswith('"') else raw
    if "," in key and not raw.startswith('"'):
        raise InvalidIdempotencyKeyError(
            f"{HEADER} holds more than one key (a header sent twice arrives joined by commas): send one key, "
            'quoted as a structured-field string ("a,b") if it must contain a comma'
        )
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidIdempotencyKeyError(f"{HEADER} must be 1-{MAX_KEY_LENGTH} characters, got {len(key)}")
    bad = next((c for c in key if not " " <= c <= "~"), None)
    if bad is not None:
        raise InvalidIdempotencyKeyError(f"{HEADER} must be printable ASCII; found {bad!r}")
    return key


def _unquote(raw: str) -> str:
    """An RFC 8941 sf-string: only ``\\"`` and ``\\\\`` may be escaped, and the closing quote ends the value."""
    chars: list[str] = []
    index = 1
    while index < len(raw):
        if len(chars) > MAX_KEY_LENGTH:  # too long whatever follows (parameters may be long): read no further
            raise InvalidIdempotencyKeyError(f"{HEADER} must be 1-{MAX_KEY_LENGTH} characters, got more")
        char = raw[index]
        if char == "\\":
            if index + 1 >= len(raw) or raw[index + 1] not in '"\\':
                raise InvalidIdempotencyKeyError(f"{HEADER} is a malformed quoted string (bad escape)")
            chars.append(raw[index + 1])
            index += 2
            continue
        if char == '"':
            rest = raw[index + 1 :]
            if rest.lstrip(" ").startswith(","):
                raise InvalidIdempotencyKeyError(
                    f"{HEADER} holds more than one key (a header sent twice arrives joined by commas): send one key"
                )
            if not _PARAMETERS.fullmatch(rest):
                raise InvalidIdempotencyKeyError(f"{HEADER} has text after its closing quote that is not parameters")
            return "".join(chars)
        chars.append(char)
        index += 1
    raise InvalidIdempotencyKeyError(f"{HEADER} is a quoted string without its closing quote")
