"""What a Powertools user brings along (issue 12, item 11): dataclass and pydantic arguments under a JMESPath key,
and Powertools' ``POWERTOOLS_IDEMPOTENCY_DISABLED``, which is not honoured but warned about once.
The guide's own examples run in tests/test_doc_examples.py."""

from __future__ import annotations

import enum
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lambda_idempotency import (
    InvalidKeyError,
    KeyReuseError,
    MemoryStore,
    MissingKeyError,
    decorators,
    idempotent,
    idempotent_function,
)
from lambda_idempotency.http import idempotent_http
from pydantic import BaseModel

from tests.doc_examples import ROOT
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


def test_powertools_json_is_json() -> None:
    """The guide says ``powertools_json()`` is ``json()``: Powertools' expression, pasted as it is, read
    'Unknown function' as a missing key on every call (and with ``required=False`` ran every call unguarded)."""
    runs: list[Any] = []

    @idempotent(MemoryStore(), key="powertools_json(body).order_id", operation="orders.create")
    def handler(event: dict[str, Any], context: Any) -> int:
        runs.append(event)
        return len(runs)

    @idempotent(MemoryStore(), key="{o: powertools_json(body).order_id, n: length(body)}", operation="orders.other")
    def interpreted(event: dict[str, Any], context: Any) -> int:  # an expression jmespath's interpreter reads
        runs.append(event)
        return len(runs)

    event = {"body": '{"order_id": "o-1"}'}
    assert handler(event, None) == handler(event, None) == 1
    assert interpreted(event, None) == interpreted(event, None) == 2
    with pytest.raises(MissingKeyError):  # the body has no order_id: a missing key, as before
        handler({"body": "{}"}, None)


@pytest.mark.parametrize("key", ["powertools_base64(body)", "{id: upper(order_id)}"])
def test_an_unknown_jmespath_function_is_a_configuration_error_even_with_required_false(key: str) -> None:
    """Powertools' other functions (``powertools_base64``) or a misspelt one made every call's key 'missing':
    with ``required=False`` every call ran without idempotency, silently. It is a `ValueError` naming the function."""
    runs: list[Any] = []

    @idempotent(MemoryStore(), key=key, operation="orders.create", required=False)
    def handler(event: dict[str, Any], context: Any) -> None:
        runs.append(event)

    with pytest.raises(ValueError, match=r"not a JMESPath function") as raised:
        handler({"body": "e30=", "order_id": "o-1"}, None)
    assert not isinstance(raised.value, MissingKeyError) and runs == []


def test_an_empty_key_with_required_false_runs_without_idempotency_as_in_powertools() -> None:
    """Powertools treats an empty string key as missing: with ``raise_on_no_idempotency_key=False`` the call runs
    unguarded. The guide says ``required=False`` is that behaviour; it raised `InvalidKeyError` instead. With
    ``required=True`` an empty key stays `InvalidKeyError`."""
    runs: list[Any] = []

    @idempotent_function(MemoryStore(), key="order.id", operation="orders.charge", required=False)
    def charge(order: dict[str, Any]) -> int:
        runs.append(order)
        return len(runs)

    assert (charge({"id": ""}), charge({"id": ""})) == (1, 2)

    @idempotent_function(MemoryStore(), key="order.id", operation="orders.strict")
    def strict(order: dict[str, Any]) -> str:
        return "ran"

    with pytest.raises(InvalidKeyError):
        strict({"id": ""})


@pytest.fixture
def our_logger() -> Iterator[logging.Logger]:
    """The ``lambda_idempotency`` logger, its handlers, level and propagation put back after the test."""
    ours = logging.getLogger("lambda_idempotency")
    saved = (list(ours.handlers), ours.level, ours.propagate)
    yield ours
    ours.handlers[:] = saved[0]
    ours.level, ours.propagate = saved[1], saved[2]


def json_lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines() if line.startswith("{")]


def test_powertools_logger_formats_our_events_once_its_config_is_copied(our_logger: logging.Logger) -> None:
    """The guide said Powertools' Logger "picks up" our log events: it does not (they go to the root logger, not
    to the Logger's handler), until ``copy_config_to_registered_loggers`` gives ours its handler and formatter."""
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    output = io.StringIO()
    logger = Logger(service="orders", level="DEBUG", logger_handler=logging.StreamHandler(output))

    @idempotent(MemoryStore(), key="id", operation="orders.create")
    def handler(event: dict[str, Any], context: Any) -> str:
        return "done"

    handler({"id": "o-1"}, None)
    assert [line for line in json_lines(output) if "idempotency_event" in line] == []  # by itself: nothing

    copy_config_to_registered_loggers(source_logger=logger, include={"lambda_idempotency"})
    handler({"id": "o-1"}, None)
    (replay,) = [line for line in json_lines(output) if "idempotency_event" in line]
    assert (replay["idempotency_event"], replay["operation"]) == ("Replays", "orders.create")
    assert replay["service"] == "orders"  # Powertools' document

    guide = (ROOT / "docs" / "migration-from-powertools.md").read_text(encoding="utf-8")
    assert "picks them up" not in guide
    assert 'copy_config_to_registered_loggers(source_logger=logger, include={"lambda_idempotency"})' in guide


