"""The caller's scope (issue 11, items 1-3): a scope that yields nothing never falls back to the shared record; the
anonymous scope covers only requests with no identity data at all; any principal an authorizer produced is usable.

HTTP tests run on every event shape (REST v1, HTTP API v2, Function URL, ALB single and multi-value), with the
identity data each shape really carries; the core tests use the decorators on `MemoryStore` and moto.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from lambda_idempotency import DynamoDBStore, MemoryStore, MissingScopeError, idempotent, idempotent_function
from lambda_idempotency.keys import MAX_SCOPE_LENGTH, normalise_scope

from tests.http_events import SHAPES, headers_of, http_event, options_for, problem_of
from tests.test_http_adapter import REPLAYED, make_api

ALL_SHAPES = list(SHAPES)
ALICE_TOKEN = "eyJhbGciOiJSUzI1NiJ9." + "a" * 1500 + ".sig"
"""A REST Lambda authorizer that returns the caller's token as its principalId: 1-2 KB."""


# Item 1: a configured scope that yields nothing


@pytest.mark.parametrize(
    "empty",
    [None, "", [], [None, None], {"tenant": None}],
    ids=["none", "empty-string", "empty-list", "list-of-nulls", "object-of-nulls"],
)
def test_a_scope_that_yields_nothing_raises_and_never_shares_a_record(empty: Any) -> None:
    store = MemoryStore()
    runs: list[str] = []

    @idempotent_function(store, key="k", scope=lambda k, secret: empty, operation="op")
    def reveal(k: str, secret: str) -> str:
        runs.append(secret)
        return secret

    with pytest.raises(MissingScopeError):
        reveal("shared-key", "alice's secret")
    with pytest.raises(MissingScopeError):
        reveal("shared-key", "bob's")
    assert runs == [] and not store._records


def test_a_scope_known_only_by_its_address_raises() -> None:
    """A scope whose only text is its memory address (an object with no ``__str__`` of its own) differs in every
    call and every container: each call was alone in its scope, and no retry ever found its record."""
    store = MemoryStore()

    class Tenant:
        pass

    @idempotent_function(store, key="k", scope=lambda k: Tenant(), operation="op")
    def run(k: str) -> str:
        return k

    with pytest.raises(MissingScopeError, match="memory address"):
        run("a")
    assert not store._records


def test_a_handler_scope_read_from_the_event_that_is_absent_raises() -> None:
    store = MemoryStore()

    @idempotent(store, key="order_id", scope="tenant", operation="orders")
    def handler(event: dict[str, Any], context: Any) -> str:
        return str(event["tenant"])

    assert handler({"order_id": "1", "tenant": "t-1"}, None) == "t-1"
    with pytest.raises(MissingScopeError):
        handler({"order_id": "1"}, None)
    assert len(store._records) == 1


def test_a_multi_field_scope_whose_fields_are_all_absent_raises() -> None:
    """``scope="[tenant, user]"`` read ``[None, None]`` from an event without either: one scope, "[None, None]",
    that every such caller shared (each got the first one's result under a shared key)."""
    store = MemoryStore()

    @idempotent(store, key="order_id", scope="[tenant, user]", operation="orders")
    def handler(event: dict[str, Any], context: Any) -> str:
        return str(event.get("secret"))

    with pytest.raises(MissingScopeError):
        handler({"order_id": "1", "secret": "alice's"}, None)
    assert handler({"order_id": "1", "tenant": "t-1"}, None) == "None"
    assert len(store._records) == 1


# Item 2: the anonymous scope covers only requests without identity data


def unreadable_identity(shape: str) -> dict[str, Any]:
    """A request from an authenticated caller whose identity `principal_of` cannot read, as each shape carries it."""
    event = http_event(shape, principal=None)
    context = event["requestContext"]
    if shape == "rest":  # a Lambda authorizer whose context names the user, without a principalId
        context["authorizer"] = {"userId": "bob", "integrationLatency": 3}
    elif shape == "http_api":  # an HTTP API Lambda authorizer: a context of the user's design
        context["authorizer"] = {"lambda": {"userId": "bob", "plan": "gold"}}
    elif shape == "function_url":  # IAM, without the caller ARN
        context["authorizer"] = {"iam": {"accessKey": "AKIAIOSFODNN7EXAMPLE", "callerId": "AIDAEXAMPLE"}}
    else:  # an ALB with an OIDC authenticate action
        oidc = {"x-amzn-oidc-identity": "bob", "x-amzn-oidc-data": "eyJ0eXAiOiJKV1QifQ.e30.sig"}
        if shape == "alb_multi":
            event["multiValueHeaders"].update({k: [v] for k, v in oidc.items()})
        else:
            event["headers"].update(oidc)
    return event


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_an_authenticated_caller_the_adapter_cannot_identify_is_401_not_anonymous(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape, anonymous_scope="anonymous")
    anonymous = api(http_event(shape, principal=None), None)
    assert anonymous["statusCode"] == 201
    bob = api(unreadable_identity(shape), None)
    assert bob["statusCode"] == 401 and problem_of(bob)["code"] == "principal-required"
    assert "principal=" in problem_of(bob)["detail"] or "cannot read" in problem_of(bob)["detail"]
    assert REPLAYED not in headers_of(bob) and "Set-Cookie" not in json.dumps(bob)
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ["http_api", "rest"])
def test_a_client_certificate_is_identity_data_too(shape: str) -> None:
    api, payments = make_api(MemoryStore(), shape, anonymous_scope="anonymous")
    event = http_event(shape, principal=None)
    certificate = {"clientCertPem": "-----BEGIN CERTIFICATE-----...", "subjectDN": "CN=bob"}
    if shape == "http_api":
        event["requestContext"]["authentication"] = {"clientCert": certificate}
    else:
        event["requestContext"]["identity"]["clientCert"] = certificate
    assert api(event, None)["statusCode"] == 401
    assert api(http_event(shape, principal=None), None)["statusCode"] == 201
    assert payments.runs == 1


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_a_principal_reader_that_reads_that_identity_scopes_it(shape: str) -> None:
    def read(event: dict[str, Any]) -> str | None:
        context = event["requestContext"]
        authorizer = context.get("authorizer") or {}
        headers = event.get("headers") or {k: v[0] for k, v in (event.get("multiValueHeaders") or {}).items()}
        found = (
            authorizer.get("userId")
            or (authorizer.get("lambda") or {}).get("userId")
            or (authorizer.get("iam") or {}).get("callerId")
            or headers.get("x-amzn-oidc-identity")
        )
        return str(found) if found else None

    api, payments = make_api(MemoryStore(), shape, anonymous_scope="anonymous", principal=read)
    assert api(http_event(shape, principal=None), None)["statusCode"] == 201
    bob = api(unreadable_identity(shape), None)
    assert bob["statusCode"] == 201 and REPLAYED not in headers_of(bob)
    assert headers_of(api(unreadable_identity(shape), None))[REPLAYED] == "true"
    assert payments.runs == 2


