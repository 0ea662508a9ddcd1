"""Hostile HTTP events: every one gets a deliberate answer (a problem+json 4xx), never an exception that escapes the
handler (behind API Gateway, a 502 that trips alarms), on every event shape that can carry it.

Bodies that are not valid Unicode text, identity data nested without bound, fields of the wrong type (only a direct
invoke sends those), an ``Idempotency-Key`` sent twice in one single-value map, a null header value. Most run on
`MemoryStore`: the rules live in the adapter.
"""

from __future__ import annotations

from typing import Any

import pytest
from lambda_idempotency import MemoryStore

from tests.http_events import SHAPES, http_event, problem_of
from tests.test_http_adapter import make_api

ALL_SHAPES = list(SHAPES)


def nested_object(levels: int) -> dict[str, Any]:
    """``{"a": {"a": ... "x"}}``, ``levels`` objects deep, built without recursion."""
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return dict(value)


# Identity data nested without bound: a 401, never a RecursionError


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("levels", [500, 100_000])
def test_identity_data_nested_without_bound_is_identity_and_401(shape: str, levels: int) -> None:
    """An HTTP API Lambda authorizer's context is of the user's design: any depth of it still counts as identity."""
    api, payments = make_api(MemoryStore(), shape, anonymous_scope="anonymous")
    event = http_event(shape, principal=None)
    event["requestContext"]["authorizer"] = {"lambda": {"groups": nested_object(levels)}}
    answer = api(event, None)
    assert answer["statusCode"] == 401 and problem_of(answer)["code"] == "principal-required"
    assert payments.runs == 0


@pytest.mark.parametrize("levels", [500, 100_000])
def test_a_rest_identity_field_nested_without_bound_is_401_until_principal_reads_it(levels: int) -> None:
    api, payments = make_api(MemoryStore(), "rest", anonymous_scope="anonymous")
    event = http_event("rest", principal=None)
    event["requestContext"]["identity"]["clientCert"] = nested_object(levels)
    assert api(event, None)["statusCode"] == 401
    reader, _ = make_api(MemoryStore(), "rest", principal=lambda event: "bob")
    assert reader(event, None)["statusCode"] == 201
    assert payments.runs == 0


# A body the adapter cannot read: 400 request-invalid on every request, keyed or not, safe method or not


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("base64_body", [False, True], ids=["text", "marked-base64"])
def test_a_body_that_is_not_unicode_text_is_400_with_or_without_a_key(shape: str, base64_body: bool) -> None:
    """A lone surrogate (only a direct invoke sends one): not text, nor base64 when marked so."""
    seen: list[Any] = []
    api, payments = make_api(MemoryStore(), shape, validate=seen.append)
    for method, key in (("POST", "k-1"), ("PUT", None), ("GET", None), ("GET", "k-2")):
        event = http_event(shape, method=method, key=key, body='{"amount": "\udcff"}')
        event["isBase64Encoded"] = base64_body
        answer = api(event, None)
        assert answer["statusCode"] == 400, (method, key)
        problem = problem_of(answer)
        assert problem["code"] == "request-invalid"
        assert ("Unicode" if not base64_body else "base64") in problem["detail"]
    assert seen == [] and payments.runs == 0


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_surrogate_escaped_in_json_text_is_a_readable_body(shape: str) -> None:
    """``"\\udcff"`` written as JSON's six-character escape is valid text: it runs and replays."""
    api, payments = make_api(MemoryStore(), shape)
    event = http_event(shape, body='{"amount": "\\udcff"}')
    assert api(event, None)["statusCode"] == 201
    assert api(event, None)["statusCode"] == 201
    assert payments.runs == 1
