"""The example functions, invoked with the files of events/ against moto's server over HTTP (item operations
serialised, as DynamoDB serialises writes to one item) and, for the races, DynamoDB Local.

Each test gets the resources of template.yaml afresh (`demo.stack.LocalStack`) and loads the functions as new
containers. Charges are counted in the simulated gateway's table, emails in moto's SES counter.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from lambda_idempotency.lease import LEASE_MARGIN_MS

from demo.stack import LambdaContext, LocalStack
from demo.story import EVENTS, for_payment, load_event, with_key

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
    assert body(response)["status"] == 422 and body(response)["code"] == "idempotency-key-reused"
    assert stack.count_items("GatewayChargesTable") == 1


def test_a_missing_key_is_400_and_charges_nothing(stack: LocalStack, payment: ModuleType) -> None:
    response = invoke(payment, load_event("payment-missing-key.json"))
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert body(response)["code"] == "idempotency-key-missing"
    assert stack.count_items("GatewayChargesTable") == 0


def test_an_invalid_body_is_400_stores_nothing_and_its_correction_goes_through(
    stack: LocalStack, payment: ModuleType
) -> None:
    invalid = load_event("payment-invalid-body.json")
    response = invoke(payment, invalid)
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert body(response)["code"] == "request-invalid"
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


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_body_nested_100k_levels_deep_is_a_400_problem(
    stack: LocalStack, payment: ModuleType, content_type: str
) -> None:
    event = load_event("payment-invalid-body.json")
    event["headers"]["content-type"] = content_type
    event["body"] = '{"amount": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = invoke(payment, event)
    assert response["statusCode"] == 400
    assert "128 levels" in response["body"]
    assert stack.count_items("IdempotencyTable") == 0


def test_get_reads_the_payment_and_404s_an_unknown_id(payment: ModuleType) -> None:
    created = invoke(payment, load_event("payment-create.json"))
    got = invoke(payment, for_payment(load_event("payment-get.json"), body(created)["payment_id"]))
    assert got["statusCode"] == 200
    assert body(got) == body(created)
    missing = invoke(payment, load_event("payment-get-missing.json"))
    assert missing["statusCode"] == 404
    assert missing["headers"]["Content-Type"] == "application/problem+json"


def test_get_answers_404_to_any_other_caller_exactly_as_to_an_unknown_id(payment: ModuleType) -> None:
    """Payments are the caller's: another scope cannot read one, even knowing its id (nor tell that it exists)."""
    created = body(invoke(payment, load_event("payment-create.json")))
    get = for_payment(load_event("payment-get.json"), created["payment_id"])
    unknown = invoke(payment, for_payment(load_event("payment-get.json"), "pay_" + "0" * 24))
    for other in (
        with_principal(get, "mallory"),
        with_principal(get, "arn:aws:iam::123456789012:user/payments-client"),
    ):
        answer = invoke(payment, other)
        assert answer["statusCode"] == 404 and answer["body"] == unknown["body"]
    assert invoke(payment, get)["statusCode"] == 200


def test_payment_ids_are_random_not_derived_from_the_key(stack: LocalStack, moto_endpoint: str) -> None:
    """The same key from the same caller on two fresh stacks: two unrelated ids (the old ids hashed the key)."""
    first = body(invoke(stack.load_function("PaymentFunction"), load_event("payment-create.json")))
    other_stack = LocalStack.create(dynamodb_endpoint=moto_endpoint, aws_endpoint=moto_endpoint)
    second = body(invoke(other_stack.load_function("PaymentFunction"), load_event("payment-create.json")))
    assert first["payment_id"] != second["payment_id"]
    for payment_id in (first["payment_id"], second["payment_id"]):
        assert re.fullmatch(r"pay_[0-9a-f]{24}", payment_id)


SHORT_MS = 1_000
"""The remaining time of an invocation that times out: its lease (+ the margin). Not 0: a step's fence lets a step
start only while some of the lease is held (an invocation with no time left would be stopped by Lambda)."""


class LambdaTimeout(BaseException):
    """A crash as a Lambda timeout makes it: ``except Exception`` does not see it, so the lease is left to expire."""


