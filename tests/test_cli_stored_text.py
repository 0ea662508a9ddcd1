"""Stored keys and scopes are caller-chosen text: the CLI shows them escaped, on moto's server over HTTP (issue 11, 12).

Any HTTP client picks its ``Idempotency-Key``, and a queue message's field becomes a key. Generated keys and scopes
(rich markup, fake links, ESC and other control sequences, bidi overrides, backslashes) go through `list`, `show`
and the `delete` prompt: each command works, shows the text with its control characters visible, and writes no
control character to the terminal; ``--json`` gives the stored text unchanged.
"""

from __future__ import annotations

import io
import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lambda_idempotency import DynamoDBStore, create_table, current, idempotent_function
from lambda_idempotency.cli import main
from lambda_idempotency.keys import record_id
from lambda_idempotency.terminal import visible

HOSTILE = [
    "[/oops]",
    "[link=https://evil.example]support[/link]",
    "[bold red]PAID[/]",
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",  # an OSC 8 hyperlink
    "\x1b[2J\x1b[Hall good",  # clear the screen, cursor home
    "\x1b]0;title\x07",
    "abc\rXYZ",
    "\u202eevil\u202c",  # right-to-left override
    "\x9b31m",  # C1 control sequence introducer
    ":warning: x",
    "back\\slash",
]
pieces = st.sampled_from(HOSTILE) | st.text(
    st.characters(blacklist_categories=["Cs"]) | st.sampled_from(list("[]/\\=:\x1b\x07\x9b\r\n\t\u202e")),
    min_size=1,
    max_size=12,
)
stored_texts = st.lists(pieces, min_size=1, max_size=4).map("".join).filter(lambda text: len(text) <= 255)


