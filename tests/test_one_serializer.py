"""One serializer path: a custom ``serializer=`` writes results, saved steps, stored failures and HTTP responses.

The serializer below marks its text, so the stored items show which serializer wrote them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from lambda_idempotency import CachedFailureError, DynamoDBStore, create_table, current, idempotent_function
from lambda_idempotency.http import idempotent_http
from moto import mock_aws

from tests.conftest import FakeClock, table_items
from tests.http_events import http_event

MARK = "marked:"


class Marked:
    """A custom serializer: JSON behind a marker, refusing text it did not write."""

    def __init__(self) -> None:
        self.loaded = 0

    def dumps(self, value: Any) -> str:
        return MARK + json.dumps(value)

    def loads(self, text: str) -> Any:
        assert text.startswith(MARK), f"not written by this serializer: {text[:40]!r}"
        self.loaded += 1
        return json.loads(text[len(MARK) :])


class Declined(Exception):
    pass


@pytest.fixture
def store() -> Iterator[DynamoDBStore]:
    with mock_aws():
        store = DynamoDBStore(f"ser-{uuid.uuid4().hex[:8]}", client=boto3.client("dynamodb", region_name="us-east-1"))
        create_table(store)
        yield store


def test_steps_and_stored_failures_go_through_the_custom_serializer(store: DynamoDBStore, clock: FakeClock) -> None:
    serializer = Marked()
    runs = {"step": 0}

    def lookup() -> dict[str, int]:
        runs["step"] += 1
        return {"rate": 7}

    @idempotent_function(
        store, key="k", operation="ser", serializer=serializer, cache_errors=(Declined,), lease=1, clock=clock
    )
    def work(k: str, mode: str) -> dict[str, int]:
        rate = current().step("lookup", lookup)
        if mode == "crash":
            raise KeyboardInterrupt
        if mode == "decline":
            raise Declined("no funds")
        return rate

    with pytest.raises(KeyboardInterrupt):
        work("a", "crash")
    (item,) = table_items(store)
    assert item["steps"]["M"]["lookup"]["S"].startswith(MARK)
    clock.advance(5)
    assert work("a", "ok") == {"rate": 7}  # the step is read back by the custom serializer, not run again
    assert runs["step"] == 1
    with pytest.raises(Declined):
        work("b", "decline")
    failed = next(i for i in table_items(store) if i["status"]["S"] == "FAILED")
    assert failed["result"]["S"].startswith(MARK)
    loaded = serializer.loaded
    with pytest.raises(Declined, match="no funds"):
        work("b", "decline")
    assert serializer.loaded == loaded + 1


def test_http_responses_go_through_the_custom_serializer(store: DynamoDBStore) -> None:
    serializer = Marked()

    @idempotent_http(store, operation="http-ser", serializer=serializer, local_cache=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 201, "body": "{}"}

    event = http_event("http_api")
    handler(event, None)
    assert handler(event, None)["statusCode"] == 201
    (item,) = table_items(store)
    assert item["result"]["S"].startswith(MARK)
    assert serializer.loaded == 1


def test_a_stored_failure_that_is_not_an_object_replays_as_cached_failure(store: DynamoDBStore) -> None:
    """A FAILED record whose text is valid JSON but no failure object (edited by hand) is a typed error."""

    @idempotent_function(store, key="k", operation="fail", cache_errors=(Declined,), local_cache=False)
    def work(k: str) -> None:
        raise Declined("no funds")

    with pytest.raises(Declined):
        work("a")
    (item,) = table_items(store)
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": item["pk"]},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "result"},
        ExpressionAttributeValues={":r": {"S": '["not", "a", "failure"]'}},
    )
    with pytest.raises(CachedFailureError):
        work("a")