def crash(**_: Any) -> None:
    raise LambdaTimeout("the function timed out")


def charge_ids(stack: LocalStack) -> list[str]:
    items = stack.dynamodb.scan(TableName=stack.names["GatewayChargesTable"], ConsistentRead=True)["Items"]
    return [item["charge_id"]["S"] for item in items]


def with_principal(event: dict[str, Any], subject: str) -> dict[str, Any]:
    """``event`` as an HTTP API JWT authorizer passes it on, for the caller ``subject``."""
    claims = {"sub": subject, "iss": "https://issuer.example.com"}
    return event | {"requestContext": event["requestContext"] | {"authorizer": {"jwt": {"claims": claims}}}}


def test_each_answer_is_counted_as_a_metric(payment: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """One Embedded Metric Format document per invocation, naming what happened to the payment."""
    for name in ("payment-create.json", "payment-retry.json", "payment-key-reused.json", "payment-get-missing.json"):
        invoke(payment, load_event(name))
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = [[m["Name"] for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]] for d in documents]
    assert names == [
        ["PaymentCreated"],
        ["PaymentReplayed"],
        ["PaymentRejected422"],
        ["PaymentRead", "PaymentRejected404"],
    ]


def test_a_first_post_costs_claim_charge_step_save_and_commit(stack: LocalStack, count_calls: Any) -> None:
    """The gateway's PutItem is the simulated provider's own; the payment's Put rides in the commit's transaction."""
    container = stack.load_function("PaymentFunction")
    calls = count_calls(container.store.client)
    assert invoke(container, load_event("payment-create.json"))["statusCode"] == 201
    assert calls.calls == ["PutItem", "PutItem", "UpdateItem", "TransactWriteItems"]  # claim, gateway, step, commit
    cold = stack.load_function("PaymentFunction")
    calls = count_calls(cold.store.client)
    assert invoke(cold, load_event("payment-retry.json"))["statusCode"] == 201
    assert calls.calls == ["PutItem"]


def test_an_error_after_the_charge_releases_the_key_and_the_retry_reuses_the_charge(
    stack: LocalStack, payment: ModuleType, count_calls: Any
) -> None:
    """An exception releases the key but keeps the saved step: the retry runs at once and calls no gateway."""

    def unreachable(_: dict[str, Any], **__: Any) -> dict[str, Any]:
        raise RuntimeError("the payments table is unreachable")

    payment.payments.put = unreachable
    with pytest.raises(RuntimeError):
        invoke(payment, load_event("payment-create.json"))
    assert stack.count_items("GatewayChargesTable") == 1 and stack.count_items("PaymentsTable") == 0
    retrying = stack.load_function("PaymentFunction")
    calls = count_calls(retrying.store.client)
    retried = invoke(retrying, load_event("payment-create.json"))
    assert retried["statusCode"] == 201 and "Idempotent-Replayed" not in retried["headers"]
    assert calls.calls == ["PutItem", "UpdateItem", "TransactWriteItems"]  # claim refused, take-over, commit
    assert charge_ids(stack) == [body(retried)["charge_id"]]
    assert stack.count_items("PaymentsTable") == 1


