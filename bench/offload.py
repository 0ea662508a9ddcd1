"""What offloading results to S3 costs (latency of big results, the small-result path with an offload configured),
and what the HTTP adapter's default ``hash_keys`` costs in CPU.

    make bench-offload              # or: .venv/bin/python bench/offload.py [--repeats N]

DynamoDB Local holds the records; S3 is moto's server (Python, on this machine: its latencies say more about moto
than about S3, so the figures are the work offload adds on the client and a local hop, not AWS's). Random bytes as
results, so compression cannot hide their size. For each size: the first call (claim, S3 PutObject, completion)
and a duplicate from another container (failed claim, S3 GetObject), as medians and spread over ``--repeats``
keys; a 300 KB result is also stored inline (it fits the item after compression) for the comparison. The small
result (a 100-byte dict) is timed with and without an offload configured, with CPU per call on a null client.
Writes docs/benchmarks/offload.md. Nothing here is a test; nothing reaches AWS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
os.environ.pop("AWS_PROFILE", None)

import boto3
from lambda_idempotency import DynamoDBStore, S3Offload, create_table, idempotent_function
from lambda_idempotency.http import idempotent_http
from lambda_idempotency.testing import dynamodb_local, moto_server
from measure import NullClient

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "offload.md"
BUCKET = "bench-offload"
KB = 1000
WARM_UP = 3
"""Rounds not counted: the first calls on a new table (and DynamoDB Local's JIT) are slower than any later one."""
SIZES = [("300 KB", 300 * KB), ("1 MB", 1000 * KB), ("5 MB", 5000 * KB)]


def stores(dynamodb: Any, s3: Any) -> tuple[DynamoDBStore, DynamoDBStore]:
    """A plain store and an offloading one, each on its own table."""
    plain = DynamoDBStore(f"plain-{uuid.uuid4().hex[:8]}", client=dynamodb)
    offloading = DynamoDBStore(f"off-{uuid.uuid4().hex[:8]}", client=dynamodb, offload=S3Offload(BUCKET, client=s3))
    for store in (plain, offloading):
        create_table(store)
    return plain, offloading


def timed(store: DynamoDBStore, result: Any, repeats: int) -> dict[str, list[float]]:
    """Milliseconds of the first call and of a duplicate from a cold container, per key."""

    @idempotent_function(store, key="k", operation="bench", local_cache=False)
    def first(k: str) -> Any:
        return result

    @idempotent_function(store, key="k", operation="bench", local_cache=False)
    def duplicate(k: str) -> Any:
        raise AssertionError("a duplicate must not run")

    out: dict[str, list[float]] = {"first": [], "replay": []}
    for round_ in range(WARM_UP + repeats):
        key = uuid.uuid4().hex
        for name, fn in (("first", first), ("replay", duplicate)):
            started = time.perf_counter()
            answer = fn(key)
            if round_ >= WARM_UP:
                out[name].append((time.perf_counter() - started) * 1000)
            assert answer == result
    return out


def cpu_per_call(store: DynamoDBStore, calls: int) -> float:
    """Microseconds of CPU per first call of a small result, on a client that answers at once."""

    @idempotent_function(store, key="k", operation="cpu", local_cache=False)
    def small(k: str) -> dict[str, str]:
        return {"status": "ok", "id": k}

    keys = [uuid.uuid4().hex for _ in range(calls)]
    started = time.process_time()
    for key in keys:
        small(key)
    return (time.process_time() - started) / calls * 1e6


def http_cpu_per_call(hash_keys: bool, calls: int) -> float:
    """Microseconds of CPU per first call of the HTTP adapter (HTTP API event), on a client that answers at once."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.http_events import http_event

    @idempotent_http(DynamoDBStore("t", client=NullClient()), operation="p", hash_keys=hash_keys, local_cache=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 201, "body": "{}"}

    events = [http_event("http_api", key=uuid.uuid4().hex) for _ in range(calls)]
    started = time.process_time()
    for event in events:
        handler(event, None)
    return (time.process_time() - started) / calls * 1e6


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{statistics.median(values):.1f} (p90 {p90:.1f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cpu-calls", type=int, default=3000)
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str, str]] = []
    with dynamodb_local() as dynamodb_url, moto_server() as s3_url:
        dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_url, region_name="us-east-1")
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        plain, offloading = stores(dynamodb, s3)
        small = {"status": "ok", "id": "x" * 80}
        for label, store, result in (
            ("100 B, plain store", plain, small),
            ("100 B, offload configured", offloading, small),
            ("300 KB, inline (compressed)", plain, os.urandom(300 * KB)),
        ):
            times = timed(store, result, args.repeats)
            rows.append((label, "record", summary(times["first"]), summary(times["replay"])))
        for label, size in SIZES:
            times = timed(offloading, os.urandom(size), args.repeats)
            rows.append((label, "S3", summary(times["first"]), summary(times["replay"])))
    cpu_plain: list[float] = []
    cpu_offload: list[float] = []
    for _ in range(7):  # interleaved, so a busy moment of the machine falls on both
        cpu_plain.append(cpu_per_call(DynamoDBStore("t", client=NullClient()), args.cpu_calls))
        offload = S3Offload(BUCKET, client=object())
        cpu_offload.append(cpu_per_call(DynamoDBStore("t", client=NullClient(), offload=offload), args.cpu_calls))
    http_text: list[float] = []
    http_hashed: list[float] = []
    for _ in range(7):
        http_text.append(http_cpu_per_call(False, args.cpu_calls))
        http_hashed.append(http_cpu_per_call(True, args.cpu_calls))
    lines = [
        "# Offload to S3: what it costs",
        "",
        f"`make bench-offload` ({args.repeats} keys per row after {WARM_UP} not counted; "
        f"Python {sys.version.split()[0]}). Records on DynamoDB Local, S3 on moto's server, both on 127.0.0.1: "
        "latencies are this machine's, not AWS's. Milliseconds, "
        "median (p90).",
        "",
        "| result | where | first call | duplicate (cold container) |",
        "| --- | --- | --- | --- |",
        *(f"| {label} | {where} | {first} | {replay} |" for label, where, first, replay in rows),
        "",
        "CPU per first call of a 100-byte result on a client that answers at once (7 interleaved runs of "
        f"{args.cpu_calls} calls, µs, median (min-max)):",
        "",
        f"- plain store: {spread(cpu_plain)}",
        f"- offload configured: {spread(cpu_offload)}",
        f"- ratio: {statistics.median(cpu_offload) / statistics.median(cpu_plain):.2f}",
        "",
        "CPU per first call of the HTTP adapter (HTTP API event, 201 response), the same way: what the default "
        "`hash_keys=True` (two keyed BLAKE2b hashes per claim: key and scope) costs:",
        "",
        f"- `hash_keys=False`: {spread(http_text)}",
        f"- `hash_keys=True` (default): {spread(http_hashed)}",
        f"- ratio: {statistics.median(http_hashed) / statistics.median(http_text):.2f}",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
