"""The payment function: ``POST /payments`` charges once per Idempotency-Key, ``GET /payments/{id}`` reads it.

The domain lives in its own modules (`payment_request`, `provider`, `simulated_gateway`, `payments_table`); this
file wires them to the HTTP API. The idempotency seam is `create_payment`: the one function the decorator wraps,
keyed on the Idempotency-Key header and fingerprinted by the checked body. The body is checked *before* the claim,
so an invalid request stores nothing and its corrected retry under the same key goes through.
"""

from __future__ import annotations

import contextvars
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from lambda_idempotency import (
    DynamoDBStore,
    InProgressError,
    InvalidKeyError,
    KeyReuseError,
    MissingKeyError,
    StoreUnavailableError,
    current,
    idempotent,
)
from payment_request import InvalidPaymentRequest, parse_payment_request
from payments_table import PaymentsTable, payment_id_for
from problems import problem
from provider import PaymentProvider
from simulated_gateway import SimulatedGateway

logger = Logger()
metrics = Metrics()
api = APIGatewayHttpResolver()

store = DynamoDBStore(os.environ["IDEMPOTENCY_TABLE"])
payments = PaymentsTable(os.environ["PAYMENTS_TABLE"], store.client)
provider: PaymentProvider = SimulatedGateway(
    os.environ["GATEWAY_TABLE"], store.client, latency_s=float(os.environ.get("GATEWAY_LATENCY_MS", "0")) / 1000
)

_ran_here: contextvars.ContextVar[bool] = contextvars.ContextVar("payment_ran_here", default=False)
"""Set when `create_payment` really ran in this request; otherwise its result was a replay."""


def idempotency_key(event: dict[str, Any]) -> str | None:
    """The Idempotency-Key header, whatever its case (HTTP API lower-cases names; REST APIs and ALBs do not)."""
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "idempotency-key":
            return str(value)
    return None


# The seam. When lambda_idempotency.http lands, `idempotent_http(store, operation="payments.create",
# validate=parse_payment_request)` replaces this decorator, `idempotency_key`, `_ran_here` and the 4xx handlers below;
# `current().derived_key("charge")` replaces the gateway key and `current().write(...)` the payment's PutItem.
@idempotent(
    store,
    operation="payments.create",
    key=idempotency_key,
    fingerprint=lambda event: parse_payment_request(event).as_dict(),
    ttl=timedelta(hours=24),
)
def create_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Charge once and record the payment; the returned payment is what every retry gets back."""
    _ran_here.set(True)
    request = parse_payment_request(event)
    execution = current()
    charge = provider.charge(
        idempotency_key=f"{execution.record_id}#charge",
        amount=request.amount,
        currency=request.currency,
        customer=request.customer,
        description=request.description,
    )
    return payments.create(
        {
            "payment_id": payment_id_for(execution.record_id),
            **request.as_dict(),
            "charge_id": charge.charge_id,
            "status": charge.status,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )


@api.post("/payments")
def post_payment() -> Response:
    event = api.current_event.raw_event
    parse_payment_request(event)
    _ran_here.set(False)
    payment = create_payment(event, api.lambda_context)
    replayed = not _ran_here.get()
    metrics.add_metric(name="PaymentReplayed" if replayed else "PaymentCreated", unit=MetricUnit.Count, value=1)
    headers = {"Location": f"/payments/{payment['payment_id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(status_code=201, content_type="application/json", body=json.dumps(payment), headers=headers)


@api.get("/payments/<payment_id>")
def get_payment(payment_id: str) -> Response:
    metrics.add_metric(name="PaymentRead", unit=MetricUnit.Count, value=1)
    payment = payments.get(payment_id)
    if payment is None:
        return rejected(404, "Not Found", f"no payment {payment_id}")
    return Response(status_code=200, content_type="application/json", body=json.dumps(payment))


def rejected(status: int, title: str, detail: str, **extra: Any) -> Response:
    """A problem answer, counted by status: a surge of 409s or 422s says something about the clients."""
    metrics.add_metric(name=f"PaymentRejected{status}", unit=MetricUnit.Count, value=1)
    return problem(status, title, detail, **extra)


@api.exception_handler(InvalidPaymentRequest)
def invalid_request(error: InvalidPaymentRequest) -> Response:
    return rejected(400, "Invalid payment request", str(error), errors=error.errors)


@api.exception_handler([MissingKeyError, InvalidKeyError])
def bad_key(error: Exception) -> Response:
    detail = "an Idempotency-Key header of 1 to 255 characters is required"
    return rejected(400, "Idempotency-Key missing or invalid", detail)


@api.exception_handler(KeyReuseError)
def key_reused(error: KeyReuseError) -> Response:
    return rejected(422, "Idempotency-Key reused", "this key was already used with another request body")


@api.exception_handler(InProgressError)
def in_progress(error: InProgressError) -> Response:
    detail = "a request with this key is still being processed; retry later"
    return rejected(409, "Request in progress", detail, headers={"Retry-After": str(error.retry_after)})


@api.exception_handler(StoreUnavailableError)
def unavailable(error: StoreUnavailableError) -> Response:
    logger.exception("idempotency store unavailable; nothing was charged")
    return rejected(503, "Service unavailable", "retry later", headers={"Retry-After": "1"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api.resolve(event, context)
