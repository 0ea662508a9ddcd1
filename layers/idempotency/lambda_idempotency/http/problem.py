"""Errors as ``application/problem+json`` (RFC 9457), the form the IETF Idempotency-Key draft uses.

Each problem has the standard members (``type``, ``title``, ``status``, ``detail``) and a ``code`` that names the
case, so a client can tell a missing key from an invalid one without parsing prose.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from .request import HttpRequest
from .response import ProxyResponse, respond

CONTENT_TYPE = "application/problem+json"


def problem(
    request: HttpRequest,
    status: int,
    code: str,
    detail: str,
    *,
    retry_after: int | None = None,
    errors: list[Any] | None = None,
) -> ProxyResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    headers = {"Content-Type": CONTENT_TYPE}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return respond(request, status, headers, json.dumps(body, default=str))
