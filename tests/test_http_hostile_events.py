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
from lambda_idempotency.http import NotAnHttpEventError

from tests.http_events import SHAPES, headers_of, http_event, problem_of
from tests.test_http_adapter import REPLAYED, make_api

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


# Fields of the wrong type (only a direct invoke sends them): one of the four shapes is answered 400 in its form;
# an event of none of them raises NotAnHttpEventError


def _set(event: dict[str, Any], path: str, value: Any) -> None:
    """Sets ``value`` at a dotted ``path`` of the event."""
    *parents, last = path.split(".")
    for part in parents:
        event = event[part]
    event[last] = value


MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("http_api", {"requestContext.http": None}),
    ("http_api", {"requestContext.http": "POST"}),
    ("http_api", {"requestContext.http.method": None}),
    ("http_api", {"headers": ["idempotency-key: k"]}),
    ("http_api", {"headers.idempotency-key": 5}),
    ("http_api", {"headers.idempotency-key": ["k"]}),
    ("http_api", {"rawPath": 7}),
    ("http_api", {"rawQueryString": {"a": "1"}}),
    ("http_api", {"body": {"amount": 1}}),
    ("http_api", {"isBase64Encoded": "false"}),
    ("function_url", {"requestContext.http": None}),
    ("function_url", {"headers.content-type": True}),
    ("rest", {"httpMethod": None}),
    ("rest", {"multiValueHeaders": None, "headers": ["x"]}),
    ("rest", {"multiValueHeaders": ["x"]}),
    ("rest", {"multiValueHeaders.X-Forwarded-For": 5}),
    ("rest", {"multiValueHeaders.Idempotency-Key": [5]}),
    ("rest", {"queryStringParameters": ["a"]}),
    ("rest", {"multiValueQueryStringParameters": {"a": 5}}),
    ("rest", {"path": ["/payments"]}),
    ("alb", {"queryStringParameters": {"a": 10**5000}}),  # str() of it raises ValueError: 4300 digits at most
    ("alb", {"headers.idempotency-key": {"k": "v"}}),
    ("alb", {"httpMethod": 1}),
    ("alb_multi", {"multiValueHeaders.idempotency-key": "k"}),
    ("alb_multi", {"multiValueQueryStringParameters": {"a": [1.5]}}),
]


def _case_id(case: tuple[str, dict[str, Any]]) -> str:
    shape, changes = case
    path, value = list(changes.items())[-1]
    return f"{shape}-{path}-{type(value).__name__}"


@pytest.mark.parametrize(("shape", "changes"), MALFORMED, ids=[_case_id(case) for case in MALFORMED])
def test_a_field_of_the_wrong_type_is_a_400_in_the_shapes_form(shape: str, changes: dict[str, Any]) -> None:
    api, payments = make_api(MemoryStore(), shape)
    event = http_event(shape)
    for path, value in changes.items():
        _set(event, path, value)
    answer = api(event, None)
    assert answer["statusCode"] == 400
    problem = problem_of(answer)
    path = list(changes)[-1]
    field = "requestContext.http" if path.startswith("requestContext") else path.split(".")[0]
    assert problem["code"] == "request-invalid" and field in problem["detail"], problem
    assert ("multiValueHeaders" in answer) is (shape == "alb_multi")  # answered in the form the shape reads
    assert ("statusDescription" in answer) is shape.startswith("alb")
    assert payments.runs == 0


@pytest.mark.parametrize(
    "event",
    [[], "POST /payments", {"requestContext": None, "httpMethod": "POST"}, {"requestContext": {}, "body": "{}"}],
    ids=["list", "text", "requestContext-null", "no-method-field"],
)
def test_an_event_of_none_of_the_shapes_raises_the_typed_error(event: Any) -> None:
    api, payments = make_api(MemoryStore(), "rest")
    with pytest.raises(NotAnHttpEventError):
        api(event, None)
    assert payments.runs == 0


# Idempotency-Key twice in one map, in two cases: different values are 400, the same value is one key


