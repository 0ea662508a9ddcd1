"""The body of ``POST /payments``, checked before anything is claimed or charged.

`parse_payment_request` is the idempotency adapter's ``validate`` hook: a request that fails here is answered 400
(problem+json, one error per field) before anything is claimed, so the client can correct it and retry with the
same Idempotency-Key.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from lambda_idempotency import InputTooDeepError, depth
from lambda_idempotency.http import RequestValidationError

MAX_AMOUNT = 99_999_999
"""Largest charge in minor units (eight digits, as card gateways accept)."""
CURRENCY = re.compile(r"[A-Z]{3}")
MAX_CUSTOMER = 255
MAX_DESCRIPTION = 1000
FIELDS = {"amount", "currency", "customer", "description"}


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    amount: int
    currency: str
    customer: str
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "amount": self.amount,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
        }


class InvalidPaymentRequest(RequestValidationError):
    """The body is not a valid payment request; ``errors`` names each field that is wrong and why."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['detail']}" for e in errors), errors)


def parse_payment_request(event: dict[str, Any]) -> PaymentRequest:
    """The payment request in an API Gateway (HTTP API) event's body, or `InvalidPaymentRequest`."""
    data = _json_body(event)
    errors: list[dict[str, str]] = [{"field": name, "detail": "unknown field"} for name in sorted(set(data) - FIELDS)]
    amount = data.get("amount")
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        errors.append({"field": "amount", "detail": f"an integer of minor units, 1 to {MAX_AMOUNT}"})
    currency = data.get("currency")
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        errors.append({"field": "currency", "detail": "an ISO 4217 code: three upper-case letters"})
    customer = data.get("customer")
    if not isinstance(customer, str) or not customer.strip() or len(customer) > MAX_CUSTOMER:
        errors.append({"field": "customer", "detail": f"a non-empty id of at most {MAX_CUSTOMER} characters"})
    description = data.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION):
        errors.append({"field": "description", "detail": f"a string of at most {MAX_DESCRIPTION} characters"})
    if errors:
        raise InvalidPaymentRequest(errors)
    return PaymentRequest(amount=int(amount), currency=str(currency), customer=str(customer), description=description)


def _json_body(event: dict[str, Any]) -> dict[str, Any]:
    body = event.get("body")
    if body is None or body == "":
        raise InvalidPaymentRequest([{"field": "body", "detail": "a JSON object is required"}])
    try:
        text = base64.b64decode(body, validate=True).decode() if event.get("isBase64Encoded") else body
        data = depth.loads(text)  # whatever the content type says: json.loads recurses once per level
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPaymentRequest([{"field": "body", "detail": "not valid JSON"}]) from None
    except InputTooDeepError as exc:
        raise InvalidPaymentRequest([{"field": "body", "detail": str(exc)}]) from None
    if not isinstance(data, dict):
        raise InvalidPaymentRequest([{"field": "body", "detail": "a JSON object is required"}])
    return data
