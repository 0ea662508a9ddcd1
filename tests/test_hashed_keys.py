"""Keys and scopes stored as keyed hashes (``hash_keys``): the default of the HTTP adapter, an option elsewhere.

The table is scanned for the raw text; the CLI must still find the record from the raw key the operator types.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from lambda_idempotency import DynamoDBStore, create_table, current, idempotent_function
from lambda_idempotency.cli import main
from lambda_idempotency.http import idempotent_http
from lambda_idempotency.key_hashing import PREFIX, SECRET_ENV, KeyHasher
from lambda_idempotency.keys import fingerprint_of, record_id

from tests.conftest import table_items
from tests.http_events import KEY, SHAPES, http_event, options_for

SECRET = b"0123456789abcdef-secret"


@pytest.fixture
def store(moto_server_client: Any) -> DynamoDBStore:
    store = DynamoDBStore(f"hk-{uuid.uuid4().hex[:12]}", client=moto_server_client)
    create_table(store)
    return store


def scanned_text(store: DynamoDBStore) -> str:
    return json.dumps(table_items(store), default=str)


def show(store: DynamoDBStore, endpoint: str, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    code = main(["show", *args, "--table", store.table_name, "--endpoint-url", endpoint, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_http_adapter_stores_no_key_or_scope_text_by_default(
    store: DynamoDBStore, moto_endpoint: str, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    seen = []

    @idempotent_http(store, operation="payments", **options_for(shape))
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append((current().key, current().scope))
        return {"statusCode": 201, "body": "{}"}

    handler(http_event(shape, principal="alice@example.com"), None)
    ((key, scope),) = seen
    assert key == KEY  # the handler still sees what the caller sent
    assert "alice@example.com" in scope
    stored = scanned_text(store)
    assert KEY not in stored
    assert "alice@example.com" not in stored
    assert stored.count(PREFIX) == 2
    record = show(store, moto_endpoint, capsys, KEY, "--operation", "payments", "--scope", scope)
    assert (record["key"], record["scope"], record["status"]) == (KEY, scope, "COMPLETED")


def test_the_http_adapter_can_store_the_text(store: DynamoDBStore) -> None:
    @idempotent_http(store, operation="payments", hash_keys=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 201, "body": "{}"}

    handler(http_event("http_api"), None)
    assert KEY in scanned_text(store)


def test_decorators_store_text_unless_asked(store: DynamoDBStore) -> None:
    @idempotent_function(store, key="k", operation="plain", scope=lambda k: "tenant-9")
    def plain(k: str) -> int:
        return 1

    @idempotent_function(store, key="k", operation="hidden", scope=lambda k: "tenant-9", hash_keys=True)
    def hidden(k: str) -> int:
        return 2

    plain("order-77")
    hidden("order-88")
    stored = scanned_text(store)
    assert "order-77" in stored
    assert "order-88" not in stored
    assert stored.count("tenant-9") == 1


def test_a_secret_keys_the_record_id_and_the_cli_reads_it_from_the_environment(
    store: DynamoDBStore,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @idempotent_function(store, key="k", fingerprint="k", operation="secret", hash_keys=SECRET, local_cache=False)
    def work(k: str) -> str:
        return k.upper()

    assert work("card-4242") == "CARD-4242"
    assert work("card-4242") == "CARD-4242"  # the keyed fingerprint matches its own
    (item,) = table_items(store)
    assert item["pk"]["S"] != record_id("secret", None, "card-4242")  # a guess cannot be confirmed without it
    assert item["fingerprint"]["S"] != fingerprint_of("card-4242")
    assert item["fingerprint"]["S"].startswith(PREFIX)
    assert item["pk"]["S"] == KeyHasher("secret", SECRET).record_id(None, "card-4242")
    capsys.readouterr()
    args = ["show", "card-4242", "--operation", "secret", "--table", store.table_name, "--endpoint-url", moto_endpoint]
    assert main(args) == 1  # without the secret the CLI computes the unkeyed id: no such record
    monkeypatch.setenv(SECRET_ENV, SECRET.decode())
    assert show(store, moto_endpoint, capsys, "card-4242", "--operation", "secret")["key"] == "card-4242"


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        KeyHasher("op", b"short")


def test_optimistic_mode_stores_the_hashes_too(store: DynamoDBStore) -> None:
    """The optimistic commit writes the whole record at once: its key and scope are hashed there as well."""

    @idempotent_function(store, key="k", operation="opt", scope=lambda k: "tenant-5", hash_keys=True, mode="optimistic")
    def work(k: str) -> str:
        assert (current().key, current().scope) == ("order-55", "tenant-5")
        return "done"

    assert work("order-55") == "done"
    stored = scanned_text(store)
    assert "order-55" not in stored
    assert "tenant-5" not in stored
    assert stored.count(PREFIX) == 2
