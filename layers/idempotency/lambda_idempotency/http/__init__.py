"""``Idempotency-Key`` for HTTP APIs on Lambda: API Gateway REST and HTTP APIs, Function URLs and ALB.

``idempotent_http`` wraps a proxy handler; ``IdempotencyMiddleware`` does the same inside a Powertools Event
Handler resolver. See `adapter` for the rules and the status codes.
"""

from __future__ import annotations

from .adapter import HttpIdempotency, HttpOptions, idempotent_http
from .powertools import IdempotencyMiddleware
from .principal import principal_of
from .request import NotAnHttpEventError
from .validation import RequestValidationError

__all__ = [
    "HttpIdempotency",
    "HttpOptions",
    "IdempotencyMiddleware",
    "NotAnHttpEventError",
    "RequestValidationError",
    "idempotent_http",
    "principal_of",
]
