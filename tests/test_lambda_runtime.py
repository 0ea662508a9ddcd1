"""The example functions on the real Lambda runtime (tools/runtime_pool.py: RIE + awslambdaric, `sam build`'s output).

Each function runs in its own runtime processes, with the context, deadline and timeout Lambda gives: a timeout here
is RIE killing the runtime process in the middle of the invocation, not an exception the handler could catch. The
payment function is reached over HTTP through the local API (`make serve`'s front end); the email function gets its
batches from the SQS event source mapping. Every count is read from the tables and SES, from outside.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from werkzeug.serving import make_server

from tools.local_api import LocalApi
from tools.local_aws import create_resources
from tools.runtime_pool import RUNTIME_PYTHON, LocalRuntime
from tools.sam_template import Template, load_template
from tools.sqs_source import SqsPoller

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
CREATE = json.loads((EVENTS / "payment-create.json").read_text())["body"]
pytestmark = pytest.mark.skipif(not RUNTIME_PYTHON.exists(), reason="no .venv-runtime: run `make runtime`")


@dataclass
class Stack:
    """The template's functions on the local runtime, their own tables and queues on moto's server."""

    template: Template
    runtime: LocalRuntime
    queues: dict[str, str]
    endpoint: str

    def count(self, logical_id: str) -> int:
        client = boto3.client("dynamodb", endpoint_url=self.endpoint)
        name = next(t.name for t in self.template.tables if t.logical_id == logical_id)
        return int(client.scan(TableName=name, Select="COUNT")["Count"])


@pytest.fixture
def stack_factory(sam_build: Path, moto_endpoint: str) -> Iterator[Any]:
    """Makes a `Stack` with ``parameters`` and function ``timeouts`` overridden; stops its sandboxes afterwards."""
    started: list[LocalRuntime] = []

    def make(parameters: dict[str, str] | None = None, timeouts: dict[str, int] | None = None) -> Stack:
        suffix = uuid.uuid4().hex[:8]
        names = {
            logical_id: f"{logical_id}-{suffix}"
            for logical_id in ("IdempotencyTable", "PaymentsTable", "GatewayChargesTable", "EmailQueue")
        }
        names["EmailDeadLetterQueue"] = f"EmailDeadLetterQueue-{suffix}"
        template = load_template(ROOT / "template.yaml", parameters=parameters, names=names)
        for function in template.functions:
            function.timeout_s = (timeouts or {}).get(function.logical_id, function.timeout_s)
        queues = create_resources(template, moto_endpoint)
        environ = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint, "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint}
        runtime = LocalRuntime(template, build_dir=sam_build, environ=environ)
        started.append(runtime)
        return Stack(template, runtime, queues, moto_endpoint)

    yield make
    for runtime in started:
        runtime.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    """The local API (`make serve`'s front end) for a `Stack`, on a free 127.0.0.1 port; yields its URL."""
    servers: list[Any] = []

    def start(stack: Stack) -> str:
        app = LocalApi(stack.template, principal="alice", invoker=stack.runtime)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def post(url: str, key: str, body: str = CREATE) -> httpx.Response:
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    return httpx.post(f"{url}/payments", content=body, headers=headers, timeout=120)


def post_until_done(url: str, key: str, *, deadline_s: float = 120) -> tuple[httpx.Response, int]:
    """A client retrying the request: 409 (in flight) is retried after its Retry-After; the answer, and the 409s."""
    conflicts = 0
    deadline = time.monotonic() + deadline_s
    while True:
        response = post(url, key)
        if response.status_code != 409 or time.monotonic() > deadline:
            return response, conflicts
        conflicts += 1
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 1.0))


