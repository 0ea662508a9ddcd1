"""What the CLI's views promise an operator (docs/operations.md): errors one line each, no stored value cut short
in a table, and an in-progress record's lease told as held, lapsed or released."""

from __future__ import annotations

import io
import sys
import time
from typing import Any

import pytest
from lambda_idempotency import current, idempotent_function
from lambda_idempotency.http import idempotent_http

from .http_events import http_event
from .test_cli import Table


@pytest.fixture
def table(moto_endpoint: str, moto_server_client: Any, capsys: pytest.CaptureFixture[str]) -> Table:
    return Table(moto_endpoint, moto_server_client, capsys).create()


def _column(out: str, index: int) -> str:
    """The text of one column of a boxed rich table, its folded lines joined."""
    cells = (line.split("│") for line in out.splitlines() if line.startswith("│"))
    return "".join(parts[index + 1].strip() for parts in cells)


def test_an_error_is_one_line_however_long(table: Table) -> None:
    """Errors are one line each: at 80 columns (stderr not a terminal) rich wrapped a long one over two."""
    code, _, err = table.run("show", "order-17", "--operation", "charge", "--scope", "tenant-" + "a" * 90)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: no record for key 'order-17'"), err


def test_a_missing_table_is_answered_with_the_command_that_creates_it_there(
    moto_endpoint: str, moto_server_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint was `create-table --table T` alone: after `list --endpoint-url ... --region ...`, it made the table
    in the default region of AWS, not where the operator was looking."""
    table = Table(moto_endpoint, moto_server_client, capsys)  # never created
    code, _, err = table.run("list")
    assert code == 2
    command = f"lambda-idempotency create-table --table {table.name} --endpoint-url {moto_endpoint} --region us-east-1"
    assert f"(create it with `{command}`)" in err, err


def test_tables_fold_long_values_instead_of_cutting_them(table: Table) -> None:
    """A hashed scope, listed so the operator can pass it to --scope, and a record id were cut to `blake2b:d61e…`
    at 80 columns: nothing to copy. Each is shown whole, folded over lines."""
    api = idempotent_http(table.store, operation="payments.create", local_cache=False)(
        lambda event, context: {"statusCode": 201, "body": "{}"}
    )
    assert api(http_event("http_api", key="key-of-alice", principal="alice"), None)["statusCode"] == 201
    (stored,) = table.json("list")
    assert stored["scope"].startswith("blake2b:") and len(stored["scope"]) > 40
    code, out, _ = table.run("show", "key-of-alice", "--operation", "payments.create")
    assert code == 1
    assert stored["scope"] in _column(out, 0)
    code, out, _ = table.run("list")
    assert code == 0
    assert stored["scope"] in _column(out, 2) and stored["key"] in _column(out, 1)
    code, out, _ = table.run("show", "key-of-alice", "--operation", "payments.create", "--scope", stored["scope"])
    assert code == 0
    assert stored["record_id"] in "".join(out.split())


def test_an_in_progress_record_says_whether_its_lease_is_held_lapsed_or_released(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`list --status IN_PROGRESS` finds stuck executions: a live execution and a crashed one (lease lapsed, the
    next call takes over) looked the same, and a released record (lease 0, steps saved) showed no lease at all."""
    table.in_progress("charge", "live")
    table.in_progress("charge", "lapsed")
    table.store.client.update_item(
        TableName=table.name,
        Key={"pk": {"S": _rid("charge", "lapsed")}},
        UpdateExpression="SET lease_expires_at = :t",
        ExpressionAttributeValues={":t": {"N": str(int(time.time() * 1000) - 1000)}},
    )

    @idempotent_function(table.store, key="key", operation="charge", local_cache=False)
    def crashes_after_a_step(key: str) -> None:
        current().step("reserve", lambda: 1)
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        crashes_after_a_step("released")
    table.completed("charge", "done", 1)

    leases = {row["key"]: row["lease"] for row in table.json("list")}
    assert leases["live"].startswith("held until ")
    assert leases["lapsed"].startswith("lapsed at ") and "the next call takes it over" in leases["lapsed"]
    assert leases["released"].startswith("released: the next call runs it again")  # a scan reads no steps
    assert leases["done"] is None
    shown = table.json("show", "released", "--operation", "charge")
    assert shown["lease"] == "released: the next call runs it again, resuming 1 saved step"
    assert shown["lease_expires_at"] == "1970-01-01T00:00:00+00:00"
    monkeypatch.setenv("COLUMNS", "200")  # one line a row
    code, out, _ = table.run("list", "--status", "IN_PROGRESS")
    assert code == 0
    rows = {line.split("│")[2].strip(): line.split("│")[4].strip() for line in out.splitlines() if "charge" in line}
    assert rows == {
        "live": "IN_PROGRESS (held)",
        "lapsed": "IN_PROGRESS (lapsed)",
        "released": "IN_PROGRESS (released)",
    }


def _rid(operation: str, key: str) -> str:
    from lambda_idempotency.keys import record_id

    return record_id(operation, None, key)


def test_a_key_secret_too_short_is_one_clear_error(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    """A LAMBDA_IDEMPOTENCY_KEY_SECRET under 16 bytes made `show` and `delete` end in a ValueError traceback."""
    monkeypatch.setenv("LAMBDA_IDEMPOTENCY_KEY_SECRET", "short")
    for command in (["show"], ["delete", "--yes"]):
        code, out, err = table.run(*command, "k", "--operation", "charge")
        assert (code, out) == (2, ""), err
        assert (
            err == "error: LAMBDA_IDEMPOTENCY_KEY_SECRET: a key-hashing secret must be bytes, at least 16 bytes long\n"
        )


def test_an_empty_scope_or_operation_is_a_usage_error_not_a_traceback_or_no_filter(table: Table) -> None:
    """`--scope ""` ended in a MissingScopeError traceback; `list --operation ""` dropped the filter and listed every
    operation's records with exit 0."""
    table.completed("charge", "k", 1)
    code, out, err = table.run("show", "k", "--operation", "charge", "--scope", "")
    assert (code, out) == (2, ""), err
    assert err == "error: the idempotency scope is empty; a scoped call needs a scope\n"
    code, out, err = table.run("list", "--operation", "")
    assert (code, out) == (2, ""), err
    assert err.startswith("error: operation must be 1-1024 characters, got 0")


def test_a_completed_record_whose_result_was_not_stored_says_so(table: Table) -> None:
    """A result too big or not serializable is not stored, and every replay raises `ResultNotStoredError`; `show`
    printed an empty result, as if the function had returned nothing worth showing."""

    @idempotent_function(table.store, key="key", operation="charge", local_cache=False)
    def charge(key: str) -> object:
        return object()  # no serializer takes it

    charge("k")
    shown = table.json("show", "k", "--operation", "charge")
    assert shown["status"] == "COMPLETED" and shown["result"] is None
    assert (
        shown["result_error"] == "not stored (too big, or not serializable): every replay raises ResultNotStoredError"
    )
    code, out, _ = table.run("show", "k", "--operation", "charge")
    assert code == 0 and "ResultNotStoredError" in out


def test_the_delete_prompt_says_when_an_execution_still_holds_the_key(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting a record whose lease is held lets the next call run while that execution still runs: the prompt
    showed only the status and attempts, the same for a live execution as for a crashed one."""
    table.in_progress("charge", "live")
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, _, err = table.run("delete", "live", "--operation", "charge")
    assert code == 1
    assert "IN_PROGRESS record of key 'live' in charge (attempts: 1; lease held until " in err
    assert ": calls get InProgressError)" in err
