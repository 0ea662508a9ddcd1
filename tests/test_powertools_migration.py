"""What a Powertools user brings along (issue 12, item 11): dataclass and pydantic arguments under a JMESPath key,
and Powertools' ``POWERTOOLS_IDEMPOTENCY_DISABLED``, which is not honoured but warned about once.
The guide's own examples run in tests/test_doc_examples.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lambda_idempotency import KeyReuseError, MemoryStore, decorators, idempotent, idempotent_function
from lambda_idempotency.http import idempotent_http
from pydantic import BaseModel

from tests.http_events import http_event


@dataclass
class Line:
    sku: str
    quantity: int


@dataclass
class Order:
    id: str
    lines: list[Line]


class Refund(BaseModel):
    id: str
    amount: int


def test_jmespath_sees_dataclass_arguments_as_dicts() -> None:
    runs: list[Order] = []

    @idempotent_function(MemoryStore(), key="order.id", fingerprint="order.lines[0]", operation="orders.charge")
    def charge(order: Order) -> int:
        runs.append(order)
        return len(runs)

    assert charge(Order("o-1", [Line("a", 1)])) == charge(order=Order("o-1", [Line("a", 1)])) == 1
    with pytest.raises(KeyReuseError):  # the nested dataclass is data too
        charge(Order("o-1", [Line("a", 2)]))
    assert len(runs) == 1


def test_jmespath_sees_pydantic_arguments_as_dicts() -> None:
    runs: list[Refund] = []

    @idempotent_function(MemoryStore(), key="refund.id", fingerprint="refund", operation="orders.refund")
    def refund(refund: Refund) -> int:
        runs.append(refund)
        return refund.amount

    assert refund(Refund(id="r-1", amount=5)) == refund(Refund(id="r-1", amount=5)) == 5
    with pytest.raises(KeyReuseError):
        refund(Refund(id="r-1", amount=6))
    assert len(runs) == 1


def test_a_callable_key_still_gets_the_objects() -> None:
    @idempotent_function(MemoryStore(), key=lambda order: order.id, operation="orders.ship")
    def ship(order: Order) -> str:
        return order.id

    assert ship(Order("o-2", [])) == "o-2"


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Not warned yet in this process, ours unset, and the logger at WARNING for the whole test (the warning comes
    when a function is decorated; another test may have left the logger at ERROR, as the demo does)."""
    monkeypatch.setattr(decorators, "_warned_powertools_switch", False)
    monkeypatch.delenv(decorators.DISABLED_ENV, raising=False)
    with caplog.at_level(logging.WARNING, "lambda_idempotency"):
        yield


def powertools_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "POWERTOOLS_IDEMPOTENCY_DISABLED" in r.getMessage()]


@pytest.mark.usefixtures("fresh_warning")
def test_powertools_switch_warns_once_and_idempotency_stays_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")
    runs: list[dict[str, Any]] = []

    @idempotent(MemoryStore(), key="id", operation="orders.create")
    def handler(event: dict[str, Any], context: Any) -> str:
        runs.append(event)
        return "done"

    with caplog.at_level(logging.WARNING, "lambda_idempotency"):
        for _ in range(3):
            assert handler({"id": "o-1"}, None) == "done"
    assert len(runs) == 1
    (warning,) = powertools_warnings(caplog)
    assert "idempotency stays ON" in warning and "LAMBDA_IDEMPOTENCY_DISABLED=1" in warning


@pytest.mark.usefixtures("fresh_warning")
def test_the_http_adapter_warns_too(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "1")
    runs: list[int] = []

    @idempotent_http(MemoryStore(), operation="payments.create")
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs.append(1)
        return {"statusCode": 201, "body": "{}"}

    with caplog.at_level(logging.WARNING, "lambda_idempotency"):
        handler(http_event("http_api"), None)
        replay = handler(http_event("http_api"), None)
    assert len(runs) == 1 and replay["headers"]["Idempotent-Replayed"] == "true"
    assert len(powertools_warnings(caplog)) == 1


@pytest.mark.usefixtures("fresh_warning")
def test_no_warning_when_ours_is_set_or_theirs_is_false(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def decorate() -> None:
        @idempotent_function(MemoryStore(), key="x", operation="noop")
        def noop(x: int) -> int:
            return x

    with caplog.at_level(logging.WARNING, "lambda_idempotency"):
        monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "false")
        decorate()
        monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")
        monkeypatch.setenv("LAMBDA_IDEMPOTENCY_DISABLED", "1")
        decorate()
    assert powertools_warnings(caplog) == []
