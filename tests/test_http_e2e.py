"""End to end over real sockets: the retrying client -> a proxy that loses responses -> the local endpoint
(tools/local_api.py, its own process) -> a payment function -> moto's DynamoDB server (item operations
serialised, as DynamoDB does; see `lambda_idempotency.testing`). The payment function is a small test one
(tests/local_api/) or, for the race, also template.yaml's own example.

The proxy drops the connection after the function completed (the response of the execution that charged):
the client cannot know whether it was charged, retries with the same key, and gets the stored 201 back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lambda_idempotency import DynamoDBStore, create_table
from lambda_idempotency.client import IdempotentClient, RetryPolicy

from demo.stack import LocalStack
from tests.conftest import http_client, new_business_table
from tests.dropping_proxy import dropping_proxy, first_execution

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "tests" / "local_api" / "template.yaml"
CLIENTS = 16


@dataclass
class Stack:
    port: int
    dynamodb: Any
    charges_table: str

    def charges_for(self, key: str) -> int:
        found = self.dynamodb.scan(
            TableName=self.charges_table,
            FilterExpression="#k = :k",
            ExpressionAttributeNames={"#k": "key"},
            ExpressionAttributeValues={":k": {"S": key}},
            ConsistentRead=True,
        )
        return int(found["Count"])


def serve(args: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], int]:
    """Start tools/local_api.py on a free port; returns the process and the port it printed."""
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "local_api.py"), "--port", "0", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://127.0.0.1:" not in line:
        process.terminate()
        process.wait(10)
        pytest.fail(f"local_api did not start: {line!r}\n{log.read_text()}")
    return process, int(line.rsplit(":", 1)[1])


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def stack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    dynamodb = http_client(moto_endpoint)
    idempotency = DynamoDBStore(f"idem-{uuid.uuid4().hex[:8]}", client=dynamodb)
    create_table(idempotency)
    charges = new_business_table(dynamodb, key="charge_id")
    folder = tmp_path_factory.mktemp("local_api")
    env_vars = folder / "env.json"
    variables = {"IDEMPOTENCY_TABLE": idempotency.table_name, "CHARGES_TABLE": charges}
    env_vars.write_text(json.dumps({"Parameters": variables}))
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint}
    arguments = ["--in-process", "--template", str(TEMPLATE), "--env-vars", str(env_vars)]
    process, port = serve(arguments, env, folder / "stderr.log")
    try:
        yield Stack(port, dynamodb, charges)
    finally:
        stop(process)


def test_a_response_lost_after_the_charge_is_retried_and_replayed(stack: Stack) -> None:
    retries: list[object] = []
    with (
        dropping_proxy(stack.port, first_execution) as proxy,
        IdempotentClient(
            f"http://127.0.0.1:{proxy.port}",
            policy=RetryPolicy(base_delay=0.05),
            on_retry=lambda attempt, delay, outcome: retries.append(outcome),
        ) as client,
    ):
        response = client.post("/payments", json={"amount": 1250})
    assert response.status_code == 201
    assert response.headers["idempotent-replayed"] == "true"
    assert len(proxy.dropped) == 1 and proxy.dropped[0].startswith(b"HTTP/1.1 201")
    assert [type(r) for r in retries] == [httpx.RemoteProtocolError]
    key = response.request.headers["idempotency-key"]
    assert stack.charges_for(key) == 1
    payment = response.json()
    fetched = httpx.get(f"http://127.0.0.1:{stack.port}/payments/{payment['id']}")
    assert fetched.status_code == 200 and fetched.json() == {"id": payment["id"], "amount": 1250}


@dataclass
class Race:
    """What `CLIENTS` clients sending one key at once through the dropping proxy got back."""

    results: list[httpx.Response]
    conflicts: list[int]
    """The attempt numbers answered 409 (each with Retry-After: 1, as problem+json)."""
    dropped: int
    elapsed: float


def race(port: int, payload: dict[str, Any]) -> Race:
    """`CLIENTS` retrying clients post ``payload`` under one new key at the same instant; the proxy drops the
    response of the execution that did the work, so every client ends with a replay."""
    key = f"order-{uuid.uuid4()}"
    barrier = threading.Barrier(CLIENTS)
    results: list[httpx.Response] = []
    conflicts: list[int] = []
    lock = threading.Lock()

    def on_retry(attempt: int, delay: float, outcome: object) -> None:
        if isinstance(outcome, httpx.Response) and outcome.status_code == 409:
            assert outcome.headers["retry-after"] == "1"
            assert outcome.headers["content-type"] == "application/problem+json"
            with lock:
                conflicts.append(attempt)

    def one_client(proxy_port: int) -> None:
        with IdempotentClient(
            f"http://127.0.0.1:{proxy_port}", policy=RetryPolicy(base_delay=0.05, max_attempts=8), on_retry=on_retry
        ) as client:
            barrier.wait()
            response = client.post("/payments", json=payload, idempotency_key=key)
        with lock:
            results.append(response)

    started = time.monotonic()
    with dropping_proxy(port, first_execution) as proxy:
        workers = [threading.Thread(target=one_client, args=(proxy.port,)) for _ in range(CLIENTS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    return Race(results, conflicts, len(proxy.dropped), time.monotonic() - started)


def assert_one_answer_replayed_to_all(race: Race) -> None:
    print(f"\n{CLIENTS} clients, one key: {len(race.conflicts)} answers 409, 1 response dropped, {race.elapsed:.2f} s")
    assert len(race.results) == CLIENTS
    assert {r.status_code for r in race.results} == {201}
    assert len({r.content for r in race.results}) == 1
    assert all(r.headers["idempotent-replayed"] == "true" for r in race.results)
    assert race.dropped == 1
    assert race.conflicts, "no client met the key in flight"


def test_sixteen_concurrent_clients_with_one_key_are_charged_once(stack: Stack) -> None:
    result = race(stack.port, {"amount": 700, "processing_seconds": 0.5})
    assert_one_answer_replayed_to_all(result)
    assert stack.charges_for(result.results[0].request.headers["idempotency-key"]) == 1


@pytest.mark.usefixtures("restore_environment")
def test_the_example_payment_function_charges_once_for_sixteen_clients(moto_endpoint: str, tmp_path: Path) -> None:
    """template.yaml's own PaymentFunction (claim, charge step, fenced commit) behind the local endpoint."""
    tables = LocalStack.create(dynamodb_endpoint=moto_endpoint, aws_endpoint=moto_endpoint)
    env_vars = tmp_path / "env.json"
    env_vars.write_text(
        json.dumps({"Parameters": {**tables.environment("PaymentFunction"), "GATEWAY_LATENCY_MS": "500"}})
    )
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint}
    arguments = ["--in-process", "--template", str(ROOT / "template.yaml"), "--env-vars", str(env_vars)]
    process, port = serve(arguments, env, tmp_path / "stderr.log")
    try:
        result = race(port, {"amount": 700, "currency": "EUR", "customer": "cus_4711"})
        payment = result.results[0].json()
        fetched = httpx.get(f"http://127.0.0.1:{port}/payments/{payment['payment_id']}")
    finally:
        stop(process)
    assert_one_answer_replayed_to_all(result)
    assert tables.count_items("GatewayChargesTable") == 1 and tables.count_items("PaymentsTable") == 1
    assert fetched.status_code == 200 and fetched.json() == payment


def test_embedded_dynamodb_serves_the_template_with_no_other_setup(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    arguments = ["--in-process", "--template", str(TEMPLATE), "--embedded-dynamodb"]
    process, port = serve(arguments, env, tmp_path / "stderr.log")
    try:
        url = f"http://127.0.0.1:{port}/payments"
        headers = {"Idempotency-Key": "curl-1"}
        first = httpx.post(url, json={"amount": 5}, headers=headers)
        again = httpx.post(url, json={"amount": 5}, headers=headers)
        invalid = httpx.post(url, json={"amount": -1}, headers={"Idempotency-Key": "curl-2"})
        missing = httpx.post(url, json={"amount": 5})
    finally:
        stop(process)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert invalid.status_code == 400 and invalid.json()["errors"] == [{"loc": ["amount"]}]
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency-key-missing"