def test_a_crash_before_the_commit_resumes_after_the_lease_without_charging_again(
    racing_stack: LocalStack, count_calls: Any
) -> None:
    """A timeout after the charge step, as the commit is sent: nothing of the payment is written; the retry after
    the lease takes over, gets the saved charge instead of calling the gateway, and commits the payment once."""
    event = load_event("payment-create.json")
    crashing = racing_stack.load_function("PaymentFunction")
    crashing.store.client.meta.events.register("before-call.dynamodb.TransactWriteItems", crash)
    with pytest.raises(LambdaTimeout):
        crashing.handler(event, LambdaContext("PaymentFunction", remaining_ms=SHORT_MS))  # lease: 1 s left + margin
    assert racing_stack.count_items("GatewayChargesTable") == 1
    assert racing_stack.count_items("PaymentsTable") == 0
    time.sleep((SHORT_MS + LEASE_MARGIN_MS) / 1000 + 0.2)

    resuming = racing_stack.load_function("PaymentFunction")
    calls = count_calls(resuming.store.client)
    created = invoke(resuming, event)
    assert created["statusCode"] == 201 and "Idempotent-Replayed" not in created["headers"]
    assert calls.calls == ["PutItem", "UpdateItem", "TransactWriteItems"]  # one PutItem: the claim, no gateway call
    replayed = invoke(racing_stack.load_function("PaymentFunction"), event)
    assert replayed["statusCode"] == 201 and replayed["headers"]["Idempotent-Replayed"] == "true"
    assert replayed["body"] == created["body"]
    payment = body(created)
    assert charge_ids(racing_stack) == [payment["charge_id"]]
    assert racing_stack.count_items("PaymentsTable") == 1
    assert resuming.payments.get(payment["payment_id"], scope=resuming.idempotency.rules.caller_scope(event)) == payment


def test_an_execution_that_lost_its_lease_commits_nothing_and_answers_409(stack: LocalStack) -> None:
    """The first execution stalls after its charge until its lease is over; a retry takes over and completes.
    The stalled one's commit is refused by its fencing token: 409, and one payment, the taker's."""
    event = load_event("payment-create.json")
    stalled = stack.load_function("PaymentFunction")
    taker: dict[str, Any] = {}

    def stall_then_let_a_retry_take_over(**_: Any) -> None:
        time.sleep((SHORT_MS + LEASE_MARGIN_MS) / 1000 + 0.2)
        taker.update(invoke(stack.load_function("PaymentFunction"), event))

    stalled.store.client.meta.events.register_first(
        "before-call.dynamodb.TransactWriteItems", stall_then_let_a_retry_take_over, unique_id="stall"
    )
    lost = stalled.handler(event, LambdaContext("PaymentFunction", remaining_ms=SHORT_MS))
    assert taker["statusCode"] == 201
    assert lost["statusCode"] == 409 and lost["headers"]["Retry-After"] == "1"
    assert body(lost)["code"] == "idempotency-key-in-use"
    stalled.store.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="stall")
    retry = invoke(stalled, event)
    assert retry["body"] == taker["body"] and retry["headers"]["Idempotent-Replayed"] == "true"
    assert charge_ids(stack) == [body(taker)["charge_id"]]
    assert stack.count_items("PaymentsTable") == 1


def test_keys_are_scoped_to_the_caller(stack: LocalStack, payment: ModuleType) -> None:
    """The same key from another authenticated caller is that caller's own payment, never the first caller's 201."""
    iam_caller = invoke(payment, load_event("payment-create.json"))
    alice = invoke(payment, with_principal(load_event("payment-create.json"), "alice"))
    assert alice["statusCode"] == 201 and "Idempotent-Replayed" not in alice["headers"]
    assert body(alice)["payment_id"] != body(iam_caller)["payment_id"]
    again = invoke(payment, with_principal(load_event("payment-retry.json"), "alice"))
    assert again["body"] == alice["body"] and again["headers"]["Idempotent-Replayed"] == "true"
    assert stack.count_items("GatewayChargesTable") == 2


def without_caller(event: dict[str, Any]) -> dict[str, Any]:
    return event | {"requestContext": {k: v for k, v in event["requestContext"].items() if k != "authorizer"}}


def test_behind_an_authorizer_a_request_without_a_caller_is_401(stack: LocalStack, payment: ModuleType) -> None:
    """The template's default Auth=IAM: a request that reached the function without a caller shares nothing."""
    assert payment.idempotency.rules.anonymous_scope is None
    response = invoke(payment, without_caller(load_event("payment-create.json")))
    assert response["statusCode"] == 401 and body(response)["code"] == "principal-required"
    assert stack.count_items("IdempotencyTable") == 0 and stack.count_items("GatewayChargesTable") == 0
    missing = invoke(payment, without_caller(load_event("payment-get-missing.json")))
    assert missing["statusCode"] == 401
    assert invoke(payment, load_event("payment-create.json"))["statusCode"] == 201


