"""One HTTP request, read the same way from the four event shapes Lambda receives.

API Gateway REST (payload v1), HTTP API (v2), Function URLs and ALB each place the method, path, query, headers
and body differently, and each encodes them a little differently (ALB does not decode the query; v2 joins repeated
headers with commas; REST and ALB may send multi-value maps). `read_request` hides that, so the idempotency rules
(key, scope, fingerprint) are written once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from .. import depth


class Shape(enum.Enum):
    REST = "rest"
    HTTP_API = "http_api"
    FUNCTION_URL = "function_url"
    ALB = "alb"


class NotAnHttpEventError(TypeError):
    """The event is not an API Gateway, Function URL or ALB request."""


class MalformedRequestError(ValueError):
    """The event is an HTTP request whose body cannot be read: not valid Unicode text, or marked base64 but not."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    shape: Shape
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    """Every (name, value) pair, decoded and sorted: the order of parameters does not change the request."""
    headers: dict[str, tuple[str, ...]]
    """Lower-cased names; every value each header was sent with."""
    raw_body: str | None
    base64_body: bool
    multi_value: bool
    """An ALB event with multi-value headers on: the ALB then reads only ``multiValueHeaders`` of an answer."""

    def header(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name.lower(), ())

    def body(self) -> bytes:
        """The body as sent; raises `MalformedRequestError` when it is not valid Unicode text (a lone surrogate, which
        only a direct invoke can send) or is marked base64 but is not."""
        if self.raw_body is None:
            return b""
        if not self.base64_body:
            try:
                return self.raw_body.encode()
            except UnicodeEncodeError:
                raise MalformedRequestError("the request body is not valid Unicode text (a lone surrogate)") from None
        try:
            return base64.b64decode(self.raw_body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedRequestError("the request body is marked base64 but is not valid base64") from None

    def fingerprint_payload(self) -> dict[str, Any]:
        """Method + path + query + body; a JSON body counts as parsed, so whitespace and key order do not, but an
        integer and a float do (``1`` and ``1.0`` differ: ``json.loads`` keeps their kinds)."""
        return {"method": self.method, "path": self.path, "query": list(self.query), "body": self._body_value()}

    def check_body(self) -> None:
        """`MalformedRequestError` for a body that cannot be read (`body`), `InputTooDeepError` for a JSON body nested
        past `MAX_JSON_DEPTH`, so the adapter refuses either before a validate hook, the fingerprint or the handler
        read it (Python's json recurses once per level), whether or not the request carries a key.

        Bodies read as bytes pass the depth check: a binary upload is full of ``[`` that open nothing.
        """
        body = self.body()
        if self._reads_as_json(body):
            with contextlib.suppress(ValueError):  # not text, so not JSON either: fingerprinted as bytes
                depth.check_depth(body)

    def _reads_as_json(self, body: bytes) -> bool:
        content_type = self.header("content-type")
        media = content_type[0].split(";")[0].strip().lower() if content_type else ""
        return bool(body) and (not media or media.endswith("/json") or media.endswith("+json"))

    def _body_value(self) -> Any:
        body = self.body()
        if self._reads_as_json(body):
            try:
                return {"json": json.loads(body)}
            except ValueError:
                pass
        return {"bytes": base64.b64encode(body).decode()}


def read_request(event: Any) -> HttpRequest:
    """The request an HTTP event carries; raises `NotAnHttpEventError` for any other event."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        raise NotAnHttpEventError("expected an API Gateway, Function URL or ALB proxy event")
    context = event["requestContext"]
    if event.get("version") == "2.0":
        return _read_v2(event, context)
    if "elb" in context:
        return _read_v1(event, Shape.ALB, decode_query=True)
    if "httpMethod" in event:
        return _read_v1(event, Shape.REST, decode_query=False)
    raise NotAnHttpEventError("expected an API Gateway, Function URL or ALB proxy event")


def _read_v2(event: dict[str, Any], context: dict[str, Any]) -> HttpRequest:
    domain = str(context.get("domainName") or "")
    shape = Shape.FUNCTION_URL if ".lambda-url." in domain else Shape.HTTP_API
    headers: dict[str, tuple[str, ...]] = {str(k).lower(): (str(v),) for k, v in (event.get("headers") or {}).items()}
    return HttpRequest(
        shape=shape,
        method=str(context.get("http", {}).get("method", "")).upper(),
        path=str(event.get("rawPath") or "/"),
        query=tuple(sorted(parse_qsl(str(event.get("rawQueryString") or ""), keep_blank_values=True))),
        headers=headers,
        raw_body=None if event.get("body") is None else str(event["body"]),
        base64_body=bool(event.get("isBase64Encoded")),
        multi_value=False,
    )


def _read_v1(event: dict[str, Any], shape: Shape, *, decode_query: bool) -> HttpRequest:
    multi_headers = event.get("multiValueHeaders")
    headers: dict[str, tuple[str, ...]] = {}
    if multi_headers:
        for name, values in multi_headers.items():
            headers[str(name).lower()] = headers.get(str(name).lower(), ()) + tuple(str(v) for v in values or ())
    else:
        for name, value in (event.get("headers") or {}).items():
            headers[str(name).lower()] = (str(value),)
    pairs: list[tuple[str, str]] = []
    multi_query = event.get("multiValueQueryStringParameters")
    if multi_query:
        pairs = [(str(k), str(v)) for k, values in multi_query.items() for v in values or ()]
    else:
        pairs = [(str(k), str(v)) for k, v in (event.get("queryStringParameters") or {}).items()]
    if decode_query:
        pairs = [(unquote_plus(k), unquote_plus(v)) for k, v in pairs]
    return HttpRequest(
        shape=shape,
        method=str(event.get("httpMethod", "")).upper(),
        path=str(event.get("path") or "/"),
        query=tuple(sorted(pairs)),
        headers=headers,
        raw_body=None if event.get("body") is None else str(event["body"]),
        base64_body=bool(event.get("isBase64Encoded")),
        multi_value=shape is Shape.ALB and "multiValueHeaders" in event,
    )
