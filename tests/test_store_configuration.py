"""Misconfiguration is not an outage (issue 12, item 1): a missing table, denied access, missing or rejected
credentials and a wrong region raise `StoreConfigurationError`, naming the table, the region and the fix, whatever
``fail_open`` says; the HTTP adapter answers 500 ``store-misconfigured`` and logs at ERROR. Throttling, 5xx,
timeouts and connection failures stay outages (`StoreUnavailableError`, which ``fail_open`` may run through).

The errors come from real servers over HTTP (moto's server, DynamoDB Local) where they produce them: a missing
table, a table in another region, an access key DynamoDB Local rejects, no credentials at all. Access denied (no
IAM in either) and a DNS failure are answered on the wire, below botocore, as tests/faults.py answers outages.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from lambda_idempotency import (
    DynamoDBStore,
    IdempotencyError,
    InvalidKeyError,
    StoreConfigurationError,
    StoreUnavailableError,
    create_table,
    current,
    idempotent_function,
)
from lambda_idempotency.batch import idempotent_record, process_batch
from lambda_idempotency.http import idempotent_http
from lambda_idempotency.keys import MAX_OPERATION_LENGTH

from tests.conftest import HTTP_BACKENDS, endpoint_of, http_client, new_dynamodb_store
from tests.faults import Fault, FaultInjector
from tests.http_events import http_event, problem_of

FIXES = ("create_table(store)", "lambda-idempotency create-table", "sam deploy")


def guarded(store: DynamoDBStore, runs: list[str], *, fail_open: bool) -> Any:
    @idempotent_function(store, key="order_id", operation="orders.charge", fail_open=fail_open)
    def charge(order_id: str) -> str:
        runs.append(order_id)
        return "charged"

    return charge


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
@pytest.mark.parametrize("fail_open", [False, True])
def test_a_missing_table_names_table_region_and_fix_whatever_fail_open_says(
    request: pytest.FixtureRequest, backend: str, fail_open: bool, caplog: pytest.LogCaptureFixture
) -> None:
    store = DynamoDBStore(
        "MistypedIdempotencyTable", endpoint_url=endpoint_of(request, backend), region_name="eu-west-1"
    )
    runs: list[str] = []
    with pytest.raises(StoreConfigurationError) as raised, caplog.at_level(logging.ERROR, "lambda_idempotency"):
        guarded(store, runs, fail_open=fail_open)("o-1")
    message = str(raised.value)
    assert "'MistypedIdempotencyTable'" in message and "eu-west-1" in message
    assert all(fix in message for fix in FIXES), message
    assert isinstance(raised.value, IdempotencyError) and not isinstance(raised.value, StoreUnavailableError)
    assert runs == []  # never run unguarded, fail_open or not
    assert any(r.levelno == logging.ERROR and "misconfigured" in r.getMessage() for r in caplog.records)


def test_the_create_table_command_a_missing_table_suggests_reaches_the_stores_endpoint(moto_endpoint: str) -> None:
    """The fix named `lambda-idempotency create-table --table T --region R` without the store's endpoint: pasted by
    a user of DynamoDB Local or moto's server, it went to AWS, not to the table the store looks for."""
    store = DynamoDBStore("NotMadeYet", endpoint_url=moto_endpoint, region_name="us-east-1")
    with pytest.raises(StoreConfigurationError) as raised:
        guarded(store, [], fail_open=True)("o-1")
    command = f"`lambda-idempotency create-table --table NotMadeYet --region us-east-1 --endpoint-url {moto_endpoint}`"
    assert command in str(raised.value)


