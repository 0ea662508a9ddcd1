"""The adapter as a Powertools for AWS Lambda Event Handler middleware.

For users of ``APIGatewayRestResolver``, ``APIGatewayHttpResolver``, ``LambdaFunctionUrlResolver`` and
``ALBResolver``: add ``IdempotencyMiddleware(store, operation=...)`` to a route's ``middlewares``. The route's
`Response` is stored as its parts (status, headers, body, cookies) and rebuilt on replay, so the resolver
serialises it for the event shape as it does any response. Exceptions the route raises release the key before
the resolver's exception handlers see them: return a `Response` for outcomes that should be replayed.
Powertools is imported by the resolver the user already runs; this module imports none of it at load time.
"""

from __future__ import annotations

from typing import Any, Unpack

from ..stores.base import Store
from .adapter import HttpIdempotency, HttpOptions
from .response import ProxyResponse


class IdempotencyMiddleware:
    """``@app.post("/payments", middlewares=[IdempotencyMiddleware(store, operation="payments.create")])``."""

    def __init__(self, store: Store, *, operation: str, **options: Unpack[HttpOptions]) -> None:
        self.rules = HttpIdempotency(store, operation=operation, **options)
        self.__name__ = f"IdempotencyMiddleware({operation})"

    def __call__(self, app: Any, next_middleware: Any) -> Any:
        event = app.current_event.raw_event
        answer = self.rules.handle(event, app.lambda_context, lambda: _stored_form(next_middleware(app)))
        return _response(answer)


def _stored_form(response: Any) -> ProxyResponse:
    """A Powertools `Response` as plain data the store can keep (cookies as their ``Set-Cookie`` text)."""
    return {
        "statusCode": response.status_code,
        "headers": dict(response.headers),
        "body": response.body,
        "cookies": [str(cookie) for cookie in response.cookies],
        "compress": response.compress,
    }


def _response(answer: ProxyResponse) -> Any:
    from aws_lambda_powertools.event_handler import Response

    headers = dict(answer.get("multiValueHeaders") or answer.get("headers") or {})
    response = Response(
        status_code=answer["statusCode"],
        body=answer.get("body"),
        headers=headers,
        cookies=answer.get("cookies") or [],
        compress=answer.get("compress"),
    )
    return response