def test_a_lost_201_retried_and_16_concurrent_clients_give_one_charge(stack_factory: Any, serve: Any) -> None:
    stack = stack_factory(parameters={"GatewayLatencyMs": "5000"})  # the first charge is in flight for 5 s
    url = serve(stack)
    first = post(url, "lost-201")
    assert first.status_code == 201, first.text
    retried = post(url, "lost-201")  # the client never saw the first 201
    assert retried.status_code == 201 and retried.json() == first.json()
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert stack.count("GatewayChargesTable") == 1

    answers: list[tuple[httpx.Response, int]] = [None] * 16  # type: ignore[list-item]
    start = threading.Barrier(16)

    def client(index: int) -> None:
        start.wait()
        answers[index] = post_until_done(url, "sixteen-at-once")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sandboxes = stack.runtime.pools["PaymentFunction"].sandboxes
    conflicts = sum(c for _, c in answers)
    print(f"16 clients: {len(sandboxes)} sandboxes, {conflicts} answers 409 before the 201")
    failed = [line for sandbox in sandboxes for line in sandbox.lines if "timed out" in line or "[ERROR]" in line]
    assert {response.status_code for response, _ in answers} == {201}, ([r.text for r, _ in answers], failed)
    assert len({response.text for response, _ in answers}) == 1, "every client got the same 201"
    assert stack.count("GatewayChargesTable") == 2, "one charge per key"
    assert stack.count("PaymentsTable") == 2, "one payment per key"
    assert len(sandboxes) > 2, f"concurrent requests were served by concurrent sandboxes ({len(sandboxes)})"
    assert conflicts > 0, f"some clients arrived while the first was in flight ({len(sandboxes)} sandboxes)"
    assert sandboxes[0].wait_for_output('"service":"payment"'), "Powertools' metrics name the payment service"
    output = [line for sandbox in sandboxes for line in sandbox.lines]
    assert not any('"service":"email"' in line for line in output), "not the other function's (issue 12)"


def test_a_real_timeout_in_the_middle_of_the_charge_then_the_retry_charges_once(stack_factory: Any, serve: Any) -> None:
    """RIE kills the runtime while the gateway, having recorded the charge, has not answered yet. The client's
    retries get 409 until the lease the function took ends, then one takes over: the gateway recognises its key,
    the payment is recorded once, and every later retry replays the same 201."""
    stack = stack_factory(parameters={"GatewayLatencyMs": "60000"}, timeouts={"PaymentFunction": 5})
    url = serve(stack)
    assert httpx.get(f"{url}/payments/pay_none", timeout=120).status_code == 404  # a warm sandbox: no init in the 5 s
    started = time.monotonic()
    timed_out = post(url, "times-out")
    assert timed_out.status_code == 500, timed_out.text
    sandbox = stack.runtime.pools["PaymentFunction"].sandboxes[0]
    assert sandbox.wait_for_output("Reset initiated: Timeout"), "RIE killed the runtime at the Timeout"
    assert stack.count("GatewayChargesTable") == 1, "killed after the gateway recorded the charge"
    assert stack.count("PaymentsTable") == 0, "killed before the payment was recorded"

    retried, conflicts = post_until_done(url, "times-out")
    waited = time.monotonic() - started
    assert retried.status_code == 201, retried.text
    assert len(sandbox.init_durations(at_least=2)) == 2, "the killed runtime process was replaced by a new one"
    later = [post(url, "times-out") for _ in range(3)]
    assert all(r.status_code == 201 and r.json() == retried.json() for r in later)
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in later)
    charges, payments = stack.count("GatewayChargesTable"), stack.count("PaymentsTable")
    print(f"timeout: {conflicts} retries answered 409, 201 after {waited:.1f} s; {charges} charge, {payments} payment")
    assert (charges, payments) == (1, 1)