def test_a_table_in_another_region_is_a_configuration_error(moto_endpoint: str) -> None:
    create_table(DynamoDBStore("RegionalTable", endpoint_url=moto_endpoint, region_name="us-east-1"))
    elsewhere = DynamoDBStore("RegionalTable", endpoint_url=moto_endpoint, region_name="eu-central-1")
    with pytest.raises(StoreConfigurationError, match=r"'RegionalTable' in region eu-central-1.*does not exist"):
        guarded(elsewhere, [], fail_open=True)("o-1")


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
@pytest.mark.parametrize(
    ("keys", "refused"),
    [
        ({"id": "S"}, "the key id (S)"),  # a Powertools table
        ({"pk": "N"}, "the key pk (N)"),  # the key's name, another type
        ({"pk": "S", "sk": "S"}, "the key pk (S), sk (S)"),  # a sort key the records do not carry
    ],
)
def test_a_table_with_another_key_schema_is_a_configuration_error_whatever_fail_open_says(
    request: pytest.FixtureRequest, backend: str, keys: dict[str, str], refused: str
) -> None:
    client = http_client(endpoint_of(request, backend))
    table = f"WrongKeys-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": n, "KeyType": "HASH" if i == 0 else "RANGE"} for i, n in enumerate(keys)],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in keys.items()],
    )
    runs: list[str] = []
    for fail_open in (False, True):
        with pytest.raises(StoreConfigurationError) as raised:
            guarded(DynamoDBStore(table, client=client), runs, fail_open=fail_open)("o-1")
        message = str(raised.value)
        assert f"'{table}'" in message and refused in message and "'pk'" in message, message
        assert "create_table(store)" in message
    assert runs == []  # never run unguarded, fail_open or not


@pytest.mark.parametrize("table", ["missing", "powertools"])
@pytest.mark.parametrize("fail_open", [False, True])
def test_optimistic_mode_on_a_table_that_cannot_serve_is_a_configuration_error(
    dynamodb_local_endpoint: str, table: str, fail_open: bool
) -> None:
    """In optimistic mode the first store call is the commit of the writes with the finished record, after the
    function ran: a missing or Powertools table refused the whole transaction, which was blamed on the function's
    writes (`InvalidWriteError`). It is the table's fault: `StoreConfigurationError`, and no write is applied.
    (DynamoDB Local, which refuses such a transaction as DynamoDB does; moto answers it with a KeyError reason.)"""
    client = http_client(dynamodb_local_endpoint)
    business = f"Orders-{uuid.uuid4().hex[:8]}"
    name = f"Idem-{uuid.uuid4().hex[:8]}"
    for created, key in ((business, "id"), *(((name, "id"),) if table == "powertools" else ())):
        client.create_table(
            TableName=created,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        )

    @idempotent_function(
        DynamoDBStore(name, client=client), key="k", operation="o", mode="optimistic", fail_open=fail_open
    )
    def order(k: str) -> str:
        current().write({"Put": {"TableName": business, "Item": {"id": {"S": k}}}})
        return k

    with pytest.raises(StoreConfigurationError, match=f"'{name}'"):
        order("o-1")
    assert client.scan(TableName=business)["Items"] == []


def test_credentials_dynamodb_local_rejects(dynamodb_local_endpoint: str) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local_endpoint,
        region_name="us-east-1",
        aws_access_key_id="not a key!",
        aws_secret_access_key="testing",
    )
    store = DynamoDBStore("IdempotencyTable", client=client)
    runs: list[str] = []
    with pytest.raises(StoreConfigurationError, match="UnrecognizedClientException") as raised:
        guarded(store, runs, fail_open=True)("o-1")
    assert "credentials" in str(raised.value) and "'IdempotencyTable'" in str(raised.value)
    assert runs == []


