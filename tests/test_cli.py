"""The `lambda-idempotency` command against moto's server over HTTP, on records the library itself wrote."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from lambda_idempotency import DynamoDBStore, create_table, idempotent_function
from lambda_idempotency.cli import _explain, main
from lambda_idempotency.http import idempotent_http
from lambda_idempotency.keys import record_id
from lambda_idempotency.record import MAX_UNPACKED_BYTES, Status
from lambda_idempotency.stores.base import ClaimRequest
from rich.prompt import Confirm

from .http_events import http_event


class Table:
    """A fresh table on moto server and a way to run the CLI against it."""

    def __init__(self, endpoint: str, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
        self.endpoint = endpoint
        self.name = f"cli-{uuid.uuid4().hex[:12]}"
        self.store = DynamoDBStore(self.name, client=client)
        self._capsys = capsys

    def create(self) -> Table:
        create_table(self.store)
        return self

    def run(self, *args: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        code = main([*args, "--table", self.name, "--endpoint-url", self.endpoint, "--region", "us-east-1"])
        captured = self._capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *args: str) -> Any:
        code, out, err = self.run(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    def completed(self, operation: str, key: str, result: Any, scope: str | None = None) -> None:
        @idempotent_function(
            self.store, key="key", operation=operation, scope=(lambda key: scope) if scope else None, local_cache=False
        )
        def work(key: str) -> Any:
            return result

        work(key)

    def in_progress(self, operation: str, key: str) -> None:
        """A claim whose execution never finished (a crashed Lambda), written through the store's own claim."""
        now_ms = int(time.time() * 1000)
        self.store.claim(
            ClaimRequest(
                record_id=_record_id(operation, key),
                owner="crashed",
                key=key,
                scope=None,
                fingerprint=None,
                now_ms=now_ms,
                lease_expires_at=now_ms + 600_000,
                expires_at=now_ms // 1000 + 3600,
            )
        )


def _record_id(operation: str, key: str) -> str:
    return record_id(operation, None, key)


@pytest.fixture
def table(moto_endpoint: str, moto_server_client: Any, capsys: pytest.CaptureFixture[str]) -> Table:
    return Table(moto_endpoint, moto_server_client, capsys).create()


