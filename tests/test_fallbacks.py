"""Paths real DynamoDB rarely takes: a resent request that had landed, and a backend without ALL_OLD."""

from __future__ import annotations

from typing import Any

import pytest
from lambda_idempotency import DynamoDBStore, current, idempotent_function
from lambda_idempotency.record import Status
from lambda_idempotency.stores.dynamodb import table_definition

from .conftest import HTTP_BACKENDS, client_of, http_client, new_dynamodb_store


class ResendingClient:
    """A real client whose every PutItem and UpdateItem reaches the table twice, as when botocore resends a request
    after the first response was lost; the caller sees only the second answer."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **request: Any) -> Any:
        self._client.put_item(**request)
        return self._client.put_item(**request)

    def update_item(self, **request: Any) -> Any:
        self._client.update_item(**request)
        return self._client.update_item(**request)


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
def test_a_resent_claim_and_completion_that_had_landed_are_ours(request: pytest.FixtureRequest, backend: str) -> None:
    with client_of(request, backend) as client:
        table = new_dynamodb_store(client).table_name
        store = DynamoDBStore(table, client=ResendingClient(client))
        attempts: list[int] = []

        @idempotent_function(store, key="k", operation="resent", local_cache=False)
        def work(k: str) -> str:
            attempts.append(current().attempt)
            return "once"

        assert work("a") == "once"  # the resent claim's refusal shows our own token: we hold the claim
        assert work("a") == "once"
        assert attempts == [1]
        from lambda_idempotency.keys import record_id

        record = store.get(record_id("resent", None, "a"))
        assert record is not None
        assert record.status is Status.COMPLETED


def test_backend_without_all_old_falls_back_to_one_consistent_read(dynalite_endpoint: str, count_calls: Any) -> None:
    client = http_client(dynalite_endpoint)
    store = DynamoDBStore("fallback", client=client)
    client.create_table(**table_definition(store.table_name))  # dynalite has no TTL API: no create_table()
    client.get_waiter("table_exists").wait(TableName=store.table_name, WaiterConfig={"Delay": 0.2})
    runs: list[str] = []

    @idempotent_function(store, key="k", operation="dl", local_cache=False, fingerprint="v")
    def work(k: str, v: int) -> int:
        runs.append(k)
        return v

    assert work("a", 1) == 1
    counter = count_calls(client)
    assert work("a", 1) == 1
    assert counter.calls == ["PutItem", "GetItem"]
    assert runs == ["a"]
