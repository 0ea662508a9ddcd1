"""A worker process for tests/test_lease_processes.py: one idempotent invocation on DynamoDB Local, as one Lambda
container would run it, so that the test can SIGKILL or SIGSTOP a real process at a chosen point.

Usage: ``python tests/lease_worker.py '<json>'`` with endpoint, table, business table, key, lease (s), remaining (ms,
the Lambda context's time left) and script: ``hold`` (claim, then wait for a line on stdin), ``steps`` (step one,
wait for a line, step two, a write, complete) or ``long`` (run ``seconds``, wait for a line, and complete). It
reports what happens as JSON lines on stdout: ``claimed``, ``effect`` (a step's function ran), ``waiting``, ``result``,
``lease-lost``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from lambda_idempotency import DynamoDBStore, LeaseLostError, current, idempotent


def say(event: str, **details: Any) -> None:
    print(json.dumps({"event": event, **details}), flush=True)


class Context:
    """The Lambda context's remaining time, counting down from the worker's start."""

    def __init__(self, remaining_ms: int) -> None:
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def main(options: dict[str, Any]) -> None:
    store = DynamoDBStore(options["table"], endpoint_url=options["endpoint"], region_name="us-east-1")
    business = options["business"]

    def effect(name: str) -> str:
        say("effect", step=name, attempt=current().attempt)
        return name

    @idempotent(store, key="key", operation="lease-worker", lease=options["lease"], local_cache=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        run = current()
        say("claimed", attempt=run.attempt, owner=run.lease.owner if run.lease else None)
        script = event["script"]
        if script == "hold":
            say("waiting")
            sys.stdin.readline()  # SIGKILLed here
        elif script == "steps":
            run.step("one", effect, "one")
            say("waiting")
            sys.stdin.readline()  # SIGSTOPped here, past the lease; resumed after another worker completed the key
            run.step("two", effect, "two")
        elif script == "long":
            deadline = time.monotonic() + options["seconds"]
            while time.monotonic() < deadline:
                time.sleep(0.05)
            say("waiting")
            sys.stdin.readline()  # the test has sent its duplicates: as long as a loaded machine takes to send them
            effect("long")
        item = {"id": {"S": f"{event['key']}#{run.attempt}"}, "worker": {"S": options["name"]}}
        run.write({"Put": {"TableName": business, "Item": item}})
        return {"worker": options["name"], "attempt": run.attempt}

    try:
        result = handler({"key": options["key"], "script": options["script"]}, Context(options["remaining_ms"]))
    except LeaseLostError as exc:
        say("lease-lost", message=str(exc))
        return
    say("result", result=result)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