def test_an_email_batch_with_a_duplicate_and_a_malformed_message(stack_factory: Any, moto_endpoint: str) -> None:
    stack = stack_factory()
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    ses = boto3.client("ses", endpoint_url=moto_endpoint)
    queue = stack.queues["EmailQueue"]
    bodies = [record["body"] for record in json.loads((EVENTS / "email-batch.json").read_text())["Records"]]
    sent = {sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"]: body for body in bodies}
    malformed = {message_id for message_id, body in sent.items() if '"email_id"' not in body}
    email_ids = {json.loads(body)["email_id"] for body in bodies if '"email_id"' in body}
    assert len(malformed) == 1 and len(email_ids) == len(bodies) - 2, "the batch has a duplicate and a malformed one"
    sent_before = int(ses.get_send_quota()["SentLast24Hours"])
    responses: list[Any] = []

    def invoke(function_id: str, event: Any) -> Any:
        responses.append(stack.runtime.invoke(function_id, event))
        return responses[-1]

    source = next(f for f in stack.template.functions if f.logical_id == "EmailFunction").sqs_sources[0]
    poller = SqsPoller(sqs, queue, source, "EmailFunction", invoke)
    received = sum(iter(poller.poll_once, 0))
    assert received == len(bodies)
    assert int(ses.get_send_quota()["SentLast24Hours"]) - sent_before == len(email_ids), "one email per email_id"
    failures = {f["itemIdentifier"] for r in responses for f in r["batchItemFailures"]}
    assert failures == malformed, "batchItemFailures names the malformed message, and only it"
    assert stack.runtime.pools["EmailFunction"].sandboxes[0].wait_for_output('"service":"email"')
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1", "only the malformed one was not deleted"


def _descendants(pid: int) -> dict[int, str | None]:
    """Each descendant process of ``pid`` and when it started (so that a reused pid is not taken for it)."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    found: dict[int, str | None] = {int(child): _started(int(child)) for child in children.stdout.split()}
    for child in list(found):
        found.update(_descendants(child))
    return found


def _started(pid: int) -> str | None:
    """The process's start time (clock ticks after boot, /proc/<pid>/stat's 22nd field); None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def test_make_serve_runs_on_the_runtime_logs_like_lambda_and_stops_every_process(
    sam_build: Path, tmp_path: Path
) -> None:
    """`make serve`'s command: the functions on RIE with an embedded AWS; SIGTERM stops RIE and the runtimes."""
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    command = [sys.executable, str(ROOT / "tools" / "local_api.py"), "--port", "0", "--embedded-dynamodb"]
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--build-dir", str(sam_build)], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "on http://127.0.0.1:" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        port = log.read_text().split("on http://127.0.0.1:", 1)[1].split()[0]
        first = post(f"http://127.0.0.1:{port}", "serve-1")
        again = post(f"http://127.0.0.1:{port}", "serve-1")
        sandboxes = _descendants(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert first.status_code == 201 and again.json() == first.json()
    assert len(sandboxes) >= 2, "an RIE process and its runtime process"
    # RIE SIGKILLs its runtime as it stops, and a killed process is gone once its parent (or init) reaps it: wait for
    # that (a time-out, never a measurement) instead of a fixed 0.5 s a loaded machine could overrun.
    deadline = time.monotonic() + 30
    while (alive := [pid for pid, started in sandboxes.items() if started and _started(pid) == started]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert alive == [], f"left running after SIGTERM: {alive}"
    text = log.read_text()
    for mark in ("[PaymentFunction#1] START RequestId:", "[PaymentFunction#1] END RequestId:", "REPORT RequestId:"):
        assert mark in text, text
    assert "Polling EmailQueue" in text


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    result = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        return "the Docker daemon is not running: " + (result.stderr.strip().splitlines() or ["docker info failed"])[-1]
    return None


@pytest.mark.parametrize("event", ["payment-invalid-body.json", "payment-missing-key.json"])
def test_sam_local_invoke_answers_as_the_local_runtime(event: str, stack_factory: Any, sam_build: Path) -> None:
    """Where Docker runs, `sam local invoke` (Lambda's own image) answers these events as our runtime does. The
    events are answered before any AWS call, so the container needs no endpoint."""
    why = _docker_unavailable()
    if why is not None:
        print(f"sam local invoke comparison skipped: {why}")
        pytest.skip(f"sam local invoke needs Docker: {why}")
    from tests.sam_cli import sam_tool

    ours = stack_factory().runtime.invoke("PaymentFunction", json.loads((EVENTS / event).read_text()))
    built = str(sam_build / "template.yaml")
    result = sam_tool("sam", "local", "invoke", "PaymentFunction", "-t", built, "-e", str(EVENTS / event), timeout=600)
    assert result.returncode == 0, result.stderr
    theirs = json.loads(result.stdout.strip().splitlines()[-1])
    assert (theirs["statusCode"], json.loads(theirs["body"])) == (ours["statusCode"], json.loads(ours["body"]))
