"""Error responses as ``application/problem+json`` (RFC 9457): a type, a title, a status and a detail."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body), headers=headers)
