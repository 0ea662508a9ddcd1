"""Who is calling: the scope of an idempotency key, so one caller can never receive another caller's response.

Only what API Gateway or Lambda put in ``requestContext`` counts (a client cannot forge it); headers never do.
The first that is present wins, most specific first:

- a JWT's subject (HTTP API JWT authorizer, REST Cognito user pool authorizer), qualified by its issuer;
- a Lambda authorizer's ``principalId``;
- an IAM caller (Cognito identity id when present, since many users share one assumed role; else the caller ARN);
- an API key id (REST APIs).

ALB events carry no verified identity, and HTTP API Lambda authorizers return a context of the user's design:
pass ``principal=`` to read those. `carries_identity` tells a request with no identity data at all (the only kind
an anonymous scope may cover) from one whose caller is authenticated in a way the reader does not understand.
"""

from __future__ import annotations

from typing import Any


def principal_of(event: dict[str, Any]) -> str | None:
    context = event.get("requestContext")
    if not isinstance(context, dict):
        return None
    authorizer = _dict(context.get("authorizer"))
    identity = _dict(context.get("identity"))
    claims = _dict(_dict(authorizer.get("jwt")).get("claims")) or _dict(authorizer.get("claims"))
    if _text(claims.get("sub")):
        return f"jwt:{_text(claims.get('iss')) or ''}#{claims['sub']}"
    if _text(authorizer.get("principalId")):
        return f"authorizer:{authorizer['principalId']}"
    iam = _dict(authorizer.get("iam")) or identity
    cognito = _text(_dict(iam.get("cognitoIdentity")).get("identityId")) or _text(iam.get("cognitoIdentityId"))
    if cognito:
        return f"cognito:{cognito}"
    if _text(iam.get("userArn")):
        return f"iam:{iam['userArn']}"
    if _text(identity.get("apiKeyId")):
        return f"apikey:{identity['apiKeyId']}"
    return None


NETWORK_FIELDS = frozenset({"sourceIp", "userAgent", "vpcId", "vpceId"})
"""Fields of a REST ``requestContext.identity`` that every request has: where it came from, not who sent it."""
ALB_IDENTITY_HEADERS = ("x-amzn-oidc-", "x-amzn-mtls-clientcert")
"""Header prefixes an ALB adds for an authenticated caller (an OIDC/Cognito authenticate action, mutual TLS)."""


def carries_identity(event: dict[str, Any]) -> bool:
    """Whether the request carries any authorizer or identity data: an authorizer's output (JWT, Lambda, IAM,
    Cognito), a client certificate, a REST identity field beyond the network's, or an ALB's OIDC or mTLS headers.
    Unknown fields count as identity, so a caller is never taken for anonymous because this list is out of date."""
    context = _dict(event.get("requestContext"))
    if _has_data(context.get("authorizer")) or _has_data(context.get("authentication")):  # v2 mutual TLS
        return True
    identity = _dict(context.get("identity"))
    if any(_has_data(value) for name, value in identity.items() if name not in NETWORK_FIELDS):
        return True
    if "elb" in context:
        names = [*_dict(event.get("headers")), *_dict(event.get("multiValueHeaders"))]
        return any(str(name).lower().startswith(ALB_IDENTITY_HEADERS) for name in names)
    return False


def _has_data(value: Any) -> bool:
    """Anything but null, an empty string or an empty container, at any depth.

    A walk with its own stack, not recursion: an authorizer's context is the authorizer's design, and one nested a
    few hundred levels (a direct invoke, or a Lambda authorizer's JSON) must be a 401, never a `RecursionError`."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif item is not None and item != "":
            return True
    return False


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
