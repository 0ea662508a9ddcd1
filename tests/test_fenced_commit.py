"""The fenced commit: a function's DynamoDB writes and its completion in one TransactWriteItems (DESIGN.md).

Runs on moto in-process, moto's server and DynamoDB Local; round trips are counted on the wire.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lambda_idempotency import (
    InvalidWriteError,
    LeaseLostError,
    MemoryStore,
    WriteConditionError,
    current,
    idempotent_function,
)
from lambda_idempotency.keys import record_id
from lambda_idempotency.record import Status
from lambda_idempotency.stores.dynamodb import DynamoDBStore

from .conftest import HTTP_BACKENDS, FakeClock, client_of, new_business_table, new_dynamodb_store
from .test_fallbacks import ResendingClient


def credit(table: str, account: str, amount: int) -> dict[str, Any]:
    """A write that is not idempotent by itself: applied twice, the balance shows it."""
    return {
        "Update": {
            "TableName": table,
            "Key": {"id": {"S": account}},
            "UpdateExpression": "ADD #b :a",
            "ExpressionAttributeNames": {"#b": "balance"},
            "ExpressionAttributeValues": {":a": {"N": str(amount)}},
        }
    }


def new_payment(table: str, payment_id: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table,
            "Item": {"id": {"S": payment_id}, "kind": {"S": "payment"}},
            "ConditionExpression": "attribute_not_exists(id)",
        }
    }


def balance(client: Any, table: str, account: str) -> int:
    item = client.get_item(TableName=table, Key={"id": {"S": account}}, ConsistentRead=True).get("Item")
    return int(item["balance"]["N"]) if item else 0


def test_writes_commit_with_the_completion_in_two_round_trips(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)

    @idempotent_function(dynamodb_store, key="order", operation="pay", clock=clock, local_cache=False)
    def pay(order: str, amount: int) -> dict[str, Any]:
        current().write(new_payment(table, f"pay-{order}"))
        current().write(credit(table, "acct-1", amount))
        return {"order": order, "amount": amount}

    counter = count_calls(client)
    assert pay("o-1", 5) == {"order": "o-1", "amount": 5}
    assert counter.calls == ["PutItem", "TransactWriteItems"]  # claim, then writes + completion together
    record = dynamodb_store.get(record_id("pay", None, "o-1"))
    assert record is not None and record.status is Status.COMPLETED

    counter.reset()
    assert pay("o-1", 5) == {"order": "o-1", "amount": 5}
    assert counter.calls == ["PutItem"]
    assert balance(client, table, "acct-1") == 5


def test_resource_form_values_go_through_the_type_serializer(dynamodb_store: DynamoDBStore, clock: FakeClock) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)

    @idempotent_function(dynamodb_store, key="k", operation="res", clock=clock)
    def save(k: str) -> None:
        item = {"id": k, "amount": Decimal("12.50"), "tags": {"a", "b"}, "meta": {"n": 1, "ok": True}}
        current().write({"Put": {"TableName": table, "Item": item}}, resource=True)
        current().write(
            {
                "Update": {
                    "TableName": table,
                    "Key": {"id": f"{k}-total"},
                    "UpdateExpression": "ADD #b :a",
                    "ExpressionAttributeNames": {"#b": "balance"},
                    "ExpressionAttributeValues": {":a": 3},
                }
            },
            resource=True,
        )

    save("r-1")
    item = client.get_item(TableName=table, Key={"id": {"S": "r-1"}}, ConsistentRead=True)["Item"]
    assert Decimal(item["amount"]["N"]) == Decimal("12.50")
    assert sorted(item["tags"]["SS"]) == ["a", "b"]
    assert item["meta"] == {"M": {"n": {"N": "1"}, "ok": {"BOOL": True}}}
    assert balance(client, table, "r-1-total") == 3


def test_a_failing_condition_of_a_write_names_it_applies_nothing_and_releases_the_key(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)
    client.put_item(TableName=table, Item={"id": {"S": "pay-taken"}})
    runs: list[str] = []

    @idempotent_function(dynamodb_store, key="order", operation="pay", clock=clock, local_cache=False)
    def pay(order: str, payment_id: str) -> str:
        runs.append(payment_id)
        current().write(credit(table, "acct-1", 7))
        current().write(new_payment(table, payment_id))
        return payment_id

    with pytest.raises(WriteConditionError, match=r"write #1 \(Put on biz-") as info:
        pay("o-1", "pay-taken")
    assert info.value.failed == ((1, "Put", table),)
    assert balance(client, table, "acct-1") == 0  # the credit went down with the failing Put
    assert dynamodb_store.get(record_id("pay", None, "o-1")) is None  # released: the retry runs again
    assert pay("o-1", "pay-new") == "pay-new"
    assert balance(client, table, "acct-1") == 7
    assert runs == ["pay-taken", "pay-new"]


def test_a_zombie_after_take_over_commits_nothing_and_raises_lease_lost(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)

    @idempotent_function(dynamodb_store, key="k", operation="job", clock=clock, lease=10, local_cache=False)
    def job(k: str, amount: int, nested: bool = True) -> int:
        current().write(credit(table, "acct", amount))
        if nested:
            clock.advance(12)  # this execution stalls past its lease; a retry takes it over and commits
            assert job(k, 100, nested=False) == 100
        return amount

    with pytest.raises(LeaseLostError, match="none of its writes was applied"):
        job("a", 1)
    assert balance(client, table, "acct") == 100  # only the new owner's write
    assert job("a", 1) == 100  # the record stayed the new owner's


def test_writes_of_a_failing_function_are_never_sent(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)
    counter = count_calls(client)

    @idempotent_function(dynamodb_store, key="k", operation="fails", clock=clock)
    def fails(k: str) -> None:
        current().write(credit(table, "acct", 1))
        raise RuntimeError("after the write was collected")

    with pytest.raises(RuntimeError):
        fails("a")
    assert counter.calls == ["PutItem", "DeleteItem"]  # claim, release
    assert balance(client, table, "acct") == 0


# --- DynamoDB's transaction rules, checked before anything is sent ---


def broken_by(store: DynamoDBStore, clock: FakeClock, add_writes: Any) -> list[str]:
    """Run a function whose writes break a rule; return the calls it made (the claim and the release only)."""
    from .conftest import CallCounter

    counter = CallCounter()
    store.client.meta.events.register("before-call.dynamodb", counter)

    @idempotent_function(store, key="k", operation="rules", clock=clock, local_cache=False)
    def work(k: str) -> str:
        add_writes(current())
        return "ok"

    try:
        with pytest.raises(InvalidWriteError) as info:
            work("a")
        calls = list(counter.calls)
        assert store.get(record_id("rules", None, "a")) is None
        return [str(info.value), *calls]
    finally:
        store.client.meta.events.unregister("before-call.dynamodb", counter)


@pytest.mark.parametrize("backend", ["moto"])
def test_transaction_rules_are_checked_before_sending(
    request: pytest.FixtureRequest, backend: str, clock: FakeClock
) -> None:
    with client_of(request, backend) as client:
        store = new_dynamodb_store(client)
        table = new_business_table(client)

        def hundred(execution: Any) -> None:
            for i in range(100):
                execution.write(credit(table, f"acct-{i}", 1))

        message, *calls = broken_by(store, clock, hundred)
        assert "at most 99 writes" in message
        assert calls == ["PutItem", "DeleteItem"]

        def same_item_twice(execution: Any) -> None:
            execution.write(credit(table, "acct", 1))
            execution.write(new_payment(table, "acct"))

        message, *_ = broken_by(store, clock, same_item_twice)
        assert "one action per item" in message and "write #0" in message

        def two_puts_of_one_item(execution: Any) -> None:
            execution.write(credit(table, "other", 1))  # tells the key schema of the table: id
            execution.write({"Put": {"TableName": table, "Item": {"id": {"S": "x"}, "v": {"N": "1"}}}})
            execution.write({"Put": {"TableName": table, "Item": {"id": {"S": "x"}, "v": {"N": "2"}}}})

        message, *_ = broken_by(store, clock, two_puts_of_one_item)
        assert "one action per item" in message and "write #1" in message

        def the_record_itself(execution: Any) -> None:
            execution.write(
                {"Delete": {"TableName": store.table_name, "Key": {"pk": {"S": record_id("rules", None, "a")}}}}
            )

        message, *_ = broken_by(store, clock, the_record_itself)
        assert "idempotency record itself" in message

        arn = client.describe_table(TableName=store.table_name)["Table"]["TableArn"]

        def the_record_by_its_tables_arn(execution: Any) -> None:  # TableName takes a table's ARN too
            execution.write({"Delete": {"TableName": arn, "Key": {"pk": {"S": record_id("rules", None, "a")}}}})

        message, *_ = broken_by(store, clock, the_record_by_its_tables_arn)
        assert "idempotency record itself" in message

        table_arn = client.describe_table(TableName=table)["Table"]["TableArn"]

        def one_item_by_name_and_by_arn(execution: Any) -> None:
            execution.write(credit(table, "acct", 1))
            execution.write(credit(table_arn, "acct", 1))

        message, *_ = broken_by(store, clock, one_item_by_name_and_by_arn)
        assert "one action per item" in message and "write #0" in message

        big = "x" * 390_000

        def over_four_megabytes(execution: Any) -> None:
            for i in range(11):
                execution.write({"Put": {"TableName": table, "Item": {"id": {"S": f"big-{i}"}, "d": {"S": big}}}})

        message, *_ = broken_by(store, clock, over_four_megabytes)
        assert "4 MB" in message

        for malformed, expected in [
            ({"Upsert": {}}, "unknown write action"),
            ({"Put": {"Item": {"id": {"S": "x"}}}}, "needs a TableName"),
            ({"Update": {"TableName": table, "Key": {"id": {"S": "x"}}}}, "needs a UpdateExpression"),
            ({"Put": {"TableName": table, "Item": {"id": "plain"}}}, "resource=True"),
        ]:
            message, *_ = broken_by(store, clock, lambda execution, w=malformed: execution.write(w))
            assert expected in message
        message, *_ = broken_by(
            store,
            clock,
            lambda execution: execution.write(
                {"Put": {"TableName": table, "Item": {"id": "x", "f": 1.5}}}, resource=True
            ),
        )
        assert "Decimal" in message


def nested(levels: int, leaf: Any) -> Any:
    """A low-level value of ``levels`` maps, one in the other, around ``leaf``."""
    for _ in range(levels):
        leaf = {"M": {"a": leaf}}
    return leaf


def plain_nested(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {"a": value}
    return value


HOSTILE_VALUES = [
    ({"l": {"L": "abc"}}, False, "not a valid low-level DynamoDB value: 'L' of str"),
    ({"m": {"M": {"a": "x"}}}, False, "Put.Item['m']['a'] is not a low-level DynamoDB value"),
    ({"b": {"B": 5}}, False, "'B' of int"),
    ({"s": {"SS": 5}}, False, "'SS' of int"),
    ({"n": {"S": None}}, False, "'S' of NoneType"),
    ({"t": {"S": "\ud800"}}, False, "not valid Unicode text"),
    ({"t": "\ud800"}, True, "not valid Unicode text"),
    ({"d": nested(5_000, {"S": "x"})}, False, "nests deeper than DynamoDB's 31 levels"),
    ({"d": plain_nested(5_000)}, True, "nests deeper than DynamoDB's 31 levels"),
    ({"d": plain_nested(40)}, True, "nests deeper than DynamoDB's 31 levels"),
    ({"n": 10**5_000}, True, "a number DynamoDB cannot store"),
    # Values of the right shape DynamoDB refuses: an outage at the commit on moto, the key left in flight
    ({"s": {"SS": []}}, False, "empty set"),
    ({"s": set()}, True, "empty set"),
    ({"s": {"SS": ["a", "a"]}}, False, "holds 'a' twice"),
    ({"s": {"NS": ["1", "1.0"]}}, False, "holds '1.0' twice"),
    ({"n": {"N": "abc"}}, False, "not a number"),
    ({"n": {"N": "NaN"}}, False, "not a number"),
    ({"n": {"N": "1e200"}}, False, "out of DynamoDB's range"),
    ({"n": {"N": "1" * 39}}, False, "38 significant digits"),
    ({"n": {"NS": ["1", "x"]}}, False, "not a number"),
    ({"z": {"NULL": False}}, False, "NULL is always True"),
]


@pytest.mark.parametrize(("attributes", "resource", "expected"), HOSTILE_VALUES)
@pytest.mark.parametrize("backend", ["moto"])
def test_hostile_values_of_a_write_are_invalid_write_errors_before_sending(
    request: pytest.FixtureRequest, backend: str, clock: FakeClock, attributes: Any, resource: bool, expected: str
) -> None:
    """Values not of DynamoDB's shapes raised AttributeError, TypeError, RecursionError, UnicodeEncodeError or
    decimal.Overflow out of write(), or reached botocore at the commit as an outage. Each is `InvalidWriteError`
    where the write is added, nothing is sent, and the key is released."""
    with client_of(request, backend) as client:
        store = new_dynamodb_store(client)
        table = new_business_table(client)
        key = "x" if resource else {"S": "x"}
        action = {"Put": {"TableName": table, "Item": {"id": key, **attributes}}}
        message, *calls = broken_by(store, clock, lambda execution: execution.write(action, resource=resource))
        assert expected in message
        assert calls == ["PutItem", "DeleteItem"]


@pytest.mark.parametrize("backend", ["moto"])
def test_parameters_botocore_refuses_at_the_commit_are_an_invalid_write(
    request: pytest.FixtureRequest, backend: str, clock: FakeClock
) -> None:
    """An unknown parameter passed every check of write() and failed botocore's validation at the commit, which read
    as an outage (`StoreUnavailableError`, the key left in flight). It is `InvalidWriteError`, the key released."""
    with client_of(request, backend) as client:
        store = new_dynamodb_store(client)
        table = new_business_table(client)
        action = {
            "Put": {"TableName": table, "Item": {"id": {"S": "x"}}, "ConditionExpresion": "attribute_not_exists(id)"}
        }
        message, *_ = broken_by(store, clock, lambda execution: execution.write(action))
        assert "ConditionExpresion" in message


@pytest.mark.parametrize("dynamodb_store", ["dynamodb_local"], indirect=True)
def test_the_nesting_limit_is_dynamodbs(dynamodb_store: DynamoDBStore, clock: FakeClock) -> None:
    """31 maps in one another commit on DynamoDB Local; the 32nd is refused there, and by write() before sending."""
    table = new_business_table(dynamodb_store.client)

    @idempotent_function(dynamodb_store, key="k", operation="nesting", clock=clock, local_cache=False)
    def work(k: str, value: Any) -> str:
        current().write({"Put": {"TableName": table, "Item": {"id": {"S": k}, "d": value}}})
        return "ok"

    assert work("deepest", nested(31, {"S": "x"})) == "ok"
    with pytest.raises(InvalidWriteError, match="nests deeper"):
        work("too-deep", nested(31, {"M": {}}))
    with pytest.raises(ClientError, match="Nesting Levels"):  # DynamoDB Local agrees
        dynamodb_store.client.put_item(TableName=table, Item={"id": {"S": "direct"}, "d": nested(31, {"M": {}})})


def test_the_completion_counts_toward_four_megabytes(dynamodb_store: DynamoDBStore, clock: FakeClock) -> None:
    table = new_business_table(dynamodb_store.client)
    big = "x" * 395_000

    def ten_big_puts_and_a_big_result(execution: Any) -> None:
        for i in range(10):
            execution.write({"Put": {"TableName": table, "Item": {"id": {"S": f"big-{i}"}, "d": {"S": big}}}})

    @idempotent_function(dynamodb_store, key="k", operation="size", clock=clock, local_cache=False)
    def work(k: str) -> bytes:
        ten_big_puts_and_a_big_result(current())
        return os.urandom(300_000)  # ~300 KB stored: with the writes (~3.95 MB) past 4 MB only once it is added

    with pytest.raises(InvalidWriteError, match="4 MB"):
        work("a")
    assert dynamodb_store.get(record_id("size", None, "a")) is None


def test_a_store_that_cannot_commit_writes_says_so(clock: FakeClock) -> None:
    @idempotent_function(MemoryStore(), key="k", operation="mem", clock=clock)
    def work(k: str) -> None:
        current().write({"Put": {"TableName": "t", "Item": {"id": {"S": k}}}})

    with pytest.raises(InvalidWriteError, match="cannot commit DynamoDB writes"):
        work("a")


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
def test_a_write_to_a_missing_table_is_still_the_writes_fault_when_describe_table_is_denied(
    request: pytest.FixtureRequest, backend: str, clock: FakeClock
) -> None:
    """A refused transaction is checked against the idempotency table (missing, or a Powertools table, in optimistic
    mode). A role that may not DescribeTable (the template grants the store's four calls, no more) must not turn the
    function's own mistake into "access to the idempotency table denied": `InvalidWriteError`, the key released."""
    import json

    from botocore.awsrequest import AWSResponse

    from .conftest import endpoint_of, http_client

    client = http_client(endpoint_of(request, backend))
    store = new_dynamodb_store(client)

    class Denied:
        def stream(self, **_: Any) -> Any:
            yield json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException", "Message": "no"}).encode()

    client.meta.events.register_first(
        "before-send.dynamodb.DescribeTable",
        lambda request, **_: AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, Denied()),
    )

    @idempotent_function(store, key="k", operation="typo", clock=clock, local_cache=False)
    def work(k: str) -> str:
        current().write({"Put": {"TableName": "NoSuchPayments", "Item": {"id": {"S": k}}}})
        return "ok"

    with pytest.raises(InvalidWriteError, match="ResourceNotFoundException"):
        work("a")
    assert store.get(record_id("typo", None, "a")) is None