class Table:
    """A table on moto's server and the CLI run against it, its output captured as an operator's terminal gets it."""

    def __init__(self, endpoint: str, client: Any) -> None:
        self.endpoint = endpoint
        self.name = f"cli-{uuid.uuid4().hex[:12]}"
        self.store = DynamoDBStore(self.name, client=client)
        create_table(self.store)

    def run(self, command: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        # Wide enough that no cell wraps: the test looks for each text whole.
        where = ["--table", self.name, "--endpoint-url", self.endpoint, "--region", "us-east-1"]
        with (
            mock.patch.dict(os.environ, {"COLUMNS": "4000"}),
            mock.patch.object(sys, "stdin", io.StringIO(stdin)),
            redirect_stdout(out),
            redirect_stderr(err),
        ):
            code = main([command, *where, *args])
        return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def table(moto_endpoint: str, moto_server_client: Any) -> Iterator[Table]:
    yield Table(moto_endpoint, moto_server_client)


def assert_terminal_safe(text: str) -> None:
    """Only printable characters and line ends reach the terminal."""
    unsafe = sorted({char for char in text if not char.isprintable() and char != "\n"})
    assert unsafe == [], f"control characters reached the terminal: {unsafe!r}"


@given(key=stored_texts, scope=st.none() | stored_texts)
@example(key="[/oops]", scope="[/oops]")
@example(key="\x1b[2J\x1b[Hall good", scope=None)
@example(key="-17", scope="-tenant")
@settings(max_examples=12)  # each case runs the CLI five times, a new boto3 client each time
def test_stored_keys_and_scopes_are_shown_escaped_and_json_keeps_them(
    table: Table, key: str, scope: str | None
) -> None:
    operation = f"op-{uuid.uuid4().hex[:8]}"

    @idempotent_function(table.store, key="k", scope=(lambda k: scope) if scope else None, operation=operation)
    def work(k: str) -> str:
        return k

    work(key)
    for_key = ["--operation", operation, *([f"--scope={scope}"] if scope else []), "--", key]  # texts may start with -

    code, out, err = table.run("list", "--operation", operation)
    assert code == 0, err
    assert_terminal_safe(out + err)
    assert visible(key) in out
    assert scope is None or visible(scope) in out

    code, out, err = table.run("show", *for_key)
    assert code == 0, err
    assert_terminal_safe(out + err)
    assert visible(key) in out

    code, out, err = table.run("delete", *for_key, stdin="n\n")
    assert code == 1, err
    assert_terminal_safe(out + err)
    assert f"record of key '{visible(key)}' in {operation}" in err
    assert "not deleted" in out
    assert table.store.get(record_id(operation, scope, key)) is not None

    code, out, err = table.run("list", "--json", "--operation", operation)
    assert code == 0, err
    assert [(row["key"], row["scope"]) for row in json.loads(out)] == [(key, scope)]  # the stored text, unchanged
    code, out, err = table.run("show", "--json", *for_key)
    assert code == 0, err
    assert (json.loads(out)["key"], json.loads(json.loads(out)["result"])) == (key, key)


def test_visible_escapes_what_a_terminal_would_act_on_and_nothing_else() -> None:
    assert visible("order-17 ünïcødé 注文 ✓") == "order-17 ünïcødé 注文 ✓"
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("\r\n\t\x00\x7f\x9b") == "\\r\\n\\t\\x00\\x7f\\x9b"
    assert visible("\u202e\u200b\u2028\xa0") == "\\u202e\\u200b\\u2028\\xa0"
    assert visible("a\\x1b") == "a\\\\x1b"  # a typed backslash is not mistaken for an escape


def test_saved_step_names_are_shown_escaped_as_keys_are(table: Table) -> None:
    """Step names are the function's own text, often built from the event. `show` printed the list's repr made
    visible: an ESC came out as `\\\\x1b`, which `visible` writes for a stored backslash, so the names shown stood
    for other text. Each name is shown as `visible` writes it, one a line."""
    operation = f"op-{uuid.uuid4().hex[:8]}"
    names = ["\x1b]0;title\x07ship", "back\\slash", "a, b"]

    @idempotent_function(table.store, key="k", operation=operation, local_cache=False)
    def work(k: str) -> None:
        for name in names:
            current().step(name, lambda: 1)
        raise RuntimeError("crash after the steps")

    with pytest.raises(RuntimeError):
        work("k")
    code, out, err = table.run("show", "--operation", operation, "k")
    assert code == 0, err
    assert_terminal_safe(out + err)
    (line,) = [line for line in out.splitlines() if line.lstrip().startswith("steps")]
    at = line.index(visible(sorted(names)[0]))
    shown = [row[at:].rstrip() for row in out.splitlines()[out.splitlines().index(line) :]][: len(names)]
    assert shown == [visible(name) for name in sorted(names)]
    code, out, err = table.run("show", "--json", "--operation", operation, "k")
    assert json.loads(out)["steps"] == sorted(names)  # the stored text, unchanged


@pytest.mark.parametrize("command", ["list", "show"])
def test_json_output_escapes_what_a_terminal_would_act_on_and_parses_to_the_stored_text(
    table: Table, command: str
) -> None:
    """`--json` wrote a C1 control (`\\x9b`, a CSI to many terminals), a bidi override and other format characters
    raw: json escapes only controls below 0x20. They are written as JSON's `\\u` escapes now, so the output parses
    to the stored text unchanged and nothing in it acts on a terminal; printable text (`注文`) stays as it is."""
    operation = f"op-{uuid.uuid4().hex[:8]}"
    key = "\x9b31m注文\u202eevil\u202c\U000e0001\x1b[2J"

    @idempotent_function(table.store, key="k", operation=operation, local_cache=False)
    def work(k: str) -> str:
        return k

    work(key)
    args = ["--operation", operation] + (["--", key] if command == "show" else [])
    code, out, err = table.run(command, "--json", *args)
    assert code == 0, err
    assert_terminal_safe(out)
    assert "注文" in out
    found = json.loads(out)
    assert (found["key"] if command == "show" else found[0]["key"]) == key