def with_key_twice(shape: str, first: str, second: str, *, method: str = "POST") -> dict[str, Any]:
    """The header as ``idempotency-key: first`` and ``Idempotency-Key: second`` in the map the shape reads; REST as
    a direct invoke without ``multiValueHeaders``, so its single-value map is the one read."""
    event = http_event(shape, method=method, key=first)
    if shape == "rest":
        event["multiValueHeaders"] = None
        event["headers"] = {k.lower(): v for k, v in event["headers"].items()}
    if shape == "alb_multi":
        event["multiValueHeaders"]["Idempotency-Key"] = [second]
    else:
        event["headers"]["Idempotency-Key"] = second
    return event


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_key_sent_in_two_cases_with_different_values_is_400(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    for method in ("POST", "PUT"):
        answer = api(with_key_twice(shape, "k-a", "k-b", method=method), None)
        assert answer["statusCode"] == 400 and problem_of(answer)["code"] == "idempotency-key-invalid"
        assert "more than once" in problem_of(answer)["detail"]
    assert payments.runs == 0


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_key_sent_in_two_cases_with_one_value_is_one_key(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    assert api(with_key_twice(shape, "k-a", "k-a"), None)["statusCode"] == 201
    replay = api(http_event(shape, key="k-a"), None)
    assert replay["statusCode"] == 201 and headers_of(replay)[REPLAYED] == "true"
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("second", ['"k-a"', " k-a\t"], ids=["sf-string", "surrounding-whitespace"])
def test_one_key_sent_twice_in_two_forms_is_one_key(shape: str, second: str) -> None:
    """docs/http.md: the bare and the sf-string form name the same key, and the same value sent twice is one key; so
    is a value with the whitespace around it that RFC 9110 (5.5) says is not part of it. Neither is a 400."""
    api, payments = make_api(MemoryStore(), shape)
    answer = api(with_key_twice(shape, "k-a", second), None)
    assert answer["statusCode"] == 201, answer
    replay = api(http_event(shape, key="k-a"), None)
    assert replay["statusCode"] == 201 and headers_of(replay)[REPLAYED] == "true"
    assert payments.runs == 1


# A null header or query value is a value not sent


def with_null_key(shape: str, method: str) -> dict[str, Any]:
    event = http_event(shape, method=method, key=None)
    if shape == "alb_multi":
        event["multiValueHeaders"]["idempotency-key"] = None
        event["multiValueHeaders"]["Idempotency-Key"] = [None]
    else:
        event["headers"]["Idempotency-Key"] = None
        if shape == "rest":
            event["multiValueHeaders"]["Idempotency-Key"] = [None]
    return event


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_null_key_is_no_key_never_the_key_none(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    answer = api(with_null_key(shape, "POST"), None)
    assert answer["statusCode"] == 400 and problem_of(answer)["code"] == "idempotency-key-missing"
    for _ in range(2):  # PUT runs without a key, so every time; a key "None" would replay the second
        answer = api(with_null_key(shape, "PUT"), None)
        assert answer["statusCode"] == 201 and REPLAYED not in headers_of(answer)
    keyed = api(http_event(shape, method="PUT", key="None"), None)
    assert REPLAYED not in headers_of(keyed)
    assert payments.runs == 3


@pytest.mark.parametrize("shape", ["rest", "alb", "alb_multi"])
def test_a_null_query_value_is_a_parameter_not_sent(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    assert api(http_event(shape, query={"page": ["2"]}), None)["statusCode"] == 201
    event = http_event(shape, query={"page": ["2"]})
    field = "multiValueQueryStringParameters" if shape != "alb" else "queryStringParameters"
    event[field]["debug"] = [None] if shape != "alb" else None
    assert headers_of(api(event, None))[REPLAYED] == "true"  # the same request: ?page=2
    assert payments.runs == 1


# Numbers a double cannot hold: their bodies count byte for byte, so two of them never share a fingerprint


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize(
    ("first", "other"),
    [
        ('{"amount": 1e999}', '{"amount": 2e999}'),
        ('{"amount": -1e400}', '{"amount": -1e999}'),
        ("[1e999]", "[Infinity]"),
    ],
)
def test_bodies_past_a_doubles_range_are_told_apart(shape: str, first: str, other: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    assert api(http_event(shape, body=first), None)["statusCode"] == 201
    assert headers_of(api(http_event(shape, body=first), None))[REPLAYED] == "true"
    reused = api(http_event(shape, body=other), None)
    assert reused["statusCode"] == 422 and problem_of(reused)["code"] == "idempotency-key-reused"
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_json_body_of_finite_numbers_still_counts_as_parsed(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    assert api(http_event(shape, body='{"amount": 1.5e3, "fee": 0.1}'), None)["statusCode"] == 201
    assert headers_of(api(http_event(shape, body='{"fee":0.10,"amount":1500.0}'), None))[REPLAYED] == "true"
    assert payments.runs == 1
