"""Proxy responses: what a handler returns to API Gateway, a Function URL or an ALB, per event shape.

HTTP APIs and Function URLs accept any JSON value and infer a 200 from it; REST APIs and ALBs need a dict with
``statusCode``. An ALB also wants ``statusDescription``, and with multi-value headers on it reads only
``multiValueHeaders``. Responses the adapter writes itself (problems) follow those rules; stored responses are
replayed as the handler wrote them, plus one header, in the map the *request's* shape reads.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from .request import HttpRequest, Shape

REPLAYED_HEADER = "Idempotent-Replayed"

ProxyResponse = dict[str, Any]


class InvalidResponseError(TypeError):
    """The handler returned something its event shape cannot turn into an HTTP response."""


def proxy_response(result: Any, request: HttpRequest) -> ProxyResponse:
    """The handler's return value as an explicit proxy response (v2 inference applied); raises for bad ones."""
    if isinstance(result, dict) and "statusCode" in result:
        status = result["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise InvalidResponseError(f"statusCode must be an integer HTTP status, got {status!r}")
        return result
    if request.shape in (Shape.HTTP_API, Shape.FUNCTION_URL):
        body = result if isinstance(result, str) else json.dumps(result)
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body}
    raise InvalidResponseError(
        f"a {request.shape.value} handler must return a dict with statusCode, got {type(result).__name__}"
    )


def respond(request: HttpRequest, status: int, headers: dict[str, str], body: str) -> ProxyResponse:
    """A response the adapter writes, in the form ``request``'s event shape expects."""
    response: ProxyResponse = {"statusCode": status, "body": body, "isBase64Encoded": False}
    if request.multi_value:
        response["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    else:
        response["headers"] = dict(headers)
    if request.shape is Shape.ALB:
        response["statusDescription"] = f"{status} {HTTPStatus(status).phrase}"
    return response


def mark_replayed(response: ProxyResponse, request: HttpRequest) -> ProxyResponse:
    """A copy of a stored response with ``Idempotent-Replayed: true`` (replacing any header of that name).

    The header goes where ``request``'s shape reads headers, whatever the stored response carried: a multi-value
    ALB target reads only ``multiValueHeaders`` (its ``headers`` are merged in there), every other shape ``headers``.
    """
    replay = {k: v for k, v in response.items() if k not in ("headers", "multiValueHeaders")}
    single = _without_replayed(response.get("headers"))
    multi = _without_replayed(response.get("multiValueHeaders"))
    if request.multi_value:
        for name, value in single.items():
            multi.setdefault(name, value if isinstance(value, list) else [value])
        multi[REPLAYED_HEADER] = ["true"]
        replay["multiValueHeaders"] = multi
        return replay
    single[REPLAYED_HEADER] = "true"
    replay["headers"] = single
    if multi:
        replay["multiValueHeaders"] = multi
    return replay


def _without_replayed(headers: Any) -> dict[str, Any]:
    return {k: v for k, v in (headers or {}).items() if str(k).lower() != REPLAYED_HEADER.lower()}
