"""Text from the table, made safe for an operator's terminal (the CLI's only way of showing stored text).

Keys and scopes are chosen by callers: any HTTP client sends an ``Idempotency-Key``, a queue message's field becomes
a key. Printed as they are, an ESC sequence reaches the terminal (it can move the cursor, rewrite what was shown, set
the window title), and a carriage return or a right-to-left override hides what is really stored. `shown` writes
every character that is not printable, and the backslash, as a Python escape (``\\x1b``, ``\\u202e``, ``\\\\``), so
what the operator sees stands for one stored text only. Markup is the console's business: the CLI's consoles
parse none.
"""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table
from rich.text import Text

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str) -> str:
    """``text`` with every non-printable character (controls, format characters such as bidi overrides, separators
    other than the space, lone surrogates) and the backslash written as an escape."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(char if char.isprintable() and char != "\\" else _escape(char) for char in text)


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(value: Any) -> Text:
    """A value as rich text for a table cell or a message: `visible`, never parsed as markup; None is empty, and a
    list (saved step names) is one item a line, each `visible` (a list's repr would escape its items twice)."""
    if isinstance(value, list):
        return Text("\n".join(visible(str(item)) for item in value))
    return Text("" if value is None else visible(str(value)))


def folding(table: Table, *headers: str) -> Table:
    """``table`` with one column per header that folds a long value over lines instead of cutting it (`…`): a hash
    or record id shown is one an operator can copy, whatever the terminal's width."""
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def json_text(data: Any) -> str:
    """``data`` as indented JSON that parses to the stored text unchanged and is safe on a terminal: JSON escapes only
    controls below 0x20, so every other character `visible` would escape (a C1 control, a bidi override) is written
    as JSON's ``\\u`` escape too; printable text, ``注文`` say, stays as it is."""
    text = json.dumps(data, default=str, indent=2, ensure_ascii=False)
    return "".join(char if char.isprintable() or char == "\n" else json.dumps(char)[1:-1] for char in text)
