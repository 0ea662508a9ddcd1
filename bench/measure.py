"""Round trips, end-to-end latency (pairs interleaved) and CPU per call with a client that answers at once."""

from __future__ import annotations

import itertools
import random
import statistics
import time
import uuid
from typing import Any

from contenders import BUILDERS, OURS, SCENARIOS, THEIRS, Handler, LambdaContext, Scenario, event, undecorated

CONTEXT = LambdaContext()


class KeySource:
    """Keys for one scenario: fresh ones, or one key completed once up front (so every call is a duplicate)."""

    def __init__(self, scenario: Scenario, handlers: dict[str, Handler]) -> None:
        self._fresh = scenario.fresh_key
        self._run = uuid.uuid4().hex[:8]
        self._counter = itertools.count()
        if not self._fresh:
            self._fixed = f"dup-{self._run}"
            for handler in handlers.values():
                handler(event(self._fixed), CONTEXT)
                handler(event(self._fixed), CONTEXT)  # a second call warms a local cache where there is one

    def next(self) -> str:
        return f"order-{self._run}-{next(self._counter)}" if self._fresh else self._fixed


def handlers_for(client: Any, tables: dict[str, str], scenario: Scenario) -> dict[str, Handler]:
    return {name: build(client, tables[name], scenario) for name, build in BUILDERS.items()}


def round_trips(client: Any, tables: dict[str, str]) -> dict[str, dict[str, int]]:
    """DynamoDB API calls of one call per scenario and library, counted on the client (botocore ``before-call``)."""
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb", count)
    try:
        found: dict[str, dict[str, int]] = {}
        for scenario in SCENARIOS:
            handlers = handlers_for(client, tables, scenario)
            keys = KeySource(scenario, handlers)
            found[scenario.name] = {}
            for name, handler in handlers.items():
                calls.clear()
                handler(event(keys.next()), CONTEXT)
                found[scenario.name][name] = len(calls)
        return found
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)


def latency(client: Any, tables: dict[str, str], calls: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per call; each pair (ours, theirs) runs back to back in random order, so drift cancels."""
    rng = random.Random(seed)
    samples: dict[str, dict[str, list[float]]] = {}
    for scenario in SCENARIOS:
        handlers = handlers_for(client, tables, scenario)
        keys = KeySource(scenario, handlers)
        samples[scenario.name] = {OURS: [], THEIRS: []}
        order = [OURS, THEIRS]
        for _ in range(calls):
            rng.shuffle(order)
            for name in order:
                payload = event(keys.next())
                started = time.perf_counter()
                handlers[name](payload, CONTEXT)
                samples[scenario.name][name].append((time.perf_counter() - started) * 1000)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class NullClient:
    """A stand-in for the boto3 client that answers at once, so only the library's own CPU is measured.

    A conditional write succeeds, or (``refuse_with`` set) fails with the item a real table returned, as DynamoDB's
    ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` does.
    """

    def __init__(self, refuse_with: dict[str, Any] | None = None) -> None:
        from botocore.exceptions import ClientError

        self._error = ClientError
        self._refuse_with = refuse_with

    def _conditional(self, operation: str, **request: Any) -> dict[str, Any]:
        if self._refuse_with is not None and "attribute_not_exists" in request.get("ConditionExpression", ""):
            raise self._error(
                {"Error": {"Code": "ConditionalCheckFailedException", "Message": "refused"}, "Item": self._refuse_with},
                operation,
            )
        return {}

    def put_item(self, **request: Any) -> dict[str, Any]:
        return self._conditional("PutItem", **request)

    def update_item(self, **request: Any) -> dict[str, Any]:
        return self._conditional("UpdateItem", **request)

    def delete_item(self, **request: Any) -> dict[str, Any]:
        return {}

    def get_item(self, **request: Any) -> dict[str, Any]:
        return {"Item": self._refuse_with} if self._refuse_with else {}


def stored_items(client: Any, tables: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A COMPLETED record of each library as its table holds it, for the null client to answer duplicates with.

    Run on empty tables: the record of key ``dup`` is then the only item of each.
    """
    handlers = handlers_for(client, tables, SCENARIOS[0])
    for handler in handlers.values():
        handler(event("dup"), CONTEXT)
    return {name: client.scan(TableName=tables[name])["Items"][0] for name in handlers}


HANDLER = "handler alone"


def cpu_per_call(items: dict[str, dict[str, Any]], calls: int, repeats: int) -> dict[str, dict[str, float]]:
    """Microseconds of CPU each library adds to a call (median of ``repeats`` runs of ``calls``).

    The undecorated handler's own CPU, measured the same way, is subtracted from both and reported beside them.
    """
    found: dict[str, dict[str, float]] = {}
    for label, duplicate in (("first execution", False), ("duplicate", True)):
        scenario = SCENARIOS[1 if duplicate else 0]
        handlers = {name: build(NullClient(items[name] if duplicate else None), "null", scenario)
                    for name, build in BUILDERS.items()}  # fmt: skip
        handlers[HANDLER] = undecorated(NullClient(), "null", scenario)
        runs: dict[str, list[float]] = {name: [] for name in handlers}
        for run in range(repeats):
            payloads = [event("dup" if duplicate else f"cpu-{run}-{i}") for i in range(calls)]
            for name, handler in handlers.items():
                started = time.process_time()
                for payload in payloads:
                    handler(payload, CONTEXT)
                runs[name].append((time.process_time() - started) / calls * 1e6)
        alone = statistics.median(runs[HANDLER])
        found[label] = {name: statistics.median(values) - alone for name, values in runs.items() if name != HANDLER}
        found[label][HANDLER] = alone
    return found