def test_writes_dynamodb_refuses_raise_invalid_write_and_release_the_key(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)
    client.put_item(TableName=table, Item={"id": {"S": "acct"}, "balance": {"S": "not a number"}})

    @idempotent_function(dynamodb_store, key="k", operation="refused", clock=clock, local_cache=False)
    def work(k: str, target: str) -> str:
        current().write(new_payment(table, f"pay-{k}"))
        current().write(credit(target, "acct", 1))
        return "ok"

    with pytest.raises(InvalidWriteError, match="incorrect data type"):
        work("a", table)  # ADD to a string attribute: the service refuses the whole transaction
    with pytest.raises(InvalidWriteError, match="ResourceNotFoundException"):
        work("a", "no-such-table")
    assert dynamodb_store.get(record_id("refused", None, "a")) is None

    @idempotent_function(dynamodb_store, key="k", operation="two-puts", clock=clock, local_cache=False)
    def two_puts(k: str) -> str:  # no write names the table's key: write() cannot tell these are one item
        current().write({"Put": {"TableName": table, "Item": {"id": {"S": f"pay-{k}"}, "v": {"N": "1"}}}})
        current().write({"Put": {"TableName": table, "Item": {"id": {"S": f"pay-{k}"}, "v": {"N": "2"}}}})
        return "ok"

    with pytest.raises(InvalidWriteError, match="multiple operations on one item"):
        two_puts("a")
    assert dynamodb_store.get(record_id("two-puts", None, "a")) is None
    assert "Item" not in client.get_item(TableName=table, Key={"id": {"S": "pay-a"}}, ConsistentRead=True)


