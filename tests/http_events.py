"""Sample HTTP events (events/http/) with the fields a test varies put where each event shape keeps them."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

EVENTS = Path(__file__).resolve().parents[1] / "events" / "http"
SHAPES = {
    "rest": "rest_v1.json",
    "http_api": "http_api_v2.json",
    "function_url": "function_url.json",
    "alb": "alb.json",
    "alb_multi": "alb_multi_value.json",
}
BODY = {"amount": 1250, "currency": "EUR", "card": "tok_visa"}
KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"
ALB_PRINCIPAL_HEADER = "x-test-principal"
"""ALB events carry no verified identity; tests pass ``principal=`` reading this header (see `options_for`)."""
_UNSET: Any = object()


def sample(shape: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / SHAPES[shape]).read_text())
    return data


def options_for(shape: str) -> dict[str, Any]:
    """Adapter options a shape needs in tests: ALB gets its principal from a header, as a user's reader would."""
    if not shape.startswith("alb"):
        return {}

    def from_header(event: dict[str, Any]) -> str | None:
        headers = event.get("headers") or {k: v[0] for k, v in (event.get("multiValueHeaders") or {}).items()}
        value = headers.get(ALB_PRINCIPAL_HEADER)
        return str(value) if value else None

    return {"principal": from_header}


def http_event(
    shape: str,
    *,
    method: str = "POST",
    path: str = "/payments",
    key: str | list[str] | None = KEY,
    body: Any = _UNSET,
    query: dict[str, list[str]] | None = None,
    principal: str | None = "alice",
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A copy of the shape's sample with these values; ``key=None`` drops the header, a list sends it repeatedly."""
    event = copy.deepcopy(sample(shape))
    text = json.dumps(BODY if body is _UNSET else body) if not isinstance(body, str) else body
    if body is None:
        text = None
    header_values: dict[str, list[str]] = {"content-type": ["application/json"]}
    if key is not None:
        header_values["idempotency-key"] = key if isinstance(key, list) else [key]
    for name, value in (headers or {}).items():
        header_values[name.lower()] = [value]
    if shape.startswith("alb") and principal is not None:
        header_values[ALB_PRINCIPAL_HEADER] = [principal]
    pairs = [(k, v) for k, values in (query or {}).items() for v in values]

    if shape in ("http_api", "function_url"):
        event["requestContext"]["http"]["method"] = method
        event["rawPath"] = path
        event["rawQueryString"] = urlencode(pairs)
        event["headers"] = {k: ",".join(v) for k, v in header_values.items()}
        _set_principal_v2(event, shape, principal)
    elif shape == "rest":
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
        event["path"] = path
        event["multiValueHeaders"] = {_title(k): v for k, v in header_values.items()}
        event["headers"] = {_title(k): v[-1] for k, v in header_values.items()}
        event["multiValueQueryStringParameters"] = dict(query) if query else None
        event["queryStringParameters"] = {k: v[-1] for k, v in query.items()} if query else None
        if principal is None:
            del event["requestContext"]["authorizer"]
        else:
            event["requestContext"]["authorizer"]["claims"]["sub"] = principal
    else:
        event["httpMethod"] = method
        event["path"] = path
        encoded = {quote_plus(k): [quote_plus(v) for v in values] for k, values in (query or {}).items()}
        if shape == "alb_multi":
            event["multiValueHeaders"] = header_values
            event["multiValueQueryStringParameters"] = encoded
        else:
            event["headers"] = {k: v[-1] for k, v in header_values.items()}
            event["queryStringParameters"] = {k: v[-1] for k, v in encoded.items()}
    if text is not None and base64_body:
        event["body"], event["isBase64Encoded"] = base64.b64encode(text.encode()).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = text, False
    return event


def _set_principal_v2(event: dict[str, Any], shape: str, principal: str | None) -> None:
    if principal is None:
        event["requestContext"].pop("authorizer", None)
    elif shape == "http_api":
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = principal
    else:
        event["requestContext"]["authorizer"]["iam"]["userArn"] = f"arn:aws:iam::123456789012:user/{principal}"


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    """A response's headers, lower-cased, whichever map it uses (last value of a multi-value header)."""
    found = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
    found.update({k.lower(): str(v[-1]) for k, v in (response.get("multiValueHeaders") or {}).items()})
    return found


def problem_of(response: dict[str, Any]) -> dict[str, Any]:
    assert headers_of(response)["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response["body"])
    assert body["status"] == response["statusCode"]
    return body
