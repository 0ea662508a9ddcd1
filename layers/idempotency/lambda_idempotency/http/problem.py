"""Errors as ``application/problem+json`` (RFC 9457), the form the IETF Idempotency-Key draft uses.

Each problem has the standard members (``type``, ``title``, ``status``, ``detail``) and a ``code`` that names the
case, so a client can tell a missing key from an invalid one without parsing prose. The ``type`` is ``about:blank``
(the status says it all) unless the API documents its problems: the draft's "Error Scenarios" say a 400 for a
missing key and a 422 for a reused one SHOULD carry a link to the relevant documentation, and RFC 9457's ``type``
is that link (`documented_type`).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from .request import HttpRequest
from .response import ProxyResponse, respond

CONTENT_TYPE = "application/problem+json"
UNDOCUMENTED = "about:blank"


def checked_docs_url(url: object) -> str | None:
    """``problem_docs`` as given, or `ValueError`: None, or an absolute http(s) URL without a fragment (each
    problem's code becomes the fragment) and without spaces, so every ``type`` written from it is a valid URI."""
    if url is None:
        return None
    if not isinstance(url, str) or not url.isascii() or not url.isprintable() or " " in url:
        raise ValueError(f"problem_docs must be an http(s) URL in printable ASCII without spaces, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "#" in url:
        raise ValueError(f"problem_docs must be an absolute http(s) URL without a #fragment, got {url!r}")
    return url


def documented_type(docs: str | None, code: str) -> str:
    """The problem ``type`` of ``code``: ``{docs}#{code}`` when the API documents its problems, else about:blank."""
    return UNDOCUMENTED if docs is None else f"{docs}#{code}"


def problem(
    request: HttpRequest,
    status: int,
    code: str,
    detail: str,
    *,
    retry_after: int | None = None,
    errors: list[Any] | None = None,
    type_uri: str = UNDOCUMENTED,
) -> ProxyResponse:
    body: dict[str, Any] = {
        "type": type_uri,
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