def test_an_unknown_jmespath_function_in_a_batch_key_is_a_configuration_error() -> None:
    """`idempotent_record` reads its key through a callable, whose failures mean "no key": an unknown function
    there was a missing key too, hidden by ``required=False``."""
    from lambda_idempotency.batch import idempotent_record

    runs: list[Any] = []

    @idempotent_record(MemoryStore(), operation="emails.send", key="powertools_base64(body)", required=False)
    def send(record: dict[str, Any]) -> None:
        runs.append(record)

    with pytest.raises(ValueError, match=r"powertools_base64\(\), which is not a JMESPath function"):
        send({"messageId": "m-1", "body": "e30=", "eventSource": "aws:sqs"})
    assert runs == []


class Reason(enum.Enum):
    DUPLICATE = "duplicate"


class ReasonedRefund(BaseModel):
    id: str
    reason: Reason


def test_a_pydantic_enum_field_is_the_python_value_not_its_json_form_as_the_guide_says() -> None:
    """Powertools dumps pydantic arguments with ``model_dump(mode="json")``, we with ``model_dump()``: the guide said
    we do "the same". A key is the same either way; a JMESPath comparison on an enum field is not, and the guide
    says so."""
    from lambda_idempotency.selectors import argument_selector

    def refund(refund: ReasonedRefund) -> None: ...

    call: tuple[tuple[Any, ...], dict[str, Any]] = ((ReasonedRefund(id="r-1", reason=Reason.DUPLICATE),), {})
    assert argument_selector("refund.reason == 'duplicate'", refund)(call) is False  # Powertools: true
    assert argument_selector("refund.reason", refund)(call) is Reason.DUPLICATE
    guide = (ROOT / "docs" / "migration-from-powertools.md").read_text(encoding="utf-8")
    assert 'model_dump(mode="json")' in guide


def test_a_powertools_event_data_class_argument_is_read_as_the_event_it_wraps() -> None:
    """The guide says the SQS record data class "reads like its dict", and Powertools reads its ``raw_event``: ours
    read the wrapper, so JMESPath's functions refused it (``keys(record)``) and ``fingerprint="record"`` hashed the
    text of its properties, not the record."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from lambda_idempotency.keys import fingerprint_of
    from lambda_idempotency.selectors import argument_selector

    raw = {"messageId": "m-1", "body": '{"email_id": "e-1"}', "eventSource": "aws:sqs", "attributes": {}}

    def handle(record: SQSRecord) -> None: ...

    call: tuple[tuple[Any, ...], dict[str, Any]] = ((SQSRecord(raw),), {})
    assert argument_selector("sort(keys(record))", handle)(call) == sorted(raw)
    assert fingerprint_of(argument_selector("record", handle)(call)) == fingerprint_of(raw)


@pytest.mark.usefixtures("fresh_warning")
def test_our_switch_set_to_true_warns_once_and_idempotency_stays_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A Powertools user writes ``LAMBDA_IDEMPOTENCY_DISABLED=true`` (Powertools' switch takes ``true``): only ``1``
    switches ours off, and ``true`` was ignored without a word. The guide says so, and decorating warns once."""
    monkeypatch.setattr(decorators, "_warned_own_switch", False, raising=False)
    monkeypatch.setenv("LAMBDA_IDEMPOTENCY_DISABLED", "true")
    runs: list[str] = []

    def decorate() -> Any:
        @idempotent_function(MemoryStore(), key="order_id", operation="orders.ship")
        def ship(order_id: str) -> None:
            runs.append(order_id)

        return ship

    ship = decorate()
    decorate()
    ship("o-1")
    ship("o-1")
    assert runs == ["o-1"]
    (warning,) = [r.getMessage() for r in caplog.records if "does not switch idempotency off" in r.getMessage()]
    assert "'true'" in warning and "LAMBDA_IDEMPOTENCY_DISABLED=1" in warning
    monkeypatch.setattr(decorators, "_warned_own_switch", False, raising=False)
    caplog.clear()
    for value in ("1", "0", "false", ""):  # on, or plainly off: nothing to say
        monkeypatch.setenv("LAMBDA_IDEMPOTENCY_DISABLED", value)
        decorate()
    assert [r for r in caplog.records if "does not switch" in r.getMessage()] == []
