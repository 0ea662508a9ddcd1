"""Telling a misconfigured store from an unavailable one, from what botocore raised.

A missing table, a table with another key schema, denied access, missing or rejected credentials and a wrong region will
fail every retry the same way: they become `StoreConfigurationError`, which names the table, the region and the fix, and
which ``fail_open`` never turns into an unguarded run. Throttling, 5xx answers, timeouts and connection failures are
outages (`StoreUnavailableError`): a retry may succeed. Loaded only when a store call fails; the S3 bucket and the KMS
key of the payloads are told apart the same way by `service_errors`.
"""

from __future__ import annotations

from typing import Any

from botocore import exceptions as boto

from ..errors import StoreConfigurationError, StoreUnavailableError
from ..service_errors import ACCESS_DENIED, NO_CREDENTIALS, NO_REGION, REJECTED_CREDENTIALS

MISSING_TABLE = "ResourceNotFoundException"
REFUSED_REQUEST = "ValidationException"
WRONG_KEY = (
    "missing the key",
    "type mismatch for key",
    "key element does not match the schema",
    "one of the required keys was not given a value",  # DynamoDB Local's words for a missing key
)
"""What DynamoDB says of a record's key the table does not have (another key name or type, a sort key): the table is
not an idempotency table of this library (a Powertools table, say), and every retry is refused the same way."""
BAD_TABLE_NAME = ("'tablename'", "table/index name", "table name")
"""What DynamoDB says of a table name that no table can have (AWS: ``Value ... at 'tableName' failed to satisfy
constraint``; DynamoDB Local: ``Invalid table/index name``): every call is refused the same way, never an outage."""
CREATE_HINT = (
    "create it with `create_table(store)`, `lambda-idempotency create-table --table {table} --region {region}{at}`, "
    "or `sam deploy` of a template that declares it"
)


def store_error(exc: Exception, table: str, client: Any) -> StoreConfigurationError | StoreUnavailableError:
    """The typed error for a failed call of ``client`` on ``table``."""
    region = _region(client)
    where = _where(table, client)
    endpoint = _endpoint(client)
    fix = CREATE_HINT.format(table=table, region=region, at=f" --endpoint-url {endpoint}" if endpoint else "")
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if code == MISSING_TABLE:
            return StoreConfigurationError(
                f"{where} does not exist ({code}: {message}); {fix}, or point the store at the table's region"
            )
        if code == REFUSED_REQUEST and any(words in message.lower() for words in WRONG_KEY):
            return _wrong_key(where, _key_schema(client, table), f"{code}: {message}")
        if code == REFUSED_REQUEST and any(words in message.lower() for words in BAD_TABLE_NAME):
            return _bad_name(where, f"{code}: {message}")
        if code in ACCESS_DENIED:
            return StoreConfigurationError(
                f"access to {where} was denied ({code}: {message}); allow the function's role dynamodb:GetItem, "
                "dynamodb:PutItem, dynamodb:UpdateItem and dynamodb:DeleteItem on it (a fenced commit's "
                "TransactWriteItems is authorised action by action, as these calls: template.yaml's "
                f"IdempotencyRecords statement), and check that the table exists ({fix})"
            )
        if code in REJECTED_CREDENTIALS:
            return StoreConfigurationError(
                f"the credentials used for {where} were rejected ({code}: {message}); check AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or AWS_PROFILE (a session token may have expired) and "
                "that the region is the table's"
            )
    elif isinstance(exc, boto.ParamValidationError):  # refused by botocore before it was sent: a table name of "", None
        return _bad_name(where, f"{type(exc).__name__}: {exc}")
    elif isinstance(exc, NO_CREDENTIALS):
        return StoreConfigurationError(
            f"no usable AWS credentials for {where} ({type(exc).__name__}: {exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE (in Lambda, the function's role provides them)"
        )
    elif isinstance(exc, NO_REGION):
        return StoreConfigurationError(
            f"no usable region for {where} ({type(exc).__name__}: {exc}); set AWS_REGION or AWS_DEFAULT_REGION, "
            "or pass region_name= to DynamoDBStore"
        )
    elif isinstance(exc, boto.EndpointConnectionError) and _unknown_region(client):
        return StoreConfigurationError(
            f"{region!r} is not a DynamoDB region, so {where} cannot be reached ({exc}); set the table's region "
            "(AWS_REGION, or region_name= of DynamoDBStore)"
        )
    return StoreUnavailableError(f"idempotency store unavailable: {exc}")


