"""The storm: many threads invoke many keys many times, interleaved at random; every key must run exactly once.

Each invocation is one call of an idempotent function that counts its own executions (outside the store, so the
count cannot be fooled by the records). An invocation either executes, replays the stored result, or is turned
away in flight (`InProgressError`, HTTP 409): the last two are the duplicates absorbed. Every answer is checked
against its own key, so a mixed-up result fails the run as surely as a second execution.

    python -m bench.storm --backend dynamodb_local --keys 1000 --per-key 100 --threads 64   # the long storm

The test suite runs a short storm (tests/test_storm.py) through `run_storm`.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

STORM_LEASE_S = 60
"""Longer than any invocation of the storm, so no lease ever passes: a second execution would be a bug."""


@dataclass
class StormReport:
    backend: str
    keys: int
    threads: int
    executions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    wrong_answers: list[tuple[str, Any]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def invocations(self) -> int:
        return sum(self.outcomes.values())

    @property
    def duplicates_absorbed(self) -> int:
        return self.outcomes["replayed"] + self.outcomes["in flight"]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def executions_per_key(self) -> set[int]:
        """The distinct execution counts over all keys: ``{1}`` is the only correct answer."""
        return {self.executions[f"key-{i}"] for i in range(self.keys)}

    def row(self) -> str:
        return (
            f"| {self.backend} | {self.invocations:,} | {self.keys:,} | {self.threads} "
            f"| {sorted(self.executions_per_key())} | {self.duplicates_absorbed:,} "
            f"({self.outcomes['replayed']:,} replayed, {self.outcomes['in flight']:,} in flight) "
            f"| {self.percentile(0.5):.1f} | {self.percentile(0.99):.1f} | {self.invocations / self.seconds:,.0f} |"
        )


HEADER = (
    "| backend | invocations | keys | threads | executions per key | duplicates absorbed "
    "| p50 ms | p99 ms | invocations/s |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def run_storm(endpoint: str, backend: str, *, keys: int, per_key: int, threads: int, seed: int = 0) -> StormReport:
    """Invoke ``keys`` keys ``per_key`` times each from ``threads`` threads, on a new table at ``endpoint``."""
    import boto3
    from botocore.config import Config
    from lambda_idempotency import DynamoDBStore, InProgressError, create_table, idempotent_function

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=threads),
    )
    store = DynamoDBStore(f"storm-{uuid.uuid4().hex[:12]}", client=client)
    create_table(store)
    report = StormReport(backend=backend, keys=keys, threads=threads)
    lock = threading.Lock()
    this_call = threading.local()

    @idempotent_function(store, key="k", operation="storm", lease=STORM_LEASE_S, local_cache=False)
    def work(k: str) -> str:
        with lock:
            report.executions[k] += 1
        this_call.executed = True
        time.sleep(0.001)  # a little work, so concurrent duplicates find the key in flight
        return f"done-{k}"

    def invoke(k: str) -> None:
        this_call.executed = False
        started = time.perf_counter()
        try:
            answer: Any = work(k)
            outcome = "executed" if this_call.executed else "replayed"
        except InProgressError:
            answer, outcome = f"done-{k}", "in flight"
        elapsed_ms = (time.perf_counter() - started) * 1000
        with lock:
            report.latencies_ms.append(elapsed_ms)
            report.outcomes[outcome] += 1
            if answer != f"done-{k}":
                report.wrong_answers.append((k, answer))

    plan = [f"key-{i}" for i in range(keys) for _ in range(per_key)]
    random.Random(seed).shuffle(plan)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(invoke, k) for k in plan]:
            future.result()
    report.seconds = time.perf_counter() - started
    return report


def _server(backend: str) -> AbstractContextManager[str]:
    from lambda_idempotency.testing import dynamodb_local, moto_server

    return moto_server() if backend == "moto_server" else dynamodb_local()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["moto_server", "dynamodb_local"], action="append")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--per-key", type=int, default=100)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "testing"  # local servers only: never real credentials
    print(HEADER)
    failed = False
    for backend in args.backend or ["moto_server", "dynamodb_local"]:
        with _server(backend) as endpoint:
            report = run_storm(endpoint, backend, keys=args.keys, per_key=args.per_key, threads=args.threads)
        print(report.row(), flush=True)
        failed |= report.executions_per_key() != {1} or bool(report.wrong_answers)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
