"""Round trips are counted on the wire (botocore's ``before-call`` event), not assumed (DESIGN.md)."""

from __future__ import annotations

from typing import Any

import pytest
from lambda_idempotency import InProgressError, idempotent_function
from lambda_idempotency.stores.dynamodb import DynamoDBStore

from .conftest import FakeClock


def test_first_execution_two_duplicate_one_cached_zero(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    @idempotent_function(dynamodb_store, key="k", operation="rt", clock=clock)
    def work(k: str) -> str:
        return k.upper()

    @idempotent_function(dynamodb_store, key="k", operation="rt", clock=clock, local_cache=False)
    def cold_work(k: str) -> str:
        raise AssertionError("a duplicate must not run")

    counter = count_calls(dynamodb_store.client)
    assert work("a") == "A"
    assert counter.calls == ["PutItem", "PutItem"]  # claim, complete (the finished record put whole)

    counter.reset()
    assert cold_work("a") == "A"  # another container: duplicate answered by the failed claim itself
    assert counter.calls == ["PutItem"]

    counter.reset()
    assert work("a") == "A"  # warm container: local cache
    assert counter.calls == []


def test_in_flight_duplicate_costs_one_call_and_release_one(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    counter = count_calls(dynamodb_store.client)

    @idempotent_function(dynamodb_store, key="k", operation="rt2", clock=clock, local_cache=False)
    def work(k: str, nested: bool = True) -> str:
        if nested:
            counter.reset()
            with pytest.raises(InProgressError):
                work(k, nested=False)
            assert counter.calls == ["PutItem"]
            counter.reset()
            raise ValueError("boom")
        return "unreachable"

    with pytest.raises(ValueError, match="boom"):
        work("a")
    assert counter.calls == ["DeleteItem"]
