"""The HTTP adapter: every status code and header of DESIGN.md "HTTP semantics", for each event shape.

Most tests run on `MemoryStore` (the rules live in the adapter); `test_lifecycle_on_every_backend` runs the
full cycle on memory, moto, moto's server and DynamoDB Local. Concurrency here is two threads on one key.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from lambda_idempotency import DynamoDBStore, MemoryStore, current
from lambda_idempotency.http import IdempotencyMiddleware, RequestValidationError, idempotent_http
from lambda_idempotency.stores.base import Store

from tests.conftest import FakeClock, http_client, new_business_table, new_dynamodb_store
from tests.faults import Fault, FaultInjector
from tests.http_events import KEY, SHAPES, headers_of, http_event, options_for, problem_of

ALL_SHAPES = list(SHAPES)
REPLAYED = "idempotent-replayed"


class Payments:
    """A handler that counts its runs and answers as a test tells it to."""

    def __init__(self, shape: str, status: int = 201) -> None:
        self.shape = shape
        self.status = status
        self.runs = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.raises: BaseException | None = None

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.runs += 1
        self.started.set()
        assert self.release.wait(10)
        if self.raises is not None:
            raise self.raises
        body = json.dumps({"id": f"pay_{self.runs}", "amount": 1250})
        response: dict[str, Any] = {"statusCode": self.status, "body": body, "isBase64Encoded": False}
        if self.shape == "alb_multi":
            response["multiValueHeaders"] = {"Content-Type": ["application/json"], "Set-Cookie": ["a=1", "b=2"]}
        else:
            response["headers"] = {"Content-Type": "application/json", "Location": f"/payments/pay_{self.runs}"}
        if self.shape in ("http_api", "function_url"):
            response["cookies"] = ["session=s1; Secure; HttpOnly", "theme=dark"]
        if self.shape == "rest":
            response["multiValueHeaders"] = {"Set-Cookie": ["session=s1; Secure", "theme=dark"]}
        if self.shape == "alb":
            response["statusDescription"] = f"{self.status} Created"
        return response


def make_api(store: Store, shape: str, status: int = 201, **options: Any) -> tuple[Callable[..., Any], Payments]:
    payments = Payments(shape, status)
    api = idempotent_http(store, operation="payments.create", **{**options_for(shape), **options})(payments)
    return api, payments


def without_replayed(response: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(response)
    for field in ("headers", "multiValueHeaders"):
        if isinstance(copied.get(field), dict):
            copied[field] = {k: v for k, v in copied[field].items() if k.lower() != REPLAYED}
    return copied


def while_in_flight(
    api: Callable[..., Any],
    payments: Payments,
    first_event: dict[str, Any],
    duplicate_event: dict[str, Any],
    *,
    release_after: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send ``duplicate_event`` while ``first_event`` runs; the first is released after ``release_after`` s
    (None: once the duplicate is answered). Returns both responses."""
    payments.release.clear()
    first: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: first.append(api(first_event, None)))
    worker.start()
    assert payments.started.wait(10)
    if release_after is not None:
        threading.Timer(release_after, payments.release.set).start()
    try:
        duplicate = api(duplicate_event, None)
    finally:
        payments.release.set()
        worker.join()
    return first[0], duplicate


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_first_response_is_stored_and_replayed_unchanged_plus_one_header(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape, local_cache=False)
    first = api(http_event(shape), None)
    assert first["statusCode"] == 201 and REPLAYED not in headers_of(first)
    second = api(http_event(shape), None)
    assert payments.runs == 1
    assert headers_of(second)[REPLAYED] == "true"
    assert without_replayed(second) == first


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_missing_key_is_400_for_post_and_patch_and_unguarded_otherwise(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    for method in ("POST", "PATCH"):
        response = api(http_event(shape, method=method, key=None), None)
        assert response["statusCode"] == 400
        assert problem_of(response)["code"] == "idempotency-key-missing"
    assert payments.runs == 0
    for _ in range(2):
        assert api(http_event(shape, method="PUT", key=None), None)["statusCode"] == 201
    assert payments.runs == 2


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize(
    "bad_key",
    ["", "x" * 256, "caf\u00e9", "tab\there", '"unterminated', '"a"b', '"bad\\escape"', '""'],
    ids=["empty", "256-chars", "non-ascii", "control-char", "unterminated", "after-quote", "bad-escape", "empty-sf"],
)
def test_invalid_key_is_400_and_runs_nothing(shape: str, bad_key: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    response = api(http_event(shape, key=bad_key), None)
    assert response["statusCode"] == 400
    assert problem_of(response)["code"] == "idempotency-key-invalid"
    assert payments.runs == 0


@pytest.mark.parametrize("shape", ["rest", "alb_multi"])
def test_repeated_header_with_different_values_is_400(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    response = api(http_event(shape, key=["k1", "k2"]), None)
    assert problem_of(response)["code"] == "idempotency-key-invalid"
    assert api(http_event(shape, key=["k1", "k1"]), None)["statusCode"] == 201
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_key_limits_and_structured_field_form_name_the_same_key(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    longest = "k" * 254 + '"'
    assert api(http_event(shape, key=longest), None)["statusCode"] == 201
    quoted = '"' + longest.replace('"', '\\"') + '"'
    replay = api(http_event(shape, key=quoted), None)
    assert headers_of(replay)[REPLAYED] == "true"
    assert api(http_event(shape, key=" spaced key ~!"), None)["statusCode"] == 201
    assert payments.runs == 2


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_same_key_with_another_request_is_422(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape, local_cache=False)
    assert api(http_event(shape), None)["statusCode"] == 201
    for changed in (
        http_event(shape, body={"amount": 9999, "currency": "EUR", "card": "tok_visa"}),
        http_event(shape, query={"expand": ["customer"]}),
        http_event(shape, path="/refunds"),
        http_event(shape, method="PATCH"),
    ):
        response = api(changed, None)
        assert response["statusCode"] == 422
        assert problem_of(response)["code"] == "idempotency-key-reused"
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_key_sent_to_another_operation_is_another_execution_not_a_422(shape: str) -> None:
    """docs/http.md: the 422 compares requests under one ``operation``. A key is scoped to its operation and caller
    (one record per operation, scope and key), so the same key sent to another operation's handler runs there as a
    new key: neither a replay of the first operation's response nor a 422 (Stripe's keys span endpoints)."""
    store = MemoryStore()
    payments_api, payments = make_api(store, shape)
    refunds = Payments(shape)
    refunds_api = idempotent_http(store, operation="refunds.create", **options_for(shape))(refunds)
    assert payments_api(http_event(shape), None)["statusCode"] == 201
    response = refunds_api(http_event(shape, path="/refunds", body={"payment": "pay_1"}), None)
    assert response["statusCode"] == 201 and REPLAYED not in headers_of(response)
    assert payments.runs == refunds.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_json_whitespace_key_order_base64_and_query_order_do_not_change_the_fingerprint(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    query = {"a": ["1", "x y"], "b": ["2"]}
    api(http_event(shape, query=query, body='{"amount": 1250, "currency": "EUR", "card": "tok_visa"}'), None)
    same = [
        http_event(
            shape, query=dict(reversed(query.items())), body='{"card":"tok_visa","currency":"EUR","amount":1250}'
        ),
        http_event(shape, query=query, base64_body=True),
    ]
    for event in same:
        assert headers_of(api(event, None))[REPLAYED] == "true"
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ["rest", "http_api"])
def test_a_json_number_counts_as_written_in_kind(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape, local_cache=False)
    assert api(http_event(shape, body='{"amount": 1250.0}'), None)["statusCode"] == 201
    assert headers_of(api(http_event(shape, body='{"amount": 1250.00}'), None))[REPLAYED] == "true"
    reused = api(http_event(shape, body='{"amount": 1250}'), None)  # an integer, not the float first sent
    assert reused["statusCode"] == 422 and problem_of(reused)["code"] == "idempotency-key-reused"
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_in_flight_duplicate_is_409_with_retry_after(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape, lease=30)
    first, response = while_in_flight(api, payments, http_event(shape), http_event(shape))
    assert response["statusCode"] == 409
    assert problem_of(response)["code"] == "idempotency-key-in-use"
    assert headers_of(response)["retry-after"] == "1"
    assert first["statusCode"] == 201 and payments.runs == 1
    if shape.startswith("alb"):
        assert response["statusDescription"] == "409 Conflict"
    if shape == "alb_multi":
        assert "headers" not in response and response["multiValueHeaders"]["Retry-After"] == [
            headers_of(response)["retry-after"]
        ]


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("found_by", ["renewal", "heartbeat"])
def test_a_run_whose_key_was_taken_over_is_409_not_an_unhandled_error(
    shape: str, found_by: str, clock: FakeClock
) -> None:
    """A run that stalled past its lease while a retry took its key over learns it from a refused renewal (its
    completion then raises `LeaseLostError` before sending anything) or from its own ``heartbeat()``/``step()``
    (which raise it). Over HTTP that is a key in use by another execution: a 409 with ``Retry-After``, never an
    unhandled exception (docs/http.md: conflicts are HTTP answers), and the retry replays the new owner's response."""
    payments = Payments(shape)

    def stalls_then_is_taken_over(event: dict[str, Any], context: Any) -> Any:
        response = payments(event, context)
        if payments.runs == 1:
            clock.advance(60)  # the first run stalls past its lease: a retry takes the key over and completes
            assert api(event, None)["statusCode"] == 201
            if found_by == "heartbeat":
                current().heartbeat()  # refused: raises LeaseLostError out of the handler
            lease, deadline = current().lease, time.monotonic() + 5
            while lease is not None and lease.lost is None and time.monotonic() < deadline:
                time.sleep(0.02)  # the background renewal (every 0.1 s) is refused: the lease is lost
        return response

    options = {"lease": 0.3, "clock": clock, "local_cache": False, **options_for(shape)}
    api = idempotent_http(MemoryStore(), operation="payments.create", **options)(stalls_then_is_taken_over)
    response = api(http_event(shape), None)
    assert response["statusCode"] == 409, response
    assert problem_of(response)["code"] == "idempotency-key-in-use"
    assert headers_of(response)["retry-after"] == "1"
    replay = api(http_event(shape), None)
    assert headers_of(replay)[REPLAYED] == "true" and json.loads(replay["body"])["id"] == "pay_2"
    assert payments.runs == 2


@pytest.mark.parametrize("call", ["commit", "step"])
def test_a_store_outage_during_the_run_or_its_commit_is_a_503_problem(call: str, moto_endpoint: str) -> None:
    """The store fails after the claim: a step's save, or the commit of the handler's writes (each tried 3 times).
    Over HTTP that is the 503 problem with ``Retry-After`` the claim's outage gets, not an unhandled
    `StoreUnavailableError`; nothing was applied, and once the store answers again a retry gets the outcome. On
    moto's server with a client of its own (the faults stay on it): moto in-process answers botocore's
    ``before-send`` itself."""
    client = http_client(moto_endpoint)
    store, table = new_dynamodb_store(client), new_business_table(client)
    outage = FaultInjector(client, call, Fault.SERVER_ERROR, times=None)

    def charges(event: dict[str, Any], context: Any) -> Any:
        if call == "step":
            current().step("authorise", lambda: "auth-1")
        current().write({"Put": {"TableName": table, "Item": {"id": {"S": "pay-1"}}}})
        return {"statusCode": 201, "body": "charged"}

    api = idempotent_http(store, operation="payments.create", local_cache=False, lease=30, **options_for("rest"))(
        charges
    )
    response = api(http_event("rest"), None)
    assert response["statusCode"] == 503, response
    assert problem_of(response)["code"] == "store-unavailable" and headers_of(response)["retry-after"] == "1"
    assert "Item" not in client.get_item(TableName=table, Key={"id": {"S": "pay-1"}})
    assert outage.injected >= 3
    outage.times = outage.injected  # the store answers again
    retried = api(http_event("rest"), None)
    if call == "step":  # the key was released: the retry runs again, and its commit lands
        assert retried["statusCode"] == 201
        assert "Item" in client.get_item(TableName=table, Key={"id": {"S": "pay-1"}})
    else:  # the commit may have landed unseen: the key stays held until its lease ends, and the retry waits
        assert retried["statusCode"] == 409 and headers_of(retried)["retry-after"] == "1"


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_wait_replays_the_original_once_it_completes(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape, wait=5, lease=30)
    first, duplicate = while_in_flight(api, payments, http_event(shape), http_event(shape), release_after=0.2)
    assert headers_of(duplicate)[REPLAYED] == "true"
    assert without_replayed(duplicate) == first
    assert payments.runs == 1


def test_retry_after_is_the_lease_left_up_to_max_retry_after() -> None:
    api, payments = make_api(MemoryStore(), "http_api", lease=30, max_retry_after=120)
    _, response = while_in_flight(api, payments, http_event("http_api"), http_event("http_api"))
    assert 29 <= int(headers_of(response)["retry-after"]) <= 31


def test_wait_answers_409_when_the_original_outlasts_it() -> None:
    api, payments = make_api(MemoryStore(), "http_api", wait=0.3, lease=30)
    _, response = while_in_flight(api, payments, http_event("http_api"), http_event("http_api"))
    assert response["statusCode"] == 409 and "retry-after" in headers_of(response)


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_5xx_releases_the_key_and_4xx_is_stored(shape: str) -> None:
    store = MemoryStore()
    api, payments = make_api(store, shape, status=503)
    assert api(http_event(shape), None)["statusCode"] == 503
    assert not store._records
    payments.status = 402
    assert api(http_event(shape), None)["statusCode"] == 402
    replay = api(http_event(shape), None)
    assert replay["statusCode"] == 402 and headers_of(replay)[REPLAYED] == "true"
    assert payments.runs == 2


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_an_exception_releases_the_key_and_propagates(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    payments.raises = RuntimeError("card network down")
    with pytest.raises(RuntimeError):
        api(http_event(shape), None)
    payments.raises = None
    assert api(http_event(shape), None)["statusCode"] == 201
    assert payments.runs == 2


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_validate_hook_rejects_before_the_claim_and_a_corrected_retry_works(shape: str) -> None:
    def validate(event: dict[str, Any]) -> None:
        if "currency" not in (event.get("body") or "") and not event.get("isBase64Encoded"):
            raise RequestValidationError("currency is required", errors=[{"loc": ["body", "currency"]}])

    store = MemoryStore()
    api, payments = make_api(store, shape, validate=validate)
    response = api(http_event(shape, body={"amount": 1}), None)
    assert response["statusCode"] == 400
    problem = problem_of(response)
    assert problem["code"] == "request-invalid" and problem["errors"] == [{"loc": ["body", "currency"]}]
    assert payments.runs == 0 and not store._records
    assert api(http_event(shape), None)["statusCode"] == 201


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_disabled_by_environment_validates_and_runs_every_request(shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`LAMBDA_IDEMPOTENCY_DISABLED=1` means the same for the HTTP adapter as for the decorators: a pass-through."""

    def validate(event: dict[str, Any]) -> None:
        if "currency" not in (event.get("body") or "") and not event.get("isBase64Encoded"):
            raise RequestValidationError("currency is required")

    monkeypatch.setenv("LAMBDA_IDEMPOTENCY_DISABLED", "1")
    store = MemoryStore()
    api, payments = make_api(store, shape, validate=validate)
    responses = [api(http_event(shape), None), api(http_event(shape), None), api(http_event(shape, key=None), None)]
    assert [r["statusCode"] for r in responses] == [201, 201, 201]
    assert all(REPLAYED not in headers_of(r) for r in responses)
    assert api(http_event(shape, body={"amount": 1}), None)["statusCode"] == 400
    assert payments.runs == 3 and not store._records


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_validation_error_from_the_handler_releases_the_key(shape: str) -> None:
    store = MemoryStore()
    api, payments = make_api(store, shape)
    payments.raises = RequestValidationError("card expired")
    response = api(http_event(shape, body={"card": "tok_expired"}), None)
    assert problem_of(response)["detail"] == "card expired"
    assert not store._records
    payments.raises = None
    assert api(http_event(shape), None)["statusCode"] == 201
    assert payments.runs == 2


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_another_principal_never_receives_a_stored_response(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    alice = api(http_event(shape, principal="alice"), None)
    mallory = api(http_event(shape, principal="mallory"), None)
    assert REPLAYED not in headers_of(mallory)
    assert json.loads(mallory["body"])["id"] != json.loads(alice["body"])["id"]
    other_body = api(http_event(shape, principal="eve", body={"amount": 1}), None)
    assert other_body["statusCode"] == 201
    assert payments.runs == 3


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_another_principal_is_not_blocked_by_an_in_flight_key(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    alice, mallory = while_in_flight(
        api, payments, http_event(shape, principal="alice"), http_event(shape, principal="mallory"), release_after=0.1
    )
    assert alice["statusCode"] == mallory["statusCode"] == 201
    assert REPLAYED not in headers_of(mallory)
    assert payments.runs == 2


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_no_principal_is_401_unless_an_anonymous_scope_is_configured(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    response = api(http_event(shape, principal=None), None)
    assert response["statusCode"] == 401 and problem_of(response)["code"] == "principal-required"
    assert payments.runs == 0
    anonymous, _ = make_api(MemoryStore(), shape, anonymous_scope="anonymous")
    assert anonymous(http_event(shape, principal=None), None)["statusCode"] == 201


@pytest.mark.parametrize("shape", ["http_api", "function_url"])
def test_v2_inferred_response_is_stored_as_an_explicit_200(shape: str) -> None:
    runs: list[int] = []

    @idempotent_http(MemoryStore(), operation="inferred")
    def handler(event: dict[str, Any], context: Any) -> Any:
        runs.append(1)
        return {"id": "pay_1"}

    first = handler(http_event(shape), None)
    assert first == {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"id": "pay_1"}'}
    assert headers_of(handler(http_event(shape), None))[REPLAYED] == "true"
    assert len(runs) == 1


@pytest.mark.parametrize("shape", ["rest", "alb"])
def test_a_response_without_status_code_is_a_type_error_and_releases(shape: str) -> None:
    store = MemoryStore()

    @idempotent_http(store, operation="broken", **options_for(shape))
    def handler(event: dict[str, Any], context: Any) -> Any:
        return {"id": "pay_1"}

    with pytest.raises(TypeError, match="statusCode"):
        handler(http_event(shape), None)
    assert not store._records


def test_invalid_base64_body_is_400() -> None:
    api, payments = make_api(MemoryStore(), "function_url")
    event = http_event("function_url")
    event["body"], event["isBase64Encoded"] = "not base64!", True
    assert problem_of(api(event, None))["code"] == "request-invalid"
    assert payments.runs == 0


def test_store_unreachable_is_503_with_retry_after() -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    api, payments = make_api(DynamoDBStore("unreachable", client=client), "http_api")
    response = api(http_event("http_api"), None)
    assert response["statusCode"] == 503 and headers_of(response)["retry-after"] == "1"
    assert payments.runs == 0


def test_the_handler_can_reach_its_execution() -> None:
    from lambda_idempotency import current

    seen: list[str] = []

    @idempotent_http(MemoryStore(), operation="payments.create")
    def handler(event: dict[str, Any], context: Any) -> Any:
        seen.append(current().key)
        return {"statusCode": 201, "body": ""}

    handler(http_event("http_api"), None)
    assert seen == [KEY]


def test_lifecycle_on_every_backend(store: Store) -> None:
    api, payments = make_api(store, "http_api", local_cache=False)
    assert api(http_event("http_api"), None)["statusCode"] == 201
    assert headers_of(api(http_event("http_api"), None))[REPLAYED] == "true"
    assert api(http_event("http_api", body={"amount": 1}), None)["statusCode"] == 422
    assert REPLAYED not in headers_of(api(http_event("http_api", principal="mallory"), None))
    payments.status = 500
    assert api(http_event("http_api", key="k2"), None)["statusCode"] == 500
    payments.status = 201
    assert api(http_event("http_api", key="k2"), None)["statusCode"] == 201
    assert payments.runs == 4


@pytest.mark.parametrize("typo", ["fail_opn", "requried", "anonymus_scope", "cache_errors"])
def test_an_unknown_option_is_a_type_error_not_silently_ignored(typo: str) -> None:
    """The decorators refuse unknown options; the adapter accepted them, so ``requried=False`` left keys required
    and ``anonymus_scope=`` answered every anonymous caller 401 with no hint why. Misconfiguration fails loudly."""
    with pytest.raises(TypeError, match=typo):
        idempotent_http(MemoryStore(), operation="o", **{typo: True})(lambda event, context: {})
    with pytest.raises(TypeError, match=typo):
        IdempotencyMiddleware(MemoryStore(), operation="o", **{typo: True})
