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
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from .. import depth
from .event_fields import EventFieldError, flag_field, object_field, pairs_field, text_field


class Shape(enum.Enum):
    REST = "rest"
    HTTP_API = "http_api"
    FUNCTION_URL = "function_url"
    ALB = "alb"


class NotAnHttpEventError(TypeError):
    """The event is not an API Gateway, Function URL or ALB request."""


class MalformedRequestError(ValueError):
    """The event is an HTTP request whose body cannot be read: not valid Unicode text, or marked base64 but not."""


class MalformedEventError(MalformedRequestError):
    """The event has one of the four shapes, but a field is missing or of a type the services never send (a direct
    invoke's mistake). ``reply_to`` is a request of that shape with nothing else read: the form its answer takes."""

    def __init__(self, detail: str, *, shape: Shape, multi_value: bool) -> None:
        super().__init__(detail)
        self.reply_to = HttpRequest(shape, "", "/", (), {}, None, base64_body=False, multi_value=multi_value)


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
        integer and a float do (``1`` and ``1.0`` differ: ``json.loads`` keeps their kinds). Other bodies, and JSON
        holding a number past a double's range (`_finite_float`), count byte for byte."""
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
                return {"json": json.loads(body, parse_float=_finite_float)}
            except ValueError:
                pass
        return {"bytes": base64.b64encode(body).decode()}


def _finite_float(text: str) -> float:
    """A JSON number as ``json.loads`` reads it, unless it is beyond a double's range: ``1e999`` and ``2e999`` would
    both be ``inf``, one fingerprint for two bodies, so such a body counts byte for byte instead."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is beyond a double's range")
    return number


def read_request(event: Any) -> HttpRequest:
    """The request an HTTP event carries; raises `NotAnHttpEventError` for any other event, `MalformedEventError` for
    one of the four shapes with a field missing or of the wrong type."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        raise NotAnHttpEventError("expected an API Gateway, Function URL or ALB proxy event")
    shape = _shape(event, event["requestContext"])
    multi_value = shape is Shape.ALB and "multiValueHeaders" in event
    try:
        if shape in (Shape.HTTP_API, Shape.FUNCTION_URL):
            return _read_v2(event, shape)
        return _read_v1(event, shape, multi_value=multi_value)
    except EventFieldError as exc:
        raise MalformedEventError(str(exc), shape=shape, multi_value=multi_value) from None


def _shape(event: dict[str, Any], context: dict[str, Any]) -> Shape:
    if event.get("version") == "2.0":
        domain = context.get("domainName")
        return Shape.FUNCTION_URL if isinstance(domain, str) and ".lambda-url." in domain else Shape.HTTP_API
    if "elb" in context:
        return Shape.ALB
    if "httpMethod" in event:
        return Shape.REST
    raise NotAnHttpEventError("expected an API Gateway, Function URL or ALB proxy event")


def _read_v2(event: dict[str, Any], shape: Shape) -> HttpRequest:
    http = object_field(event["requestContext"], "http", "requestContext.")
    return HttpRequest(
        shape=shape,
        method=_method(http, "method", "requestContext.http."),
        path=text_field(event, "rawPath") or "/",
        query=tuple(sorted(parse_qsl(text_field(event, "rawQueryString") or "", keep_blank_values=True))),
        headers=_headers(pairs_field(event, "headers", multi_value=False)),
        raw_body=text_field(event, "body"),
        base64_body=flag_field(event, "isBase64Encoded"),
        multi_value=False,
    )


def _read_v1(event: dict[str, Any], shape: Shape, *, multi_value: bool) -> HttpRequest:
    """REST and ALB: the multi-value maps when they hold anything (REST sends both), else the single-value ones."""
    multi_headers = bool(event.get("multiValueHeaders"))
    headers = pairs_field(event, "multiValueHeaders" if multi_headers else "headers", multi_value=multi_headers)
    multi_query = bool(event.get("multiValueQueryStringParameters"))
    query = pairs_field(
        event,
        "multiValueQueryStringParameters" if multi_query else "queryStringParameters",
        multi_value=multi_query,
    )
    if shape is Shape.ALB:  # the ALB passes the query as sent, still percent-encoded
        query = [(unquote_plus(k), unquote_plus(v)) for k, v in query]
    return HttpRequest(
        shape=shape,
        method=_method(event, "httpMethod"),
        path=text_field(event, "path") or "/",
        query=tuple(sorted(query)),
        headers=_headers(headers),
        raw_body=text_field(event, "body"),
        base64_body=flag_field(event, "isBase64Encoded"),
        multi_value=multi_value,
    )


def _method(container: dict[str, Any], name: str, where: str = "") -> str:
    method = text_field(container, name, where)
    if not method:
        raise EventFieldError(f"{where}{name} is missing: it is the request's method")
    return method.upper()


def _headers(pairs: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Names lower-cased, every value kept: a name sent twice in one map (``Idempotency-Key`` and ``idempotency-key``,
    which only a direct invoke can do in a single-value map) keeps both values, so neither silently wins."""
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in pairs:
        headers[name.lower()] = (*headers.get(name.lower(), ()), value)
    return headers