@pytest.mark.parametrize("dynamodb_store", ["dynamodb_local"], indirect=True)
def test_a_write_dynamodb_cancels_as_invalid_names_it_and_releases_the_key(
    dynamodb_store: DynamoDBStore, clock: FakeClock
) -> None:
    """AWS cancels a transaction whose write would grow an item past 400 KB, or gives a key the wrong type, with the
    CancellationReason ``ValidationError`` (DynamoDB Local does). That read as an outage: `StoreUnavailableError`,
    the key left in flight until its lease ended, then every retry refused the same way. It is `InvalidWriteError`
    naming the write, nothing applied, and the key released."""
    client = dynamodb_store.client
    table = new_business_table(client)
    client.put_item(TableName=table, Item={"id": {"S": "big"}, "blob": {"S": "x" * 300_000}})
    grow = {"TableName": table, "Key": {"id": "big"}, "UpdateExpression": "SET more = :m"}
    runs: list[str] = []

    @idempotent_function(dynamodb_store, key="k", operation="invalid", clock=clock, local_cache=False)
    def work(k: str, action: dict[str, Any]) -> str:
        runs.append(k)
        current().write(new_payment(table, f"pay-{k}"))
        current().write(action, resource=True)
        return "ok"

    for _ in range(2):  # the second call runs again: the key was released, not left in flight
        with pytest.raises(InvalidWriteError, match=r"write #1 \(Update on biz-.*\): Item size"):
            work("a", {"Update": {**grow, "ExpressionAttributeValues": {":m": "y" * 200_000}}})
    with pytest.raises(InvalidWriteError, match=r"write #1 \(Put on biz-.*\):.*Type mismatch"):
        work("b", {"Put": {"TableName": table, "Item": {"id": 5}}})
    assert runs == ["a", "a", "b"]
    assert dynamodb_store.get(record_id("invalid", None, "a")) is None
    assert "Item" not in client.get_item(TableName=table, Key={"id": {"S": "pay-a"}}, ConsistentRead=True)