def test_create_table_makes_a_table_with_ttl_and_is_repeatable(
    moto_endpoint: str, moto_server_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    table = Table(moto_endpoint, moto_server_client, capsys)
    assert table.json("create-table") == {"table": table.name, "ttl_attribute": "expires_at"}
    assert table.run("create-table")[0] == 0
    ttl = moto_server_client.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


@pytest.mark.parametrize(
    ("keys", "ttl", "wrong"),
    [
        ({"id": "S"}, "expiration", "key id (S)"),  # a Powertools table
        ({"pk": "S", "sk": "S"}, None, "key pk (S), sk (S)"),
        ({"pk": "S"}, "expiration", "TTL on expiration"),
    ],
)
def test_create_table_on_a_table_that_cannot_serve_says_so(
    moto_endpoint: str,
    moto_server_client: Any,
    capsys: pytest.CaptureFixture[str],
    keys: dict[str, str],
    ttl: str | None,
    wrong: str,
) -> None:
    """An existing table was taken as it was: "ready" (exit 0) for a table whose records every call would refuse,
    or whose TTL never deletes them. It is named, with what is wrong, and exits with 2."""
    table = Table(moto_endpoint, moto_server_client, capsys)
    moto_server_client.create_table(
        TableName=table.name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": n, "KeyType": "HASH" if i == 0 else "RANGE"} for i, n in enumerate(keys)],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in keys.items()],
    )
    if ttl:
        spec = {"Enabled": True, "AttributeName": ttl}
        moto_server_client.update_time_to_live(TableName=table.name, TimeToLiveSpecification=spec)
    code, out, err = table.run("create-table")
    assert code == 2, out
    assert f"'{table.name}'" in err and wrong in err and "pk (S)" in err


def test_create_table_with_dynamodb_out_of_reach_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """`create_table` types a botocore failure (an outage: `StoreUnavailableError`); the command printed its traceback
    and exited with 1. It says what it could not reach and exits with 2, as every other command does."""
    from lambda_idempotency.testing import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code = main(["create-table", "--table", "t", "--endpoint-url", endpoint, "--region", "us-east-1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach DynamoDB" in err and "Traceback" not in err, err


def test_show_prints_the_record_with_its_raw_key_scope_and_result(table: Table) -> None:
    table.completed("charge", "order-17", {"charged": 5}, scope="tenant-a")
    shown = table.json("show", "order-17", "--operation", "charge", "--scope", "tenant-a")
    assert shown["key"] == "order-17"
    assert shown["scope"] == "tenant-a"
    assert shown["status"] == "COMPLETED"
    assert shown["expired"] is False
    assert json.loads(shown["result"]) == {"charged": 5}
    code, out, _ = table.run("show", "order-17", "--operation", "charge", "--scope", "tenant-a")
    assert code == 0
    assert "order-17" in out and "COMPLETED" in out


def test_show_of_a_missing_key_says_so(table: Table) -> None:
    table.completed("charge", "order-18", 1, scope="tenant-a")
    code, out, err = table.run("show", "order-17", "--operation", "charge")
    assert code == 1
    assert out == ""
    assert "no record for key 'order-17' of operation 'charge', in any scope" in err
    code, out, err = table.run("show", "order-18", "--operation", "charge", "--scope", "tenant-b")
    assert (code, out) == (1, "")
    assert "no record for key 'order-18' of operation 'charge' in scope 'tenant-b'" in err


@pytest.mark.parametrize("command", ["show", "delete"])
def test_without_scope_the_scopes_that_hold_the_key_are_listed(table: Table, command: str) -> None:
    for scope in ("tenant-a", "tenant-b"):
        table.completed("charge", "order-17", 1, scope=scope)
    table.completed("charge", "order-18", 1, scope="tenant-c")  # another key
    table.completed("refund", "order-17", 1, scope="tenant-d")  # another operation
    code, out, _ = table.run(command, "order-17", "--operation", "charge")
    assert code == 1  # nothing shown or deleted: the operator picks the scope
    assert "tenant-a" in out and "tenant-b" in out
    assert "tenant-c" not in out and "tenant-d" not in out
    assert "pass --scope" in out
    code, out, _ = table.run(command, "order-17", "--operation", "charge", "--json")
    found = json.loads(out)
    assert code == 1
    assert sorted(row["scope"] for row in found["scopes"]) == ["tenant-a", "tenant-b"]
    assert found["complete"] is True
    for scope in ("tenant-a", "tenant-b"):
        assert table.store.get(record_id("charge", scope, "order-17")) is not None


@pytest.mark.parametrize("hash_keys", [False, True], ids=["clear", "hashed"])
def test_a_key_stored_through_the_http_adapter_is_found_under_its_callers_scope(table: Table, hash_keys: bool) -> None:
    api = idempotent_http(table.store, operation="payments.create", local_cache=False, hash_keys=hash_keys)(
        lambda event, context: {"statusCode": 201, "body": "{}"}
    )
    assert api(http_event("http_api", key="key-of-alice", principal="alice"), None)["statusCode"] == 201
    (stored,) = table.json("list")
    assert stored["scope"].startswith("blake2b:") is hash_keys  # the adapter hashes keys and scopes by default
    code, out, _ = table.run("show", "key-of-alice", "--operation", "payments.create", "--json")
    assert code == 1
    assert [row["scope"] for row in json.loads(out)["scopes"]] == [stored["scope"]]
    shown = table.json("show", "key-of-alice", "--operation", "payments.create", "--scope", stored["scope"])
    assert shown["status"] == "COMPLETED"
    assert shown["key"] == "key-of-alice"  # what the operator typed, once checked against the stored hash


def test_a_long_principal_is_listed_as_its_digest_and_found_by_it(table: Table) -> None:
    # Scopes in clear (hash_keys=False): the digest is the stored form; hashed scopes are covered above.
    api = idempotent_http(table.store, operation="payments.create", local_cache=False, hash_keys=False)(
        lambda event, context: {"statusCode": 201, "body": "{}"}
    )
    token = "t" * 2000  # an authorizer that returns the caller's token as its principal
    assert api(http_event("http_api", key="key-of-token", principal=token), None)["statusCode"] == 201
    code, out, _ = table.run("show", "key-of-token", "--operation", "payments.create", "--json")
    (listed,) = [row["scope"] for row in json.loads(out)["scopes"]]
    assert code == 1 and listed.startswith("sha256:")
    shown = table.json("show", "key-of-token", "--operation", "payments.create", "--scope", listed)
    assert shown["scope"] == listed


def test_the_search_under_any_scope_is_bounded(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        table.completed("charge", f"other-{i}", i)
    table.completed("charge", "order-17", 1, scope="tenant-a")
    code, out, err = table.run("show", "order-17", "--operation", "charge", "--max-scan", "2")
    assert code == 1
    assert "(searched the first 2 items: --max-scan to read more)" in " ".join((out + err).split())  # however wrapped
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal: the search shows a progress bar
    code, out, err = table.run("show", "order-17", "--operation", "charge")
    assert code == 1
    assert "tenant-a" in out
    assert f"scanning {table.name}" in err


def test_list_filters_by_status_and_operation(table: Table) -> None:
    table.completed("charge", "a", 1)
    table.completed("email", "b", 2, scope="tenant-b")
    table.in_progress("charge", "stuck")
    everything = table.json("list")
    assert sorted((r["operation"], r["key"], r["scope"], r["status"]) for r in everything) == [
        ("charge", "a", None, "COMPLETED"),
        ("charge", "stuck", None, "IN_PROGRESS"),
        ("email", "b", "tenant-b", "COMPLETED"),
    ]
    assert [r["key"] for r in table.json("list", "--status", "IN_PROGRESS")] == ["stuck"]
    assert sorted(r["key"] for r in table.json("list", "--operation", "charge")) == ["a", "stuck"]
    assert table.json("list", "--operation", "email", "--status", "IN_PROGRESS") == []


def test_list_reads_every_page_and_stops_at_the_limit(table: Table) -> None:
    for i in range(5):
        table.completed("charge", f"k{i}", i)
    assert sorted(r["key"] for r in table.json("list", "--page-size", "2")) == [f"k{i}" for i in range(5)]
    assert len(table.json("list", "--page-size", "2", "--limit", "3")) == 3
    code, out, _ = table.run("list")
    assert code == 0 and "k3" in out


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--limit", "0"),
        ("list", "--limit", "-3"),
        ("list", "--page-size", "0"),
        ("stats", "--page-size", "-1"),
        ("show", "k0", "--operation", "charge", "--max-scan", "0"),
        ("delete", "k0", "--operation", "charge", "--max-scan", "-5", "--yes"),
    ],
)
def test_a_count_below_one_is_a_usage_error(
    table: Table, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    """``--limit 0`` (or -3) listed one record, ``--page-size 0`` reached botocore as a parameter error, and
    ``--max-scan 0`` searched nothing and said so: each is now argparse's usage error, before DynamoDB is called."""
    table.completed("charge", "k0", 0)
    with pytest.raises(SystemExit) as exit:
        table.run(*args)
    assert exit.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
    table.completed("charge", "k1", 1)
    assert len(table.json("list", "--limit", "1", "--page-size", "1")) == 1


def test_a_terminal_sees_a_progress_bar_while_scanning(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        table.completed("charge", f"k{i}", i)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal
    code, _, err = table.run("stats", "--page-size", "1")
    assert code == 0
    assert f"scanning {table.name}" in err


def test_stats_counts_by_operation_and_status(table: Table) -> None:
    table.completed("charge", "a", 1)
    table.completed("charge", "b", 1)
    table.completed("email", "c", 1)
    table.in_progress("charge", "stuck")
    stats = table.json("stats", "--page-size", "1")
    assert stats["total"] == 4
    assert stats["operations"]["charge"] == {"IN_PROGRESS": 1, "COMPLETED": 2, "FAILED": 0, "EXPIRED": 0}
    assert stats["operations"]["email"]["COMPLETED"] == 1


def test_delete_with_yes_lets_the_operation_run_again(table: Table) -> None:
    runs = []

    @idempotent_function(table.store, key="key", operation="charge", local_cache=False)
    def charge(key: str) -> int:
        runs.append(key)
        return len(runs)

    charge("k")
    charge("k")
    assert runs == ["k"]
    assert table.json("delete", "k", "--operation", "charge", "--yes")["deleted"] is True
    assert charge("k") == 2
    assert runs == ["k", "k"]


@pytest.mark.parametrize(("answer", "deleted"), [("y\n", True), ("n\n", False), ("", False)])
def test_delete_asks_first(table: Table, monkeypatch: pytest.MonkeyPatch, answer: str, deleted: bool) -> None:
    table.in_progress("charge", "stuck")
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    code, _, err = table.run("delete", "stuck", "--operation", "charge")
    assert "IN_PROGRESS record of key 'stuck'" in err
    assert code == (0 if deleted else 1)
    assert (table.store.get(_record_id("charge", "stuck")) is None) is deleted


@pytest.mark.parametrize("meanwhile", ["a new claim", "a delete"])
def test_delete_refuses_a_record_that_changed_during_the_prompt(
    table: Table, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    @idempotent_function(table.store, key="key", operation="charge", ttl=60, clock=lambda: time.time() - 3600)
    def charge(key: str) -> int:
        return 1

    charge("k")  # COMPLETED, and expired an hour ago: what the operator is shown
    rid = _record_id("charge", "k")

    def answer_yes_while_it_changes(*args: Any, **kwargs: Any) -> bool:
        if meanwhile == "a new claim":
            table.in_progress("charge", "k")  # claims over the expired record: a new owner, IN_PROGRESS
        else:
            table.store.client.delete_item(TableName=table.name, Key={"pk": {"S": rid}})
        return True

    monkeypatch.setattr(Confirm, "ask", answer_yes_while_it_changes)
    code, out, err = table.run("delete", "k", "--operation", "charge")
    assert "COMPLETED record of key 'k'" in err
    assert code == 1
    now = table.store.get(rid)
    if meanwhile == "a new claim":
        assert now is not None and now.status is Status.IN_PROGRESS and now.owner == "crashed"
        assert "not deleted: the record changed since it was shown" in out
        assert "IN_PROGRESS" in out and "crashed" in out  # the new record, shown
    else:
        assert now is None
        assert "the record was already gone" in err


def test_delete_of_a_missing_key_fails_clearly(table: Table) -> None:
    code, _, err = table.run("delete", "nope", "--operation", "charge", "--yes")
    assert code == 1
    assert "no record for key 'nope'" in err


def test_a_missing_table_is_named(
    moto_endpoint: str, moto_server_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    table = Table(moto_endpoint, moto_server_client, capsys)  # never created
    for command in (["list"], ["stats"], ["show", "k", "--operation", "op"]):
        code, _, err = table.run(*command)
        assert code == 2
        assert f"table '{table.name}' not found" in err


def test_missing_credentials_are_explained(table: Table, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a fresh process, as the console script is
    code, _, err = table.run("stats")
    assert code == 2
    assert "no AWS credentials found" in err


def test_rejected_credentials_are_explained() -> None:
    # No local DynamoDB checks signatures, so the error DynamoDB answers with is built here.
    refused = ClientError(
        {"Error": {"Code": "UnrecognizedClientException", "Message": "The security token is invalid."}}, "Scan"
    )
    assert _explain(refused, "t", None) == (
        "AWS rejected the credentials (UnrecognizedClientException): The security token is invalid."
    )


def test_invalid_input_is_a_usage_error(table: Table) -> None:
    code, _, err = table.run("show", "x" * 256, "--operation", "charge")
    assert code == 2
    assert "idempotency key must be 1-255 characters" in err


def test_the_console_script_runs(table: Table) -> None:
    table.completed("charge", "a", 1)
    script = Path(sys.executable).with_name("lambda-idempotency")
    done = subprocess.run(
        [str(script), "list", "--json", "--table", table.name, "--endpoint-url", table.endpoint],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [r["key"] for r in json.loads(done.stdout)] == ["a"]


def test_an_item_that_is_not_a_record_is_named(table: Table) -> None:
    table.store.client.put_item(TableName=table.name, Item={"pk": {"S": "powertools#abc"}, "data": {"S": "x"}})
    code, _, err = table.run("list")
    assert code == 2
    assert "item powertools#abc is not a lambda-idempotency record" in err


def test_times_no_date_can_show_are_shown_as_numbers_not_a_traceback(table: Table) -> None:
    """A record whose expires_at was written in milliseconds (another tool, another version) is past year 9999:
    `show`, `list` and `stats` raised a bare ValueError (a traceback for the whole table). It is shown as its number."""
    millis = int(time.time() * 1000) + 3_600_000
    table.store.client.put_item(
        TableName=table.name,
        Item={
            "pk": {"S": _record_id("charge", "ms")},
            "status": {"S": "IN_PROGRESS"},
            "owner": {"S": "other-tool"},
            "expires_at": {"N": str(millis)},
            "lease_expires_at": {"N": str(millis * 1000)},
        },
    )
    shown = table.json("show", "ms", "--operation", "charge")
    assert shown["expires_at"] == f"{millis} (not a date)"
    assert shown["lease_expires_at"] == f"{millis} (not a date)"
    assert [row["expires_at"] for row in table.json("list")] == [f"{millis} (not a date)"]
    assert table.json("stats")["operations"]["charge"]["IN_PROGRESS"] == 1
    assert table.run("list")[0] == 0  # the table, too (its narrow column wraps the text)


def test_an_odd_item_is_named_and_the_records_around_it_are_still_listed(table: Table) -> None:
    """One item another tool or version wrote (a status we do not know, a fractional expires_at) made `list` and
    `stats` print nothing but its name: an operator could not find the stuck records beside it. They are listed and
    counted (valid JSON on stdout); the odd items are named on stderr, and the exit code is still 2."""
    for key in ("a", "b"):
        table.completed("charge", key, 1)
    table.in_progress("charge", "stuck")
    for pk, status, expires in (("charge#odd-1", "PENDING", "1"), ("charge#odd-2", "COMPLETED", "1.5")):
        item = {"pk": {"S": pk}, "status": {"S": status}, "owner": {"S": "o"}, "expires_at": {"N": expires}}
        table.store.client.put_item(TableName=table.name, Item=item)
    code, out, err = table.run("list", "--json", "--page-size", "1")
    assert code == 2
    assert sorted(row["key"] for row in json.loads(out)) == ["a", "b", "stuck"]
    assert "is not a lambda-idempotency record" in err and "1 more such items" in err
    assert [row["key"] for row in table.json("list", "--status", "IN_PROGRESS")] == ["stuck"]  # filtered out
    code, out, _ = table.run("stats", "--json")
    assert code == 2 and json.loads(out)["total"] == 3


def test_show_reports_a_result_that_would_inflate_past_the_bound_without_inflating_it(table: Table) -> None:
    table.completed("charge", "k", "done")
    bomb = zlib.compress(b'"' + b"a" * (MAX_UNPACKED_BYTES + 1) + b'"', 9)
    table.store.client.update_item(
        TableName=table.name,
        Key={"pk": {"S": _record_id("charge", "k")}},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "result"},
        ExpressionAttributeValues={":r": {"B": bomb}},
    )
    shown = table.json("show", "k", "--operation", "charge")
    assert shown["result"] is None
    assert f"inflates past {MAX_UNPACKED_BYTES} bytes" in shown["result_error"]
    code, out, _ = table.run("show", "k", "--operation", "charge")
    assert code == 0 and "result_error" in out


def test_without_the_cli_extra_the_command_says_what_to_install() -> None:
    """`pip install .` installs the console script but not rich: one line, not a traceback."""
    import subprocess
    import sys

    hide_rich = "import sys; sys.modules['rich'] = None; from lambda_idempotency.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", hide_rich], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        'lambda-idempotency\'s CLI needs rich: pip install ".[cli]" (from a clone), or add rich>=13'
    )


def test_delete_frees_a_key_whose_item_the_library_cannot_read(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    """An item under a key's record id that is not a record this library can read (a status of another version, a
    fractional time) answers every call with `ResultUnreadableError` until its TTL: the key is stuck, and `delete`,
    the documented way to let a stuck key run again, refused it (exit 2) like `show`. `show` still names it; `delete`
    shows the item as stored and removes it, only if it is still the item it showed."""
    from lambda_idempotency import ResultUnreadableError

    runs: list[str] = []

    @idempotent_function(table.store, key="key", operation="charge", local_cache=False)
    def charge(key: str) -> str:
        runs.append(key)
        return "charged"

    item = {
        "pk": {"S": _record_id("charge", "odd")},
        "status": {"S": "PENDING"},
        "owner": {"S": "another-version"},
        "expires_at": {"N": str(int(time.time()) + 86_400)},
        "lease_expires_at": {"N": "1.5"},
        "key": {"S": "odd"},
    }
    table.store.client.put_item(TableName=table.name, Item=item)
    with pytest.raises(ResultUnreadableError):
        charge("odd")
    code, _, err = table.run("show", "odd", "--operation", "charge")
    assert code == 2 and "is not a lambda-idempotency record" in " ".join(err.split())

    monkeypatch.setattr(Confirm, "ask", classmethod(lambda cls, *a, **k: False))
    code, _, err = table.run("delete", "odd", "--operation", "charge")
    assert code == 1 and "PENDING" in err and "another-version" in err  # shown as stored, then not deleted
    assert table.store.client.get_item(TableName=table.name, Key={"pk": item["pk"]}).get("Item") == item

    changed = {**item, "owner": {"S": "a-claim-since"}}

    def answer_yes_while_it_changes(*args: Any, **kwargs: Any) -> bool:
        table.store.client.put_item(TableName=table.name, Item=changed)
        return True

    monkeypatch.setattr(Confirm, "ask", answer_yes_while_it_changes)
    code, out, _ = table.run("delete", "odd", "--operation", "charge", "--json")
    assert code == 1 and json.loads(out)["deleted"] is False
    assert table.store.client.get_item(TableName=table.name, Key={"pk": item["pk"]})["Item"] == changed

    code, out, _ = table.run("delete", "odd", "--operation", "charge", "--yes", "--json")
    assert code == 0 and json.loads(out)["deleted"] is True
    assert charge("odd") == "charged" and runs == ["odd"]