# Item 3: any principal is usable


def with_principal_id(event: dict[str, Any], principal_id: str) -> dict[str, Any]:
    event["requestContext"]["authorizer"] = {"principalId": principal_id, "integrationLatency": 0}
    return event


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize(
    "principal",
    [ALICE_TOKEN, "x" * 5000, "caller\ud800lone", "\udfff", "sha256:" + "0" * 64],
    ids=["2kb-token", "5000-chars", "lone-surrogate", "only-a-surrogate", "digest-lookalike"],
)
def test_long_and_odd_principals_are_usable_scopes(shape: str, principal: str) -> None:
    store = MemoryStore()
    api, payments = make_api(store, shape)
    first = api(http_event(shape, principal=principal), None)
    assert first["statusCode"] == 201
    assert headers_of(api(http_event(shape, principal=principal), None))[REPLAYED] == "true"
    other = api(http_event(shape, principal=principal[:-1] + "?"), None)
    assert other["statusCode"] == 201 and REPLAYED not in headers_of(other)
    assert payments.runs == 2
    for record in store._records.values():
        assert record.scope is not None and len(record.scope) <= MAX_SCOPE_LENGTH
        record.scope.encode("utf-8")  # storable as DynamoDB text


def test_a_rest_authorizer_that_returns_the_token_as_principal_id_works_on_dynamodb(moto_server_client: Any) -> None:
    """The issue's case end to end: a 1.5 KB principalId through a real DynamoDB (moto's server over HTTP)."""
    from tests.conftest import new_dynamodb_store

    store: DynamoDBStore = new_dynamodb_store(moto_server_client)
    api, payments = make_api(store, "rest", local_cache=False)
    for surrogate in ("", "\ud83d"):
        event = with_principal_id(http_event("rest"), ALICE_TOKEN + surrogate)
        assert api(event, None)["statusCode"] == 201
        assert headers_of(api(event, None))[REPLAYED] == "true"
    assert payments.runs == 2


@pytest.mark.parametrize("shape", ALL_SHAPES)
@pytest.mark.parametrize(
    "unusable", [b"bytes", {"sub": "x"}, True, 10**5000], ids=["bytes", "dict", "bool", "int-past-4300-digits"]
)
def test_a_principal_that_cannot_be_used_is_a_401_problem_not_an_exception(shape: str, unusable: Any) -> None:
    api, payments = make_api(MemoryStore(), shape, principal=lambda event: unusable)
    response = api(http_event(shape), None)
    assert response["statusCode"] == 401 and problem_of(response)["code"] == "principal-required"
    assert payments.runs == 0


def test_scopes_are_stored_as_given_up_to_the_limit_and_as_a_digest_past_it() -> None:
    assert normalise_scope("tenant-1") == "tenant-1"
    assert normalise_scope("t" * MAX_SCOPE_LENGTH) == "t" * MAX_SCOPE_LENGTH
    long, odd, lookalike = "t" * (MAX_SCOPE_LENGTH + 1), "a\ud800", "sha256:abc"
    digests = {normalise_scope(long), normalise_scope(odd), normalise_scope(lookalike)}
    assert len(digests) == 3 and all(str(d).startswith("sha256:") and len(str(d)) == 71 for d in digests)
    assert normalise_scope(str(normalise_scope(long))) != normalise_scope(long)
    with pytest.raises(MissingScopeError):
        normalise_scope("")


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_an_empty_anonymous_scope_is_a_configuration_error(shape: str) -> None:
    with pytest.raises(ValueError, match="anonymous_scope"):
        make_api(MemoryStore(), shape, **{**options_for(shape), "anonymous_scope": ""})
