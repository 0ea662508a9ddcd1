"""What the payment function needs from a payment provider: one charge per idempotency key.

Real gateways (Stripe, Adyen, ...) take an idempotency key with each charge and answer a repeated key with the
first charge. The function hands them a key derived from the request's Idempotency-Key, so even an execution that
crashed after charging and was taken over cannot charge twice. Each charge also carries the function's own
``reference`` for it (its payment id, as gateways keep metadata), and a repeated key returns the first charge's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Charge:
    charge_id: str
    amount: int
    currency: str
    customer: str
    reference: str
    """The payment id the charge was made for: the first one, when the key was repeated."""
    status: str = "succeeded"


class ProviderKeyReuseError(Exception):
    """The provider refused an idempotency key it had already seen with other charge parameters."""


class PaymentProvider(Protocol):
    def charge(
        self,
        *,
        idempotency_key: str,
        reference: str,
        amount: int,
        currency: str,
        customer: str,
        description: str | None,
    ) -> Charge:
        """Charge once per ``idempotency_key``; a repeated key returns the first charge (with its ``reference``)."""
        ...
