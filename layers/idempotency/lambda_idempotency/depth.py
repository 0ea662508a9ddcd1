"""How deeply JSON may nest: a bound checked before anything recurses (DESIGN.md, "Limits that are part of the
contract").

Python's json module, and every walk over a decoded value, recurse once per level of nesting: a body of 100,000
``[`` would raise `RecursionError` from inside the library (behind API Gateway, an unhandled 500 on every retry).
JSON text is measured before it is parsed, by a flat scan; deeper text raises `InputTooDeepError`. Results are
measured on the JSON they are stored as; a value too deep for the encoder itself raises the same error.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InputTooDeepError

MAX_JSON_DEPTH = 128
"""Levels of arrays and objects that JSON text (a body, a stored result) may nest; as much as serde_json allows by
default, far beyond real documents, and far below Python's recursion limit (1,000 frames, shared with the caller)."""

_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
"""Strings (whose brackets do not count) and brackets; everything else is skipped."""


def check_depth(text: str | bytes) -> None:
    """Raise `InputTooDeepError` when the JSON ``text`` nests deeper than `MAX_JSON_DEPTH`, without recursing.

    Text that opens fewer brackets than the limit cannot nest deeper: two counts at C speed settle it for almost
    every document, and only the rest is scanned. Bytes are decoded as ``json.loads`` decodes them (UTF-8, -16 or
    -32; bytes that are none of them raise ValueError, as ``json.loads`` would).
    """
    if isinstance(text, bytes):
        if text.count(b"[") + text.count(b"{") <= MAX_JSON_DEPTH:  # in any of the encodings: a bound all the same
            return
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    level = 0
    for token in _TOKENS.findall(text):
        if token in "[{":
            level += 1
            if level > MAX_JSON_DEPTH:
                raise InputTooDeepError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
        elif token in "]}":
            level -= 1


def loads(text: str | bytes) -> Any:
    """``json.loads``, refusing text that nests deeper than `MAX_JSON_DEPTH` before the parser recurses into it."""
    check_depth(text)
    return json.loads(text)


def too_deep_to_encode() -> InputTooDeepError:
    """The error for a value whose encoding raised `RecursionError` (callers catch it themselves: a wrapper would cost
    a function call on every call of a decorated function)."""
    return InputTooDeepError("the value nests too deeply to be encoded as JSON")
