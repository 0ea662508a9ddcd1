"""The payment function: ``POST /payments`` charges once per Idempotency-Key, ``GET /payments/{id}`` reads it.

The domain lives in its own modules (`payment_request`, `provider`, `simulated_gateway`, `payments_table`); this
file wires them to the HTTP API. ``POST /payments`` runs behind the HTTP adapter's Powertools middleware: the key
comes from the ``Idempotency-Key`` header, scoped to the caller, and the body is checked before the claim. Inside,
the charge is a step (saved in the record before the function goes on, with a gateway key derived from the
request's) and the payment record is a write of the fenced commit (applied with the key's completion, or not at all).
Payment ids are random, each payment keeps its caller's scope, and ``GET`` shows a payment to that scope only.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from lambda_idempotency import (
    DynamoDBStore,
    KmsEncryption,
    MissingScopeError,
    S3Offload,
    WriteConditionError,
    current,
)
from lambda_idempotency.http import IdempotencyMiddleware
from payment_request import parse_payment_request
from payments_table import PaymentsTable, new_payment_id
from problems import problem
from provider import PaymentProvider
from simulated_gateway import SimulatedGateway

logger = Logger()
metrics = EphemeralMetrics()  # this container's own: Metrics() shares one set with every instance in a process
api = APIGatewayHttpResolver()

key_arn = os.environ.get("IDEMPOTENCY_KMS_KEY_ARN")
store = DynamoDBStore(
    os.environ["IDEMPOTENCY_TABLE"],
    offload=S3Offload(os.environ["RESULTS_BUCKET"], prefix="payment/"),
    encryption=KmsEncryption(key_arn) if key_arn else None,
)
payments = PaymentsTable(os.environ["PAYMENTS_TABLE"], store.client)
provider: PaymentProvider = SimulatedGateway(
    os.environ["GATEWAY_TABLE"], store.client, latency_s=float(os.environ.get("GATEWAY_LATENCY_MS", "0")) / 1000
)

idempotency = IdempotencyMiddleware(
    store,
    operation="payments.create",
    validate=parse_payment_request,
    anonymous_scope=os.environ["ANONYMOUS_SCOPE"] if os.environ["API_AUTH"] == "NONE" else None,
    ttl=timedelta(hours=24),
)
"""Callers are scoped by the API's authorizer (``API_AUTH``: IAM or JWT). Only an API deployed with ``Auth=NONE``, a
demo, scopes requests without identity data to ``ANONYMOUS_SCOPE``; with an authorizer such requests are 401."""


def count_outcome(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """One metric per answer: created, replayed, or rejected by status (a surge of 409s or 422s says something)."""
    response = next_middleware(app)
    if response.headers.get("Idempotent-Replayed") == "true":
        name = "PaymentReplayed"
    elif response.status_code == 201:
        name = "PaymentCreated"
    else:
        name = f"PaymentRejected{response.status_code}"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return response


def rejected(status: int, code: str, detail: str) -> Response[str]:
    """A problem answered outside `count_outcome` (GET, exception handlers), counted the same way."""
    metrics.add_metric(name=f"PaymentRejected{status}", unit=MetricUnit.Count, value=1)
    return problem(status, code, detail)


@api.post("/payments", middlewares=[count_outcome, idempotency])
def create_payment() -> Response[str]:
    """Charge once and record the payment; the 201 is stored and replayed to every retry of the key."""
    request = parse_payment_request(api.current_event.raw_event)
    execution = current()
    charge = execution.step(
        "charge",
        provider.charge,
        idempotency_key=execution.derived_key("charge"),
        reference=new_payment_id(),  # the gateway returns the first charge's after a crash or an expired record
        amount=request.amount,
        currency=request.currency,
        customer=request.customer,
        description=request.description,
    )
    payment = {
        "payment_id": charge.reference,
        **request.as_dict(),
        "charge_id": charge.charge_id,
        "status": charge.status,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    assert execution.scope is not None  # the adapter always scopes a key to its caller
    execution.write(payments.put(payment, scope=execution.scope))
    headers = {"Location": f"/payments/{payment['payment_id']}"}
    return Response(status_code=201, content_type="application/json", body=json.dumps(payment), headers=headers)


@api.get("/payments/<payment_id>")
def get_payment(payment_id: str) -> Response[str]:
    """The caller's own payment; another caller's answers 404, exactly as an unknown id does."""
    metrics.add_metric(name="PaymentRead", unit=MetricUnit.Count, value=1)
    try:
        scope = idempotency.rules.caller_scope(api.current_event.raw_event)
    except MissingScopeError as exc:
        return rejected(401, "principal-required", str(exc))
    payment = payments.get(payment_id, scope=scope)
    if payment is None:
        return rejected(404, "payment-not-found", "no such payment")
    return Response(status_code=200, content_type="application/json", body=json.dumps(payment))


@api.exception_handler(WriteConditionError)
def payment_exists(error: WriteConditionError) -> Response[str]:
    """The payment of this key exists already: its idempotency record expired (24 h) and the key was sent again."""
    detail = "this Idempotency-Key already created a payment and has expired; send a new payment with a new key"
    return rejected(409, "payment-exists", detail)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api.resolve(event, context)