def test_async_functions_commit_their_writes(dynamodb_store: DynamoDBStore, clock: FakeClock) -> None:
    import asyncio

    client = dynamodb_store.client
    table = new_business_table(client)

    @idempotent_function(dynamodb_store, key="k", operation="async", clock=clock, local_cache=False)
    async def work(k: str) -> str:
        await asyncio.sleep(0)
        current().write(credit(table, "acct", 2))
        return "done"

    assert asyncio.run(work("a")) == "done"
    assert asyncio.run(work("a")) == "done"
    assert balance(client, table, "acct") == 2


class ResendingTransactions(ResendingClient):
    """Every TransactWriteItems reaches the table twice (the first answer lost), as botocore's resend would."""

    def transact_write_items(self, **request: Any) -> Any:
        self._client.transact_write_items(**request)
        return self._client.transact_write_items(**request)


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
@pytest.mark.parametrize("mode", ["claim", "optimistic"])
def test_a_resent_commit_that_had_landed_is_ours_and_applied_once(
    request: pytest.FixtureRequest, backend: str, mode: str
) -> None:
    with client_of(request, backend) as client:
        table = new_business_table(client)
        store = DynamoDBStore(new_dynamodb_store(client).table_name, client=ResendingTransactions(client))

        @idempotent_function(store, key="k", operation="resend", mode=mode, local_cache=False)
        def work(k: str) -> str:
            current().write(credit(table, "acct", 4))
            return "once"

        assert work("a") == "once"  # the resend was refused by the record (or deduped by its token): ours
        assert work("a") == "once"
        assert balance(client, table, "acct") == 4


