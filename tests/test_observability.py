"""Metrics (CloudWatch EMF through Powertools) and structured logs, read back from what the library emits.

Protocol scenarios run on `MemoryStore`; store errors come from a real DynamoDB endpoint (moto server) that has no
such table. The EMF documents are parsed from stdout exactly as CloudWatch Logs would receive them.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from lambda_idempotency import (
    DynamoDBStore,
    InProgressError,
    KeyReuseError,
    MemoryStore,
    StoreConfigurationError,
    disable_metrics,
    enable_metrics,
    idempotent_function,
)
from lambda_idempotency.stores.base import Store

from .conftest import FakeClock


@pytest.fixture
def metrics() -> Iterator[None]:
    enable_metrics("TestNamespace", service="orders")
    yield
    disable_metrics()


def emf_documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def observed(out: str) -> list[tuple[str, str, float]]:
    """(metric, operation, value) of every EMF document, checking each one's shape on the way."""
    found = []
    for document in emf_documents(out):
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "TestNamespace"
        assert directive["Dimensions"] == [["operation", "service"]]
        assert document["service"] == "orders"
        [metric] = directive["Metrics"]
        value = document[metric["Name"]]
        [value] = value if isinstance(value, list) else [value]
        found.append((metric["Name"], document["operation"], value))
    return found


def charge_function(store: Store, clock: FakeClock, **options: Any) -> Any:
    @idempotent_function(
        store, key="order_id", fingerprint="amount", operation="charge", clock=clock, lease=30, **options
    )
    def charge(order_id: str, amount: int) -> dict[str, int]:
        return {"amount": amount}

    return charge


def test_execution_result_size_and_replays_are_counted(
    metrics: None, capsys: pytest.CaptureFixture[str], clock: FakeClock
) -> None:
    charge = charge_function(MemoryStore(), clock)
    charge("o-1", 5)
    charge("o-1", 5)
    charge("o-1", 5)
    assert observed(capsys.readouterr().out) == [
        ("Executions", "charge", 1.0),
        ("ResultBytes", "charge", float(len('{"amount":5}'))),
        ("Replays", "charge", 1.0),
        ("Replays", "charge", 1.0),
    ]


def test_result_bytes_have_the_bytes_unit(metrics: None, capsys: pytest.CaptureFixture[str], clock: FakeClock) -> None:
    charge_function(MemoryStore(), clock)("o-1", 5)
    units = {
        m["Name"]: m["Unit"]
        for d in emf_documents(capsys.readouterr().out)
        for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    }
    assert units == {"Executions": "Count", "ResultBytes": "Bytes"}


def test_result_bytes_count_encoded_bytes(metrics: None, capsys: pytest.CaptureFixture[str], clock: FakeClock) -> None:
    @idempotent_function(MemoryStore(), key="k", operation="greet", clock=clock)
    def greet(k: str) -> str:
        return "grüße"

    greet("a")
    [size] = [value for name, _, value in observed(capsys.readouterr().out) if name == "ResultBytes"]
    assert size == len('"grüße"'.encode())


def test_key_reuse_and_in_flight_conflicts_are_counted(
    metrics: None, capsys: pytest.CaptureFixture[str], clock: FakeClock
) -> None:
    store = MemoryStore()
    charge = charge_function(store, clock, local_cache=False)
    charge("o-1", 5)
    with pytest.raises(KeyReuseError):
        charge("o-1", 6)

    @idempotent_function(store, key="order_id", operation="ship", clock=clock, lease=30)
    def ship(order_id: str) -> None:
        with pytest.raises(InProgressError):
            ship(order_id)

    ship("o-1")
    metrics_seen = [(name, operation) for name, operation, _ in observed(capsys.readouterr().out)]
    assert ("KeyReuse", "charge") in metrics_seen
    assert ("InFlightConflicts", "ship") in metrics_seen


def test_a_lost_lease_is_counted(metrics: None, capsys: pytest.CaptureFixture[str], clock: FakeClock) -> None:
    calls = []

    @idempotent_function(MemoryStore(), key="order_id", operation="ship", clock=clock, lease=30, local_cache=False)
    def ship(order_id: str) -> int:
        calls.append(order_id)
        if len(calls) == 1:
            clock.advance(60)  # this execution stalls past its lease; a retry takes it over and completes
            ship(order_id)
        return len(calls)

    ship("o-1")
    metrics_seen = [name for name, _, _ in observed(capsys.readouterr().out)]
    assert metrics_seen.count("Executions") == 2
    assert metrics_seen[-1] == "LeaseLost"


def test_store_errors_are_counted(metrics: None, capsys: pytest.CaptureFixture[str], moto_server_client: Any) -> None:
    store = DynamoDBStore("no-such-table", client=moto_server_client)

    @idempotent_function(store, key="order_id", operation="charge")
    def charge(order_id: str) -> None: ...

    with pytest.raises(StoreConfigurationError):  # a missing table: misconfigured, and counted as a store error
        charge("o-1")
    assert observed(capsys.readouterr().out) == [("StoreErrors", "charge", 1.0)]


def test_disabled_metrics_write_nothing(capsys: pytest.CaptureFixture[str], clock: FakeClock) -> None:
    charge = charge_function(MemoryStore(), clock)
    charge("o-1", 5)
    charge("o-1", 5)
    assert emf_documents(capsys.readouterr().out) == []


def test_disabled_metrics_never_import_powertools() -> None:
    script = (
        "import sys\n"
        "from lambda_idempotency import MemoryStore, idempotent_function\n"
        "f = idempotent_function(MemoryStore(), key='k')(lambda k: k)\n"
        "f('a'); f('a')\n"
        "print('aws_lambda_powertools' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_logs_carry_structured_fields(caplog: pytest.LogCaptureFixture, clock: FakeClock) -> None:
    charge = charge_function(MemoryStore(), clock)
    with caplog.at_level(logging.DEBUG, logger="lambda_idempotency"):
        charge("o-1", 5)
        charge("o-1", 5)
    events = [(r.idempotency_event, r.operation) for r in caplog.records if hasattr(r, "idempotency_event")]
    assert events == [("Executions", "charge"), ("ResultBytes", "charge"), ("Replays", "charge")]
    assert all(r.record_id.startswith("charge#") for r in caplog.records if hasattr(r, "idempotency_event"))


def test_powertools_namespace_variable_is_honoured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clock: FakeClock
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "FromEnv")
    enable_metrics()
    try:
        charge_function(MemoryStore(), clock)("o-1", 5)
    finally:
        disable_metrics()
    namespaces = {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in emf_documents(capsys.readouterr().out)}
    assert namespaces == {"FromEnv"}
