"""What each request shape of a first execution costs on DynamoDB Local, sent straight, without either library.

    .venv/bin/python bench/request_shapes.py [--pairs N]

A first execution is two writes: the claim and the completion. This sends each shape's pair for a fresh key, the
shapes interleaved round after round so drift cancels, and prints the latency of the pair (p50 and p99) beside
Powertools' pair. It is how the shapes were chosen (docs/benchmarks/profile.md, "Latency"): 0.2.0's claim (with
an empty steps map and ``attempts``) and completion (an UpdateItem of the claimed item), the completion as a
PutItem of the finished record, the lean claim with it (now), and Powertools' own two requests as its library
sends them. Nothing here is a test; nothing reaches AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")

from lambda_idempotency.testing import dynamodb_local

OURS_TABLE, THEIRS_TABLE = "shapes-ours", "shapes-powertools"
RESULT = json.dumps({"statusCode": 201, "body": {"order_id": "o-123456", "status": "charged"}}, separators=(",", ":"))
IN_PROGRESS = {"S": "IN_PROGRESS"}
Send = Callable[[Any, str, str, int], None]
"""One request for record ``rid`` held by ``owner`` at epoch second ``now``."""


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def claim_item(rid: str, owner: str, now: int) -> dict[str, Any]:
    """Our claimed record, as `DynamoDBStore.claim` writes it now."""
    return {
        "pk": {"S": rid},
        "status": IN_PROGRESS,
        "owner": {"S": owner},
        "lease_expires_at": n(now * 1000 + 21_000),
        "expires_at": n(now + 3600),
        "key": {"S": "o-123456"},
        "created_at": n(now),
    }


def claim(client: Any, rid: str, owner: str, now: int, *, item: dict[str, Any] | None = None) -> None:
    """Our claim: a conditional PutItem of ``item`` (by default the claimed record as written now)."""
    client.put_item(
        TableName=OURS_TABLE,
        Item=item or claim_item(rid, owner, now),
        ConditionExpression="attribute_not_exists(#pk) OR #ex < :now",
        ExpressionAttributeNames={"#pk": "pk", "#ex": "expires_at"},
        ExpressionAttributeValues={":now": n(now)},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def claim_with_steps_and_attempts(client: Any, rid: str, owner: str, now: int) -> None:
    """0.2.0's claim: also an empty steps map and ``attempts = 1``."""
    claim(client, rid, owner, now, item={**claim_item(rid, owner, now), "attempts": n(1), "steps": {"M": {}}})


def completion_as_update(client: Any, rid: str, owner: str, now: int) -> None:
    """0.2.0's completion: an UpdateItem of the claimed item, fenced by the owner."""
    client.update_item(
        TableName=OURS_TABLE,
        Key={"pk": {"S": rid}},
        UpdateExpression="SET #st = :st, #co = :now, #ex = :exp, #res = :res REMOVE #le",
        ConditionExpression="#ow = :me AND #st = :ip",
        ExpressionAttributeNames={
            "#st": "status",
            "#co": "completed_at",
            "#ex": "expires_at",
            "#le": "lease_expires_at",
            "#res": "result",
            "#ow": "owner",
        },
        ExpressionAttributeValues={
            ":st": {"S": "COMPLETED"},
            ":now": n(now),
            ":exp": n(now + 3600),
            ":me": {"S": owner},
            ":ip": IN_PROGRESS,
            ":res": {"S": RESULT},
        },
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def completion_as_put(client: Any, rid: str, owner: str, now: int) -> None:
    """The completion now: a PutItem of the finished record, whole, under the same fence."""
    client.put_item(
        TableName=OURS_TABLE,
        Item={
            "pk": {"S": rid},
            "status": {"S": "COMPLETED"},
            "owner": {"S": owner},
            "expires_at": n(now + 3600),
            "key": {"S": "o-123456"},
            "result": {"S": RESULT},
            "created_at": n(now),
            "completed_at": n(now),
        },
        ConditionExpression="#ow = :me AND #st = :ip",
        ExpressionAttributeNames={"#ow": "owner", "#st": "status"},
        ExpressionAttributeValues={":me": {"S": owner}, ":ip": IN_PROGRESS},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def powertools_claim(client: Any, rid: str, owner: str, now: int) -> None:
    """Powertools 3.37's `DynamoDBPersistenceLayer._put_record`."""
    client.put_item(
        TableName=THEIRS_TABLE,
        Item={
            "id": {"S": rid},
            "expiration": n(now + 3600),
            "status": {"S": "INPROGRESS"},
            "in_progress_expiration": n(now * 1000 + 30_000),
        },
        ConditionExpression="attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress AND "
        "attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)",
        ExpressionAttributeNames={
            "#id": "id",
            "#expiry": "expiration",
            "#in_progress_expiry": "in_progress_expiration",
            "#status": "status",
        },
        ExpressionAttributeValues={":now": n(now), ":now_in_millis": n(now * 1000), ":inprogress": {"S": "INPROGRESS"}},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def powertools_completion(client: Any, rid: str, owner: str, now: int) -> None:
    """Powertools 3.37's `DynamoDBPersistenceLayer._update_record`: no condition."""
    client.update_item(
        TableName=THEIRS_TABLE,
        Key={"id": {"S": rid}},
        UpdateExpression="SET #response_data = :response_data, #expiry = :expiry, #status = :status",
        ExpressionAttributeNames={"#expiry": "expiration", "#response_data": "data", "#status": "status"},
        ExpressionAttributeValues={
            ":expiry": n(now + 3600),
            ":response_data": {"S": RESULT},
            ":status": {"S": "COMPLETED"},
        },
    )


POWERTOOLS = "Powertools: its claim + its completion"
SHAPES: dict[str, tuple[Send, Send]] = {
    "ours 0.2.0: claim with steps and attempts, completion as UpdateItem": (
        claim_with_steps_and_attempts,
        completion_as_update,
    ),
    "ours: claim with steps and attempts, completion as PutItem": (claim_with_steps_and_attempts, completion_as_put),
    "ours now: lean claim, completion as PutItem": (claim, completion_as_put),
    POWERTOOLS: (powertools_claim, powertools_completion),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1500, help="pairs of requests per shape")
    parser.add_argument("--warm-up", type=int, default=200, help="rounds sent first and not counted")
    args = parser.parse_args()
    from run import client_for

    with dynamodb_local() as endpoint:
        client = client_for(endpoint)
        for table, key in ((OURS_TABLE, "pk"), (THEIRS_TABLE, "id")):
            client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        micros: dict[str, list[float]] = {name: [] for name in SHAPES}
        for round_ in range(args.warm_up + args.pairs):
            for name, (first, second) in SHAPES.items():
                rid, owner, now = f"shapes#{uuid.uuid4().hex}", uuid.uuid4().hex, int(time.time())
                started = time.perf_counter()
                first(client, rid, owner, now)
                second(client, rid, owner, now)
                if round_ >= args.warm_up:
                    micros[name].append((time.perf_counter() - started) * 1e6)
    baseline = statistics.median(micros[POWERTOOLS])
    print(f"{args.pairs} pairs per shape on DynamoDB Local, interleaved\n")
    print("| requests of a first execution | p50 | p99 | p50 / Powertools' |")
    print("|---|---|---|---|")
    for name, values in micros.items():
        values.sort()
        p50, p99 = statistics.median(values), values[int(len(values) * 0.99)]
        print(f"| {name} | {p50 / 1000:.2f} ms | {p99 / 1000:.2f} ms | {p50 / baseline:.3f} |")


if __name__ == "__main__":
    main()
