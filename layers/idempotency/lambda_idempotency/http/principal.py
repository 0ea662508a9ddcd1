"""Who is calling: the scope of an idempotency key, so one caller can never receive another caller's response.

Only what API Gateway or Lambda put in ``requestContext`` counts (a client cannot forge it); headers never do.
The first that is present wins, most specific first:

- a JWT's subject (HTTP API JWT authorizer, REST Cognito user pool authorizer), qualified by its issuer;
- a Lambda authorizer's ``principalId``;
- an IAM caller (Cognito identity id when present, since many users share one assumed role; else the caller ARN);
- an API key id (REST APIs).

ALB events carry no verified identity, and HTTP API Lambda authorizers return a context of the user's design:
pass ``principal=`` to read those.
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


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
