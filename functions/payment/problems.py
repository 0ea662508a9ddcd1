"""Error responses as ``application/problem+json`` (RFC 9457), shaped like the idempotency adapter's own.

Each has the standard members (``type``, ``title``, ``status``, ``detail``) and a ``code`` naming the case, so a
client tells the function's problems from the adapter's (400/409/422) the same way.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response

PROBLEM_JSON = "application/problem+json"


def problem(status: int, code: str, detail: str) -> Response[str]:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, "code": code}
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body))
