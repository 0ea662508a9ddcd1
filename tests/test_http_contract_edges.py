"""The HTTP contract's edges (issue 11, items 4-8), on every event shape: comma-joined keys, a store outage while a
duplicate waits, where replay headers go for a multi-value ALB target, statuses that tell a client to retry, and
keys on safe methods."""

from __future__ import annotations

from typing import Any

import pytest
from lambda_idempotency import MemoryStore
from lambda_idempotency.http import idempotent_http

from tests.conftest import http_client, new_dynamodb_store
from tests.faults import Fault, FaultInjector
from tests.http_events import SHAPES, headers_of, http_event, options_for, problem_of
from tests.test_http_adapter import REPLAYED, make_api, while_in_flight, without_replayed

ALL_SHAPES = list(SHAPES)


# Item 4: a header sent twice arrives comma-joined in v2 events; a bare key with a comma is never one key


@pytest.mark.parametrize("shape", [s for s in ALL_SHAPES if s != "alb"])
def test_a_header_sent_twice_is_400_on_every_shape_that_passes_both(shape: str) -> None:
    """An ALB target without multi-value headers gets only the last value (AWS documents it): nothing to see there."""
    api, payments = make_api(MemoryStore(), shape)
    response = api(http_event(shape, key=["k1", "k2"]), None)  # v2: "k1,k2"; REST and ALB multi: two values
    assert response["statusCode"] == 400 and problem_of(response)["code"] == "idempotency-key-invalid"
    assert payments.runs == 0


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("joined", ["k1,k2", "k1, k2", "k1,k1", ","])
def test_a_bare_key_with_a_comma_is_400_and_says_to_quote_it(shape: str, joined: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    response = api(http_event(shape, key=joined), None)
    assert response["statusCode"] == 400
    problem = problem_of(response)
    assert problem["code"] == "idempotency-key-invalid"
    assert "one key" in problem["detail"] and '"a,b"' in problem["detail"]
    assert payments.runs == 0


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_quoted_key_may_contain_a_comma(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    assert api(http_event(shape, key='"a,b"'), None)["statusCode"] == 201
    assert headers_of(api(http_event(shape, key='"a,b"'), None))[REPLAYED] == "true"
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize(
    "sent",
    ['"k-a";v=1', '"k-a"; v=2;grease=?1;s="x,y";b=:YWJj:', '"k-a";d=1.5;t=tok/en', '"k-a";s="' + "x" * 600 + '"'],
)
def test_an_sf_string_key_with_parameters_is_the_string(shape: str, sent: str) -> None:
    """RFC 8941: an Item is a bare item and its parameters; the draft's value is a String, so ``"k-a";v=1`` is the key
    ``k-a`` (parameters ignored), not a 400 for "text after its closing quote". Long parameters do not make the key
    long: the header as a whole past 512 characters was a 400 saying the key passed 255."""
    api, payments = make_api(MemoryStore(), shape)
    assert api(http_event(shape, key=sent), None)["statusCode"] == 201
    replay = api(http_event(shape, key="k-a"), None)
    assert replay["statusCode"] == 201 and headers_of(replay)[REPLAYED] == "true"
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("sent", ['"k-a";V=1', '"k-a";v=', '"k-a" v=1', '"k-a";v="open', '"k-a","k-a"'])
def test_an_sf_string_key_followed_by_what_is_not_parameters_is_400(shape: str, sent: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    response = api(http_event(shape, key=sent), None)
    assert response["statusCode"] == 400 and problem_of(response)["code"] == "idempotency-key-invalid"
    assert payments.runs == 0


# Item 5: a store outage while a duplicate polls (wait=) is a 503, never an unhandled error


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("fail_open", [False, True])
def test_a_store_outage_while_waiting_is_503_with_retry_after(moto_endpoint: str, shape: str, fail_open: bool) -> None:
    client = http_client(moto_endpoint)
    store = new_dynamodb_store(client)
    api, payments = make_api(store, shape, wait=10, lease=30, local_cache=False, fail_open=fail_open)
    outage = FaultInjector(client, "GetItem", Fault.SERVER_ERROR, times=None)  # only the duplicate's polls read
    first, duplicate = while_in_flight(api, payments, http_event(shape), http_event(shape))
    assert outage.injected >= 1
    assert duplicate["statusCode"] == 503
    assert problem_of(duplicate)["code"] == "store-unavailable"
    assert headers_of(duplicate)["retry-after"] == "1"
    if shape == "alb_multi":
        assert "headers" not in duplicate and duplicate["multiValueHeaders"]["Retry-After"] == ["1"]
    assert first["statusCode"] == 201 and payments.runs == 1


# Item 6: every header the adapter adds goes in the map the request's shape reads


def bare_handler(shape: str, response: dict[str, Any]) -> Any:
    runs: list[int] = []

    @idempotent_http(MemoryStore(), operation="bare", local_cache=False, **options_for(shape))
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs.append(1)
        return dict(response)

    return handler, runs


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_replay_of_a_response_without_headers_marks_it_where_the_shape_reads_headers(shape: str) -> None:
    handler, runs = bare_handler(shape, {"statusCode": 204, "body": ""})
    first = handler(http_event(shape), None)
    replay = handler(http_event(shape), None)
    assert len(runs) == 1
    if shape == "alb_multi":
        assert "headers" not in replay and replay["multiValueHeaders"] == {"Idempotent-Replayed": ["true"]}
    else:
        assert replay["headers"] == {"Idempotent-Replayed": "true"} and "multiValueHeaders" not in replay
    assert without_replayed(replay) | {"headers": None, "multiValueHeaders": None} == first | {
        "headers": None,
        "multiValueHeaders": None,
    }


def test_a_multi_value_target_gets_single_value_headers_of_a_stored_response_as_multi_value() -> None:
    handler, runs = bare_handler("alb_multi", {"statusCode": 201, "headers": {"Location": "/p/1"}, "body": "{}"})
    handler(http_event("alb_multi"), None)
    replay = handler(http_event("alb_multi"), None)
    assert len(runs) == 1 and "headers" not in replay
    assert replay["multiValueHeaders"] == {"Location": ["/p/1"], "Idempotent-Replayed": ["true"]}


@pytest.mark.parametrize("shape", ["alb", "http_api", "function_url"])
def test_a_single_value_target_gets_the_replay_header_in_headers(shape: str) -> None:
    handler, runs = bare_handler(shape, {"statusCode": 201, "multiValueHeaders": {"Set-Cookie": ["a=1"]}, "body": ""})
    handler(http_event(shape), None)
    replay = handler(http_event(shape), None)
    assert len(runs) == 1 and replay["headers"] == {"Idempotent-Replayed": "true"}
    assert replay["multiValueHeaders"] == {"Set-Cookie": ["a=1"]}


# Item 7: what a client is told to retry is never stored


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retry_me_statuses_release_the_key_and_are_never_replayed(shape: str, status: int) -> None:
    store = MemoryStore()
    api, payments = make_api(store, shape, status=status)
    for _ in range(2):
        response = api(http_event(shape), None)
        assert response["statusCode"] == status and REPLAYED not in headers_of(response)
        assert not store._records
    payments.status = 201
    assert api(http_event(shape), None)["statusCode"] == 201
    assert payments.runs == 3


# Item 8: safe methods never claim; PUT and DELETE honour a key


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_a_key_on_a_safe_method_is_ignored(shape: str, method: str) -> None:
    store = MemoryStore()
    api, payments = make_api(store, shape, required=True)
    for key in ("k1", "k1", "not,one key", None):
        response = api(http_event(shape, method=method, key=key, body=None), None)
        assert response["statusCode"] == 201 and REPLAYED not in headers_of(response)
    assert payments.runs == 4 and not store._records


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_put_and_delete_honour_a_key(shape: str, method: str) -> None:
    api, payments = make_api(MemoryStore(), shape)
    assert api(http_event(shape, method=method), None)["statusCode"] == 201
    assert headers_of(api(http_event(shape, method=method), None))[REPLAYED] == "true"
    assert payments.runs == 1