def test_auth_none_is_the_demo_opt_in_with_the_anonymous_scope(stack: LocalStack) -> None:
    demo = stack.load_function("PaymentFunction", API_AUTH="NONE")
    created = invoke(demo, without_caller(load_event("payment-create.json")))
    assert created["statusCode"] == 201
    replay = invoke(demo, without_caller(load_event("payment-retry.json")))
    assert replay["headers"]["Idempotent-Replayed"] == "true" and replay["body"] == created["body"]
    get = for_payment(load_event("payment-get.json"), body(created)["payment_id"])
    assert invoke(demo, without_caller(get))["statusCode"] == 200
    assert invoke(demo, get)["statusCode"] == 404  # an authenticated caller is never the anonymous scope


def test_a_key_sent_again_after_its_record_expired_cannot_overwrite_its_payment(
    stack: LocalStack, payment: ModuleType
) -> None:
    """Once the record is gone (TTL), the key runs again: the gateway returns the first charge for the derived key,
    and the payment write, conditioned on a new payment id, is refused with the completion: 409, nothing changed."""
    created = body(invoke(payment, load_event("payment-create.json")))
    (record,) = stack.dynamodb.scan(TableName=stack.names["IdempotencyTable"], ConsistentRead=True)["Items"]
    stack.dynamodb.delete_item(TableName=stack.names["IdempotencyTable"], Key={"pk": record["pk"]})
    again = invoke(stack.load_function("PaymentFunction"), load_event("payment-create.json"))
    assert again["statusCode"] == 409 and body(again)["code"] == "payment-exists"
    scope = payment.idempotency.rules.caller_scope(load_event("payment-create.json"))
    assert payment.payments.get(created["payment_id"], scope=scope) == created
    assert stack.count_items("GatewayChargesTable") == 1 and stack.count_items("PaymentsTable") == 1


def test_concurrent_duplicates_charge_once(racing_stack: LocalStack) -> None:
    """Ten containers send one new request at the same instant; the gateway is slow enough for them to overlap."""
    clients = 10
    event = with_key(load_event("payment-create.json"), "race-1")
    # 2 s: long enough for the ten claims to land while the first still charges, even on a loaded CI machine
    containers = [racing_stack.load_function("PaymentFunction", GATEWAY_LATENCY_MS="2000") for _ in range(clients)]
    start = threading.Barrier(clients)
    answers: list[dict[str, Any]] = [{} for _ in range(clients)]
    raised: list[BaseException] = []

    def client(index: int) -> None:
        start.wait()
        try:
            answers[index] = invoke(containers[index], event)
        except BaseException as error:  # told below, with its traceback, rather than as a missing answer
            raised.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if raised:
        raise raised[0]
    statuses = sorted(a["statusCode"] for a in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    assert statuses.count(409) >= 1, "the requests did not overlap: nothing was tested"
    assert all(int(a["headers"]["Retry-After"]) >= 1 for a in answers if a["statusCode"] == 409)
    assert len({a["body"] for a in answers if a["statusCode"] == 201}) == 1
    assert racing_stack.count_items("GatewayChargesTable") == 1
    after = invoke(racing_stack.load_function("PaymentFunction"), event)
    assert after["statusCode"] == 201 and after["headers"]["Idempotent-Replayed"] == "true"


def test_each_container_flushes_only_its_own_metrics(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    """Containers share a process in the demo and the tests, as they never do in Lambda. With Powertools' `Metrics`,
    whose set is shared by every instance, one container's flush took another's metrics, and a concurrent flush then
    found its set empty and raised (`SchemaValidationError`), which failed a race in CI."""
    waiting, answering = stack.load_function("PaymentFunction"), stack.load_function("PaymentFunction")
    waiting.metrics.add_metric(name="NotYetFlushed", unit="Count", value=1)
    capsys.readouterr()
    assert invoke(answering, load_event("payment-create.json"))["statusCode"] == 201
    flushed = capsys.readouterr().out
    assert "PaymentCreated" in flushed and "NotYetFlushed" not in flushed
    assert "NotYetFlushed" in waiting.metrics.metric_set


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