def test_ninety_nine_writes_and_the_completion_fill_one_transaction(
    dynamodb_store: DynamoDBStore, clock: FakeClock, count_calls: Any
) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)

    @idempotent_function(dynamodb_store, key="k", operation="full", clock=clock, local_cache=False)
    def work(k: str) -> int:
        for i in range(99):
            current().write(credit(table, f"acct-{i}", 1))
        return 99

    counter = count_calls(client)
    assert work("a") == 99
    assert counter.calls == ["PutItem", "TransactWriteItems"]
    assert balance(client, table, "acct-0") == balance(client, table, "acct-98") == 1


def test_delete_and_condition_check_join_the_commit(dynamodb_store: DynamoDBStore, clock: FakeClock) -> None:
    client = dynamodb_store.client
    table = new_business_table(client)
    client.put_item(TableName=table, Item={"id": {"S": "hold-1"}})
    client.put_item(TableName=table, Item={"id": {"S": "acct"}, "balance": {"N": "10"}})

    @idempotent_function(dynamodb_store, key="k", operation="settle", clock=clock, local_cache=False)
    def settle(k: str, needed: int) -> str:
        current().write({"Delete": {"TableName": table, "Key": {"id": {"S": "hold-1"}}}})
        current().write(
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": {"id": {"S": "acct"}},
                    "ConditionExpression": "balance >= :n",
                    "ExpressionAttributeValues": {":n": {"N": str(needed)}},
                }
            }
        )
        return "settled"

    with pytest.raises(WriteConditionError, match=r"write #1 \(ConditionCheck on biz-"):
        settle("s-1", 11)  # the balance check fails: the Delete is not applied either
    assert "Item" in client.get_item(TableName=table, Key={"id": {"S": "hold-1"}}, ConsistentRead=True)
    assert settle("s-1", 10) == "settled"
    assert "Item" not in client.get_item(TableName=table, Key={"id": {"S": "hold-1"}}, ConsistentRead=True)