def test_no_credentials_at_all(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance metadata service
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # the default session caches the credentials it found
    store = DynamoDBStore("IdempotencyTable", endpoint_url=moto_endpoint, region_name="us-east-1")
    runs: list[str] = []
    with pytest.raises(StoreConfigurationError, match="no usable AWS credentials") as raised:
        guarded(store, runs, fail_open=True)("o-1")
    assert "'IdempotencyTable'" in str(raised.value) and "us-east-1" in str(raised.value)
    assert runs == []
    with pytest.raises(StoreConfigurationError, match="no usable AWS credentials"):  # the setup step says it too
        create_table(store)


def test_create_table_on_a_table_that_cannot_serve_is_a_configuration_error(moto_endpoint: str) -> None:
    """`create_table(store)` took an existing table as it was: set up on a Powertools table (key ``id``), it said
    nothing, and every call then failed. It names the table and its key."""
    client = http_client(moto_endpoint)
    table = f"PowertoolsTable-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    with pytest.raises(StoreConfigurationError, match=rf"'{table}' exists but has the key id \(S\)"):
        create_table(DynamoDBStore(table, client=client))


def test_no_region_is_a_configuration_error_when_the_store_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with pytest.raises(StoreConfigurationError, match="AWS_REGION"):
        DynamoDBStore("IdempotencyTable")


class WireAnswer:
    """Answers every DynamoDB request of one client as the service would: an error response, or a DNS failure."""

    def __init__(self, client: Any, *, error: str | None = None, unreachable: bool = False) -> None:
        self.error, self.unreachable = error, unreachable
        client.meta.events.register_first("before-send.dynamodb", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        if self.unreachable:
            raise EndpointConnectionError(endpoint_url=request.url)
        body = json.dumps({"__type": f"com.amazon.coral.service#{self.error}", "Message": "User: x is not authorized"})

        class Body:
            def stream(self, **_: Any) -> Any:
                yield body.encode()

        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, Body())


def test_access_denied_names_the_permissions() -> None:
    store = DynamoDBStore("IdempotencyTable", region_name="us-east-1")
    WireAnswer(store.client, error="AccessDeniedException")
    runs: list[str] = []
    with pytest.raises(StoreConfigurationError, match="denied") as raised:
        guarded(store, runs, fail_open=True)("o-1")
    assert "PutItem" in str(raised.value) and "'IdempotencyTable' in region us-east-1" in str(raised.value)
    assert runs == []


def test_access_denied_asks_for_the_iam_actions_the_template_grants() -> None:
    """IAM has no TransactWriteItems permission: each action of a transaction is authorised as the single-item call
    it stands for (PutItem, UpdateItem, DeleteItem, ConditionCheckItem; AWS's "Using IAM with DynamoDB
    transactions"). The fix the message gives is the template's IdempotencyRecords statement, action for action."""
    from demo.template import load_template

    functions = [r for r in load_template()["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    granted = {
        action
        for function in functions
        for policy in function["Properties"]["Policies"]
        for statement in policy["Statement"]
        if statement["Sid"] == "IdempotencyRecords"
        for action in statement["Action"]
    }
    store = DynamoDBStore("IdempotencyTable", region_name="us-east-1")
    WireAnswer(store.client, error="AccessDeniedException")
    with pytest.raises(StoreConfigurationError, match="denied") as raised:
        guarded(store, [], fail_open=False)("o-1")
    asked = set(re.findall(r"dynamodb:\w+", str(raised.value)))
    assert asked == granted, str(raised.value)
    assert "DynamoDBCrudPolicy" not in str(raised.value)  # the template grants the actions by name


def test_an_unknown_region_is_a_configuration_error_a_known_one_an_outage() -> None:
    typo = DynamoDBStore("IdempotencyTable", region_name="us-east-9")
    WireAnswer(typo.client, unreachable=True)
    with pytest.raises(StoreConfigurationError, match="'us-east-9' is not a DynamoDB region"):
        guarded(typo, [], fail_open=True)("o-1")

    real = DynamoDBStore("IdempotencyTable", region_name="us-east-1")
    WireAnswer(real.client, unreachable=True)
    runs: list[str] = []
    assert guarded(real, runs, fail_open=True)("o-1") == "charged"  # an outage: fail_open runs it unguarded
    assert runs == ["o-1"]


@pytest.mark.parametrize("fault", [Fault.THROTTLING, Fault.SERVER_ERROR, Fault.CONNECTION_RESET, Fault.TIMEOUT])
def test_outages_stay_outages(moto_endpoint: str, fault: Fault) -> None:
    store = DynamoDBStore(f"outage-{fault.name.lower()}", endpoint_url=moto_endpoint, region_name="us-east-1")
    create_table(store)
    FaultInjector(store.client, "claim", fault, times=None)
    runs: list[str] = []
    assert guarded(store, runs, fail_open=True)("o-1") == "charged"  # an outage: fail_open may run it unguarded
    assert runs == ["o-1"]  # (without fail_open, StoreUnavailableError: tests/test_faults.py)


@pytest.mark.parametrize("fail_open", [False, True])
def test_http_answers_500_store_misconfigured_and_logs_at_error(
    moto_endpoint: str, fail_open: bool, caplog: pytest.LogCaptureFixture
) -> None:
    store = DynamoDBStore("NoSuchTable", endpoint_url=moto_endpoint, region_name="us-east-1")
    runs: list[dict[str, Any]] = []

    @idempotent_http(store, operation="payments.create", fail_open=fail_open)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs.append(event)
        return {"statusCode": 201, "body": "{}"}

    with caplog.at_level(logging.ERROR, "lambda_idempotency"):
        response = handler(http_event("http_api"), None)
    assert response["statusCode"] == 500
    assert "retry-after" not in {name.lower() for name in response.get("headers", {})}
    assert problem_of(response)["code"] == "store-misconfigured"
    assert "NoSuchTable" not in response["body"]  # the table and region go to the log, not to the caller
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("'NoSuchTable'" in m and "create_table(store)" in m for m in errors), errors
    assert runs == []


def test_a_batch_fails_the_invocation_instead_of_each_record(moto_endpoint: str) -> None:
    store = DynamoDBStore("NoSuchTable", endpoint_url=moto_endpoint, region_name="us-east-1")
    sent: list[str] = []

    @idempotent_record(store, operation="emails.send")
    def send(record: Any) -> None:
        sent.append(record.message_id)

    records = [{"messageId": f"m-{i}", "body": "{}", "eventSource": "aws:sqs", "attributes": {}} for i in range(2)]
    with pytest.raises(StoreConfigurationError, match="'NoSuchTable'"):
        process_batch({"Records": records}, None, send)
    assert sent == []


def test_the_cli_exits_2_with_the_fix_when_no_region_is_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lambda_idempotency import cli

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    assert cli.main(["stats", "--table", "Orders"]) == 2
    assert "AWS_REGION" in capsys.readouterr().err


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
def test_an_operation_too_long_for_a_dynamodb_key_is_refused_at_decoration_not_taken_for_an_outage(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """The operation prefixes every record id (``{operation}#{sha256}``), and DynamoDB's partition key takes 2,048
    bytes. An operation of 1,024 characters passed the check whatever they were: 1,024 ``é`` (2,048 bytes) made every
    claim a ValidationException, taken for an outage (`StoreUnavailableError`, so ``fail_open=True`` ran every call
    unguarded; on AWS, whose message says "size", an internal exception escaped). Now an operation takes at most
    1,024 bytes of UTF-8, refused with `InvalidKeyError` when decorated; the longest allowed works on the wire."""
    store = new_dynamodb_store(http_client(endpoint_of(request, backend)))
    for operation in ("é" * MAX_OPERATION_LENGTH, "😀" * 257, "a" * (MAX_OPERATION_LENGTH + 1)):
        with pytest.raises(InvalidKeyError, match="operation"):
            idempotent_function(store, key="k", operation=operation, fail_open=True)(lambda k: k)
    for operation in ("a" * MAX_OPERATION_LENGTH, "é" * (MAX_OPERATION_LENGTH // 2), "😀" * 256):
        runs: list[str] = []
        charge = guarded_as(store, operation, runs)
        assert charge("o-1") == charge("o-1") == "charged"
        assert runs == ["o-1"]
    with pytest.raises(TypeError, match="operation must be a str"):
        idempotent_function(store, key="k", operation=5)(lambda k: k)  # type: ignore[arg-type]


def guarded_as(store: DynamoDBStore, operation: str, runs: list[str]) -> Any:
    @idempotent_function(store, key="order_id", operation=operation)
    def charge(order_id: str) -> str:
        runs.append(order_id)
        return "charged"

    return charge


class Declined(Exception):
    pass


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
@pytest.mark.parametrize("ends", ["returns", "raises", "raises a declared failure"])
def test_a_table_deleted_while_the_function_runs_is_raised_and_logged_at_error(
    request: pytest.FixtureRequest, backend: str, ends: str, caplog: pytest.LogCaptureFixture
) -> None:
    """how-it-works: misconfiguration raises `StoreConfigurationError` whatever ``fail_open`` says, "logged at
    ERROR". Found by the claim it was; found after the function ran (the table deleted, the role's access revoked
    while it ran) the completion, the stored failure or the release raised it with no log at all."""
    client = http_client(endpoint_of(request, backend))
    store = new_dynamodb_store(client)

    @idempotent_function(store, key="order_id", operation="orders.charge", fail_open=True, cache_errors=(Declined,))
    def charge(order_id: str) -> str:
        client.delete_table(TableName=store.table_name)
        if ends == "raises":
            raise RuntimeError("the function's own failure")
        if ends == "raises a declared failure":
            raise Declined(order_id)
        return "charged"

    with caplog.at_level(logging.ERROR, "lambda_idempotency"), pytest.raises(StoreConfigurationError) as raised:
        charge("o-1")
    assert f"{store.table_name!r}" in str(raised.value)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "misconfigured" in errors[0] and store.table_name in errors[0], errors


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
@pytest.mark.parametrize("status", [201, 503, "step"])
def test_http_answers_a_table_deleted_while_the_handler_runs_500_logged_once(
    request: pytest.FixtureRequest, backend: str, status: int | str, caplog: pytest.LogCaptureFixture
) -> None:
    """The completion (201), the release of a retry-me answer (503) or a step's save and the release after it find
    the table gone: a 500 ``store-misconfigured``, logged at ERROR once. The releases raised
    `StoreConfigurationError` out of the adapter, with nothing logged."""
    client = http_client(endpoint_of(request, backend))
    store = new_dynamodb_store(client)

    @idempotent_http(store, operation="payments.create")
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        client.delete_table(TableName=store.table_name)
        if status == "step":
            current().step("charge", lambda: "ch-1")
        return {"statusCode": 201 if status == "step" else status, "body": "{}"}

    with caplog.at_level(logging.ERROR, "lambda_idempotency"):
        response = handler(http_event("http_api"), None)
    assert response["statusCode"] == 500 and problem_of(response)["code"] == "store-misconfigured"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and store.table_name in errors[0], errors


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
@pytest.mark.parametrize("name", ["", "ab", "orders table!", "t" * 256])
def test_a_table_name_no_table_can_have_is_misconfiguration_not_an_outage(
    request: pytest.FixtureRequest, backend: str, name: str
) -> None:
    """how-it-works: "a missing table ... raise[s] StoreConfigurationError whatever fail_open says". A name no table can
    have (an unset environment variable read as "", a space) was refused by botocore's check or by DynamoDB's
    ValidationException, both taken for an outage: with ``fail_open=True`` every call ran unguarded."""
    store = DynamoDBStore(name, endpoint_url=endpoint_of(request, backend), region_name="us-east-1")
    runs: list[str] = []
    with pytest.raises(StoreConfigurationError) as raised:
        guarded(store, runs, fail_open=True)("o-1")
    assert f"{name!r}" in str(raised.value)
    if backend == "dynamodb_local" or not name:  # moto's server answers the others as a table it does not have
        assert "a DynamoDB table name is 3-255 characters" in str(raised.value)
    assert runs == []