def unfit_table(client: Any, table: str) -> StoreConfigurationError | None:
    """After a transaction refused for what it asks: whether the idempotency table is at fault (missing, or keyed
    otherwise than ``pk`` (S) alone), rather than one of the function's writes. Read only on that failure's path;
    a role that may not DescribeTable gets None (the writes are blamed, as before this check)."""
    try:
        found = client.describe_table(TableName=table)["Table"]
    except boto.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != MISSING_TABLE:  # DescribeTable denied (a role granted only
            return None  # the store's four item calls) tells nothing about the table
        error = store_error(exc, table, client)
        return error if isinstance(error, StoreConfigurationError) else None
    except boto.BotoCoreError:
        return None
    schema = key_schema(found)
    if schema == FIT_KEY_SCHEMA:
        return None
    return _wrong_key(_where(table, client), schema, "its records are refused")


FIT_KEY_SCHEMA = "the key pk (S)"
"""`key_schema` of a table this library can use."""


def _wrong_key(where: str, schema: str, said: str) -> StoreConfigurationError:
    return StoreConfigurationError(
        f"{where} has {schema}, not the key an idempotency table needs: a string partition key 'pk' and no sort key "
        f"({said}); point the store at a table made by `create_table(store)` or `lambda-idempotency create-table` "
        "(a Powertools table cannot be shared)"
    )


def _bad_name(where: str, said: str) -> StoreConfigurationError:
    return StoreConfigurationError(
        f"{where} cannot exist: a DynamoDB table name is 3-255 characters of a-z, A-Z, 0-9, '_', '-' and '.', or the "
        f"table's ARN ({said}); check the name given to DynamoDBStore (an environment variable left unset, say)"
    )


def _key_schema(client: Any, table: str) -> str:
    """The table's key as it stands, to show what is wrong; read only on this failure's path."""
    try:
        return key_schema(client.describe_table(TableName=table)["Table"])
    except Exception:  # the message can do without it
        return "another key schema"


def key_schema(table: dict[str, Any]) -> str:
    """A table's key as DescribeTable gives it, written ``the key id (S)`` or ``the key pk (S), sk (S)``."""
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    return "the key " + ", ".join(f"{k['AttributeName']} ({types.get(k['AttributeName'])})" for k in table["KeySchema"])


def _where(table: str, client: Any) -> str:
    return f"idempotency table {table!r} in region {_region(client)}{_endpoint_note(client)}"


def _region(client: Any) -> str:
    return str(getattr(getattr(client, "meta", None), "region_name", None) or "(none)")


def _endpoint_note(client: Any) -> str:
    endpoint = _endpoint(client)
    return f" at {endpoint}" if endpoint else ""


def _endpoint(client: Any) -> str:
    """The client's endpoint when it is not AWS's own (DynamoDB Local, moto's server), else empty."""
    endpoint = str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "")
    return "" if endpoint.endswith(".amazonaws.com") else endpoint


def _unknown_region(client: Any) -> bool:
    """A connection failure on AWS's own endpoint of a region botocore does not know: a typo, not an outage."""
    meta = getattr(client, "meta", None)
    endpoint = str(getattr(meta, "endpoint_url", "") or "")
    if not endpoint.endswith(".amazonaws.com"):
        return False
    import boto3

    known = set(boto3.session.Session().get_available_regions("dynamodb"))
    return bool(known) and _region(client) not in known
