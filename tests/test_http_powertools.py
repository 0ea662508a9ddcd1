"""`IdempotencyMiddleware` inside Powertools' Event Handler resolvers, one per event shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import (
    ALBResolver,
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    LambdaFunctionUrlResolver,
    Response,
)
from aws_lambda_powertools.shared.cookies import Cookie
from lambda_idempotency import MemoryStore
from lambda_idempotency.http import IdempotencyMiddleware, RequestValidationError

from tests.http_events import http_event, options_for, problem_of

RESOLVERS = {
    "rest": APIGatewayRestResolver,
    "http_api": APIGatewayHttpResolver,
    "function_url": LambdaFunctionUrlResolver,
    "alb": ALBResolver,
    "alb_multi": ALBResolver,
}


def headers(response: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in (response.get("headers") or {}).items():
        found.setdefault(name.lower(), []).append(value)
    for name, values in (response.get("multiValueHeaders") or {}).items():
        found.setdefault(name.lower(), []).extend(values)
    return found


def cookies(response: dict[str, Any]) -> list[str]:
    return list(response.get("cookies") or headers(response).get("set-cookie", []))


def make_app(shape: str) -> tuple[Any, list[str]]:
    app = RESOLVERS[shape]()
    runs: list[str] = []
    idempotency = IdempotencyMiddleware(MemoryStore(), operation="payments.create", **options_for(shape))

    @app.post("/payments", middlewares=[idempotency])
    def create() -> Response[Any]:
        body = app.current_event.json_body
        runs.append(body.get("card", ""))
        if "card" not in body:
            raise RequestValidationError("card is required", errors=[{"loc": ["card"]}])
        return Response(
            status_code=201,
            content_type="application/json",
            body={"id": f"pay_{len(runs)}", "amount": body["amount"]},
            headers={"Location": f"/payments/pay_{len(runs)}"},
            cookies=[Cookie(name="session", value="s1", secure=True)],
        )

    return app, runs


@pytest.mark.parametrize("shape", list(RESOLVERS))
def test_middleware_stores_and_replays_the_route_response(shape: str) -> None:
    app, runs = make_app(shape)
    first = app.resolve(http_event(shape), None)
    second = app.resolve(http_event(shape), None)
    assert first["statusCode"] == second["statusCode"] == 201
    assert json.loads(second["body"]) == json.loads(first["body"]) == {"id": "pay_1", "amount": 1250}
    assert headers(second)["location"] == headers(first)["location"]
    assert cookies(second) == cookies(first) == ["session=s1; Secure"]
    assert "idempotent-replayed" not in headers(first)
    assert headers(second)["idempotent-replayed"] == ["true"]
    assert len(runs) == 1


@pytest.mark.parametrize("shape", list(RESOLVERS))
def test_middleware_answers_problems(shape: str) -> None:
    app, runs = make_app(shape)
    missing = app.resolve(http_event(shape, key=None), None)
    assert missing["statusCode"] == 400 and problem_of(_single(missing))["code"] == "idempotency-key-missing"
    app.resolve(http_event(shape), None)
    reused = app.resolve(http_event(shape, body={"amount": 1, "card": "tok_visa"}), None)
    assert reused["statusCode"] == 422 and problem_of(_single(reused))["code"] == "idempotency-key-reused"
    assert len(runs) == 1


@pytest.mark.parametrize("shape", list(RESOLVERS))
def test_validation_error_in_the_route_is_400_and_a_corrected_retry_runs(shape: str) -> None:
    app, runs = make_app(shape)
    rejected = app.resolve(http_event(shape, body={"amount": 1250}), None)
    assert rejected["statusCode"] == 400
    assert problem_of(_single(rejected))["errors"] == [{"loc": ["card"]}]
    assert app.resolve(http_event(shape), None)["statusCode"] == 201
    assert runs == ["", "tok_visa"]


def _single(response: dict[str, Any]) -> dict[str, Any]:
    """The response with single-value headers, as `problem_of` reads them."""
    return {**response, "headers": {k: v[-1] for k, v in headers(response).items()}, "multiValueHeaders": {}}
