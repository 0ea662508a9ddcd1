"""Client-side encryption against moto's KMS: the table (and the bucket) hold ciphertext, replays are intact.

Each test scans what is stored and looks for the secret text in it, in every encoding it could take.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from lambda_idempotency import (
    DynamoDBStore,
    KmsEncryption,
    ResultUnreadableError,
    S3Offload,
    StoreConfigurationError,
    StoreUnavailableError,
    create_table,
    current,
    idempotent_function,
)
from lambda_idempotency.http import idempotent_http
from lambda_idempotency.payloads import ENCRYPTED, OFFLOADED
from lambda_idempotency.testing import free_port
from moto import mock_aws

from tests.conftest import FakeClock, table_items
from tests.http_events import http_event

CARD = "4242424242424242"
BUCKET = "idempotency-results"


class CardDeclinedError(Exception):
    pass


@pytest.fixture
def key_arn() -> Iterator[str]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]


def encrypted_store(key_arn: str, *, offload: bool = False) -> DynamoDBStore:
    store = DynamoDBStore(
        f"idem-{uuid.uuid4().hex[:12]}",
        client=boto3.client("dynamodb", region_name="us-east-1"),
        encryption=KmsEncryption(key_arn),
        offload=S3Offload(BUCKET, client=boto3.client("s3", region_name="us-east-1")) if offload else None,
    )
    create_table(store)
    return store


def assert_unreadable(stored: bytes, secret: str) -> None:
    for form in (secret.encode(), base64.b64encode(secret.encode()), json.dumps(secret).encode()):
        assert form not in stored


def stored_bytes(items: list[dict[str, Any]]) -> bytes:
    """Every value of every item as bytes: binary values as they are, the rest as their text."""
    found = []
    for item in items:
        for value in _values(item):
            found.append(bytes(value) if isinstance(value, (bytes, bytearray)) else str(value).encode())
    return b"\n".join(found)


def _values(data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for value in data.values():
            yield from _values(value)
    elif isinstance(data, list):
        for value in data:
            yield from _values(value)
    else:
        yield data


def test_results_steps_and_failures_are_unreadable_in_the_table_and_replayed_intact(
    key_arn: str, clock: FakeClock
) -> None:
    store = encrypted_store(key_arn)

    @idempotent_function(
        store, key="k", operation="pay", cache_errors=(CardDeclinedError,), local_cache=False, clock=clock
    )
    def pay(k: str, decline: bool) -> dict[str, str]:
        card = current().step("tokenise", lambda: {"card": CARD})
        if decline:
            raise CardDeclinedError(f"card {CARD} declined")
        return {"charged": card["card"]}

    assert pay("ok", False) == {"charged": CARD}
    with pytest.raises(CardDeclinedError):
        pay("no", True)
    items = table_items(store)
    assert len(items) == 2
    assert_unreadable(stored_bytes(items), CARD)
    for item in items:
        assert bytes(item["result"]["B"])[:1] == ENCRYPTED
        assert bytes(item["steps"]["M"]["tokenise"]["B"])[:1] == ENCRYPTED
    assert pay("ok", False) == {"charged": CARD}
    with pytest.raises(CardDeclinedError, match=f"card {CARD} declined"):
        pay("no", True)


def test_an_encrypted_offloaded_object_is_ciphertext_too(key_arn: str) -> None:
    store = encrypted_store(key_arn, offload=True)
    big = CARD * 20_000 + base64.b64encode(os.urandom(300_000)).decode()

    @idempotent_function(store, key="k", operation="big", local_cache=False)
    def produce(k: str) -> str:
        return big

    assert produce("a") == big
    assert produce("a") == big
    (item,) = table_items(store)
    assert bytes(item["result"]["B"])[:1] == OFFLOADED
    s3 = boto3.client("s3", region_name="us-east-1")
    (obj,) = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
    assert body[:1] == ENCRYPTED
    assert_unreadable(body, CARD)


def test_encrypted_http_responses_are_unreadable_and_replayed(key_arn: str) -> None:
    store = encrypted_store(key_arn)

    @idempotent_http(store, operation="cards")
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 201, "body": json.dumps({"card": CARD})}

    event = http_event("http_api")
    first = handler(event, None)
    assert handler(event, None)["body"] == first["body"]
    assert_unreadable(stored_bytes(table_items(store)), CARD)


def test_a_ciphertext_moved_to_another_record_is_refused(key_arn: str) -> None:
    """The encryption context binds each payload to its operation and record id."""
    store = encrypted_store(key_arn)

    @idempotent_function(store, key="k", operation="moved", local_cache=False)
    def produce(k: str) -> str:
        return f"result of {k}"

    produce("a")
    produce("b")
    items = {item["key"]["S"]: item for item in table_items(store)}
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": items["b"]["pk"]},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "result"},
        ExpressionAttributeValues={":r": items["a"]["result"]},
    )
    assert produce("a") == "result of a"
    with pytest.raises(ResultUnreadableError, match="another record"):
        produce("b")


def test_a_store_without_the_encryption_refuses_encrypted_records_loudly(key_arn: str) -> None:
    store = encrypted_store(key_arn)

    @idempotent_function(store, key="k", operation="op", local_cache=False)
    def produce(k: str) -> str:
        return "secret"

    produce("a")
    plain = DynamoDBStore(store.table_name, client=store.client)

    @idempotent_function(plain, key="k", operation="op", local_cache=False)
    def reader(k: str) -> str:
        raise AssertionError("must not run")

    with pytest.raises(ResultUnreadableError, match="encryption"):
        reader("a")


def test_key_arn_is_required() -> None:
    with pytest.raises(ValueError, match="ARN"):
        KmsEncryption("alias/idempotency")


def test_kms_out_of_reach_on_replay_is_store_unavailable_not_a_wrong_answer(
    key_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = encrypted_store(key_arn)

    @idempotent_function(store, key="k", operation="op", local_cache=False)
    def produce(k: str) -> str:
        return "secret"

    produce("a")
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    cut_off = DynamoDBStore(store.table_name, client=store.client, encryption=KmsEncryption(key_arn))

    @idempotent_function(cut_off, key="k", operation="op", local_cache=False)
    def reader(k: str) -> str:
        raise AssertionError("must not run")

    with pytest.raises(StoreUnavailableError, match="KMS could not be reached"):
        reader("a")


def test_a_kms_key_that_does_not_exist_is_a_configuration_error_whatever_fail_open_says(key_arn: str) -> None:
    """A key ARN with a typo (KMS answers NotFoundException, wrapped by the Encryption SDK) fails every retry the same
    way: `StoreConfigurationError`, loudly, not an outage that leaves the key in flight while each retry after the
    lease runs the function again (DESIGN.md, "Misconfiguration is not an outage"). Nothing is stored in clear."""
    missing = key_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    store = encrypted_store(missing)
    runs: list[str] = []

    @idempotent_function(store, key="k", operation="op", local_cache=False, fail_open=True)
    def charge(k: str) -> str:
        runs.append(k)
        return CARD

    with pytest.raises(StoreConfigurationError, match="NotFoundException") as raised:
        charge("a")
    assert missing in str(raised.value) and runs == ["a"]
    assert_unreadable(stored_bytes(table_items(store)), CARD)
    assert [item["status"]["S"] for item in table_items(store)] == ["IN_PROGRESS"]  # held until its lease ends


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        ("AccessDeniedException", StoreConfigurationError),
        ("DisabledException", StoreConfigurationError),
        ("KMSInvalidStateException", StoreConfigurationError),
        ("ThrottlingException", StoreUnavailableError),
        ("KMSInternalException", StoreUnavailableError),
        ("InvalidCiphertextException", ResultUnreadableError),
    ],
)
def test_kms_refusing_a_replays_decryption_is_told_by_its_answer(
    key_arn: str, code: str, meaning: type[Exception]
) -> None:
    """KMS refusing the Decrypt of a replay, answered on the wire (moto answers no refusal or throttling itself):
    the Encryption SDK raises its own error in place of KMS's, without it, so the answer is heard on the way. A key
    denied, disabled or pending deletion is a misconfiguration, throttling an outage (a retry may work), and a
    ciphertext KMS will not read `ResultUnreadableError`. Nothing runs the function again."""
    import botocore.session
    from botocore.awsrequest import AWSResponse

    from tests.faults import _Body

    refusing: list[str] = []

    def kms_answers(request: Any, **_: Any) -> AWSResponse | None:
        if not refusing:
            return None  # to moto
        body = json.dumps({"__type": code, "message": "said KMS"}).encode()
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Body(body))

    session = botocore.session.Session()
    session.register("before-send.kms.Decrypt", kms_answers)
    store = DynamoDBStore(
        f"idem-{uuid.uuid4().hex[:12]}",
        client=boto3.client("dynamodb", region_name="us-east-1"),
        encryption=KmsEncryption(key_arn, botocore_session=session),
    )
    create_table(store)
    runs: list[str] = []

    @idempotent_function(store, key="k", operation="op", local_cache=False)
    def charge(k: str) -> str:
        runs.append(k)
        return CARD

    assert charge("a") == CARD
    refusing.append(code)
    with pytest.raises(meaning, match=code if meaning is not ResultUnreadableError else "cannot be decrypted"):
        charge("a")
    assert runs == ["a"]
