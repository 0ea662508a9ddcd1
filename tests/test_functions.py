"""The example functions, invoked with the files of events/ against moto's server over HTTP (item operations
serialised, as DynamoDB serialises writes to one item) and, for the races, DynamoDB Local.

Each test gets the resources of template.yaml afresh (`demo.stack.LocalStack`) and loads the functions as new
containers. Charges are counted in the simulated gateway's table, emails in moto's SES counter.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from demo.stack import LambdaContext, LocalStack
from demo.story import EVENTS, load_event, with_key

pytestmark = pytest.mark.usefixtures("restore_environment")


@pytest.fixture
def stack(moto_endpoint: str) -> LocalStack:
    return LocalStack.create(dynamodb_endpoint=moto_endpoint, aws_endpoint=moto_endpoint)


@pytest.fixture(params=["moto_endpoint", "dynamodb_local_endpoint"])
def racing_stack(request: pytest.FixtureRequest, moto_endpoint: str) -> LocalStack:
    """Tables on a backend reached over HTTP that serialises writes to one item, as DynamoDB does."""
    dynamodb = request.getfixturevalue(request.param)
    return LocalStack.create(dynamodb_endpoint=dynamodb, aws_endpoint=moto_endpoint)


@pytest.fixture
def payment(stack: LocalStack) -> ModuleType:
    return stack.load_function("PaymentFunction")


def invoke(container: ModuleType, event: dict[str, Any], name: str = "PaymentFunction") -> dict[str, Any]:
    response: dict[str, Any] = container.handler(event, LambdaContext(name))
    return response


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_create_answers_201_with_the_payment(stack: LocalStack, payment: ModuleType) -> None:
    response = invoke(payment, load_event("payment-create.json"))
    assert response["statusCode"] == 201
    created = body(response)
    assert created["amount"] == 2500 and created["currency"] == "EUR" and created["customer"] == "cus_4711"
    assert created["payment_id"].startswith("pay_") and created["charge_id"].startswith("ch_")
    assert response["headers"]["Location"] == f"/payments/{created['payment_id']}"
    assert "Idempotent-Replayed" not in response["headers"]
    assert stack.count_items("GatewayChargesTable") == 1


def test_a_retry_gets_the_same_201_marked_replayed(stack: LocalStack, payment: ModuleType) -> None:
    first = invoke(payment, load_event("payment-create.json"))
    cold = stack.load_function("PaymentFunction")
    for container in (payment, cold):  # a warm container answers from its cache, a cold one from the table
        retry = invoke(container, load_event("payment-retry.json"))
        assert retry["statusCode"] == 201
        assert retry["body"] == first["body"]
        assert retry["headers"]["Idempotent-Replayed"] == "true"
    assert stack.count_items("GatewayChargesTable") == 1


def test_the_same_key_with_another_body_is_422(stack: LocalStack, payment: ModuleType) -> None:
    invoke(payment, load_event("payment-create.json"))
    response = invoke(stack.load_function("PaymentFunction"), load_event("payment-key-reused.json"))
    assert response["statusCode"] == 422
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert body(response)["status"] == 422
    assert stack.count_items("GatewayChargesTable") == 1


def test_a_missing_key_is_400_and_charges_nothing(stack: LocalStack, payment: ModuleType) -> None:
    response = invoke(payment, load_event("payment-missing-key.json"))
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert "Idempotency-Key" in body(response)["title"]
    assert stack.count_items("GatewayChargesTable") == 0


def test_an_invalid_body_is_400_stores_nothing_and_its_correction_goes_through(
    stack: LocalStack, payment: ModuleType
) -> None:
    invalid = load_event("payment-invalid-body.json")
    response = invoke(payment, invalid)
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert {e["field"] for e in body(response)["errors"]} == {"amount", "currency", "customer"}
    assert stack.count_items("IdempotencyTable") == 0
    corrected = dict(invalid, body=load_event("payment-create.json")["body"])
    assert invoke(payment, corrected)["statusCode"] == 201
    assert stack.count_items("GatewayChargesTable") == 1


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[1, 2]",
        '{"amount": 1.5, "currency": "EUR", "customer": "c"}',
        '{"amount": true, "currency": "EUR", "customer": "c"}',
        '{"amount": 100, "currency": "EUR", "customer": "c", "tip": 5}',
    ],
)
def test_malformed_bodies_are_400_problems(payment: ModuleType, payload: str) -> None:
    response = invoke(payment, dict(load_event("payment-invalid-body.json"), body=payload))
    assert response["statusCode"] == 400
    assert body(response)["errors"]


def test_get_reads_the_payment_and_404s_an_unknown_id(payment: ModuleType) -> None:
    created = invoke(payment, load_event("payment-create.json"))
    got = invoke(payment, load_event("payment-get.json"))
    assert got["statusCode"] == 200
    assert body(got) == body(created)
    missing = invoke(payment, load_event("payment-get-missing.json"))
    assert missing["statusCode"] == 404
    assert missing["headers"]["Content-Type"] == "application/problem+json"


def test_a_crash_after_the_charge_does_not_charge_again(stack: LocalStack, payment: ModuleType) -> None:
    """The gateway gets a key derived from the request's: the retry after a crash gets the first charge back."""
    real_create = payment.payments.create

    def crash(_: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("the container died after charging")

    payment.payments.create = crash
    with pytest.raises(RuntimeError):
        invoke(payment, load_event("payment-create.json"))
    payment.payments.create = real_create
    retried = invoke(stack.load_function("PaymentFunction"), load_event("payment-create.json"))
    assert retried["statusCode"] == 201
    assert stack.count_items("GatewayChargesTable") == 1
    assert stack.count_items("PaymentsTable") == 1


def test_concurrent_duplicates_charge_once(racing_stack: LocalStack) -> None:
    """Ten containers send one new request at the same instant; the gateway is slow enough for them to overlap."""
    clients = 10
    event = with_key(load_event("payment-create.json"), "race-1")
    containers = [racing_stack.load_function("PaymentFunction", GATEWAY_LATENCY_MS="500") for _ in range(clients)]
    start = threading.Barrier(clients)
    answers: list[dict[str, Any]] = [{} for _ in range(clients)]

    def client(index: int) -> None:
        start.wait()
        answers[index] = invoke(containers[index], event)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a["statusCode"] for a in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    assert statuses.count(409) >= 1, "the requests did not overlap: nothing was tested"
    assert all(int(a["headers"]["Retry-After"]) >= 1 for a in answers if a["statusCode"] == 409)
    assert len({a["body"] for a in answers if a["statusCode"] == 201}) == 1
    assert racing_stack.count_items("GatewayChargesTable") == 1
    after = invoke(racing_stack.load_function("PaymentFunction"), event)
    assert after["statusCode"] == 201 and after["headers"]["Idempotent-Replayed"] == "true"


def email_batch() -> dict[str, Any]:
    return load_event("email-batch.json")


MALFORMED = "a8c1f2d3-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def test_an_email_batch_sends_each_email_once_and_reports_only_the_malformed(stack: LocalStack) -> None:
    email = stack.load_function("EmailFunction")
    sent = stack.sent_emails()
    first = invoke(email, email_batch(), "EmailFunction")
    assert first == {"batchItemFailures": [{"itemIdentifier": MALFORMED}]}
    assert stack.sent_emails() - sent == 3  # 4 well-formed messages, one email_id enqueued twice
    again = invoke(stack.load_function("EmailFunction"), email_batch(), "EmailFunction")
    assert again == first
    assert stack.sent_emails() - sent == 3


def test_an_email_id_reenqueued_with_another_text_fails_instead_of_sending(stack: LocalStack) -> None:
    email = stack.load_function("EmailFunction")
    batch = email_batch()
    invoke(email, batch, "EmailFunction")
    sent = stack.sent_emails()
    other_text = json.loads(batch["Records"][1]["body"]) | {"text": "another text"}
    changed = batch["Records"][1] | {"messageId": "new-message", "body": json.dumps(other_text)}
    response = invoke(email, {"Records": [changed]}, "EmailFunction")
    assert response == {"batchItemFailures": [{"itemIdentifier": "new-message"}]}
    assert stack.sent_emails() == sent


def test_concurrent_deliveries_of_one_batch_send_once(racing_stack: LocalStack) -> None:
    """Two containers get the same batch at once (SQS delivers at least once): each email still goes out once."""
    containers = [racing_stack.load_function("EmailFunction") for _ in range(2)]
    sent = racing_stack.sent_emails()
    start = threading.Barrier(2)
    responses: list[dict[str, Any]] = [{}, {}]

    def deliver(index: int) -> None:
        start.wait()
        responses[index] = invoke(containers[index], email_batch(), "EmailFunction")

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert racing_stack.sent_emails() - sent == 3
    for response in responses:
        assert {"itemIdentifier": MALFORMED} in response["batchItemFailures"]


def test_every_event_file_is_exercised_here() -> None:
    """events/ are the documented requests (README table); each top-level file must have a test above."""
    source = Path(__file__).read_text()
    files = {path.name for path in EVENTS.glob("*.json")}
    assert files
    assert {name for name in files if f'"{name}"' not in source} == set()
