"""What a call costs in DynamoDB capacity and dollars, each library's record size, on DynamoDB Local.

Every DynamoDB call both libraries make is sent with ``ReturnConsumedCapacity=TOTAL`` (a botocore hook on the shared
client, so neither library is changed) and the capacity DynamoDB Local reports is added up per call. A refused
conditional write reports none (it is an error), but DynamoDB bills it all the same: as a write of the larger of the
stored item and the item sent (the DynamoDB Developer Guide, "Capacity unit consumption for write operations"), so
it is counted from the item sizes, with DynamoDB's sizing rules (`item_bytes`). Dollars: `PRICES`.
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal
from typing import Any

from contenders import BUILDERS, OURS, SCENARIOS, THEIRS, LambdaContext, event

CONTEXT = LambdaContext()
METERED = ("PutItem", "UpdateItem", "DeleteItem", "GetItem", "TransactWriteItems")
PRICES = {
    "write_per_million": 0.625,
    "read_per_million": 0.125,
    "region": "us-east-1",
    "mode": "on-demand (pay per request), Standard table class",
    "as_of": "2026-11-29",
    "source": "AWS's on-demand price since its November 2024 cut (-50 %), as quoted by "
    "https://airbyte.com/data-engineering-resources/dynamodb-pricing (2025-07-21); "
    "AWS's own page is https://aws.amazon.com/dynamodb/pricing/on-demand/",
}
"""Dollars per million write and read request units (WRU, RRU)."""
LEASE_S = 20.0
"""The lease a renewal extends; the renewal runs every lease/3 (issue 13's default: 20 s, renewed every 6.7 s)."""
LONG_FUNCTION_S = 60.0


class CapacityMeter:
    """Asks DynamoDB for the capacity of every call made on ``client`` and keeps it, call by call."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []
        self._sent: dict[str, Any] = {}

    def __enter__(self) -> CapacityMeter:
        events = self.client.meta.events
        events.register("before-parameter-build.dynamodb", self._ask)
        events.register("after-call.dynamodb", self._keep)
        return self

    def __exit__(self, *exc: object) -> None:
        events = self.client.meta.events
        events.unregister("before-parameter-build.dynamodb", self._ask)
        events.unregister("after-call.dynamodb", self._keep)

    def _ask(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in METERED:
            params["ReturnConsumedCapacity"] = "TOTAL"
            self._sent = params

    def _keep(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name not in METERED:
            return
        reported = parsed.get("ConsumedCapacity")
        if reported is not None:
            entries = reported if isinstance(reported, list) else [reported]
            reads, writes = zip(*(_read_and_write(e, model.name) for e in entries), strict=True)
            self.calls.append({"operation": model.name, "write": sum(writes), "read": sum(reads), "counted": False})
            return
        code = parsed.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException":  # billed as a write of the larger item
            stored = item_bytes(parsed.get("Item") or {})
            sent = item_bytes(self._sent.get("Item") or {})
            units = max(1, math.ceil(max(stored, sent) / 1024))
            self.calls.append({"operation": model.name, "write": units, "read": 0, "counted": True})
            return
        raise RuntimeError(f"{model.name} answered {code or 'no ConsumedCapacity'}: its cost cannot be told")

    def total(self) -> dict[str, Any]:
        return {
            "write": sum(c["write"] for c in self.calls),
            "read": sum(c["read"] for c in self.calls),
            "calls": [c["operation"] + (" (refused, counted)" if c["counted"] else "") for c in self.calls],
        }


def _read_and_write(entry: dict[str, Any], operation: str) -> tuple[float, float]:
    """The read and write units of one ConsumedCapacity entry: split when DynamoDB splits them, else its
    CapacityUnits, which are reads for a GetItem and writes for every other metered call."""
    if "ReadCapacityUnits" in entry or "WriteCapacityUnits" in entry:
        return entry.get("ReadCapacityUnits", 0.0), entry.get("WriteCapacityUnits", 0.0)
    units = entry.get("CapacityUnits", 0.0)
    return (units, 0.0) if operation == "GetItem" else (0.0, units)


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: each attribute's name in UTF-8 plus its value (Developer Guide,
    "Item sizes and formats": strings in UTF-8, numbers one byte per two significant digits plus one, binary as is,
    maps and lists 3 bytes plus one byte per element)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        digits = Decimal(data).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_bytes(v) for k, v in data.items())
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in data)
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(_value_bytes({"N": n}) for n in data)
    return sum(len(b) for b in data)  # BS


def per_call(client: Any, tables: dict[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Capacity units of one call of each scenario, per library (the warm duplicate is left out: it is a cache hit
    or the duplicate again)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario in SCENARIOS:
        if scenario.local_cache:
            continue
        found[scenario.name] = {}
        for name, build in BUILDERS.items():
            handler = build(client, tables[name], scenario)
            payload = event(f"cost-{uuid.uuid4().hex[:8]}")
            if not scenario.fresh_key:
                handler(payload, CONTEXT)
            with CapacityMeter(client) as meter:
                handler(payload, CONTEXT)
            found[scenario.name][name] = meter.total()
    return found


def record_sizes(client: Any, tables: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each library's completed record for the same call (same key, body and result), in bytes."""
    payload = event(f"size-{uuid.uuid4().hex[:8]}")
    sizes: dict[str, dict[str, Any]] = {}
    for name, build in BUILDERS.items():
        handler = build(client, tables[name], SCENARIOS[0])
        handler(payload, CONTEXT)
        (item,) = [i for i in client.scan(TableName=tables[name])["Items"] if _is_record_of(i, payload)]
        sizes[name] = {"bytes": item_bytes(item), "attributes": sorted(item)}
    return sizes


def _is_record_of(item: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Our record carries its key; Powertools' only a hash of it, so its record is the one holding the result."""
    import json

    order_id = json.loads(payload["body"])["order_id"]
    return order_id in json.dumps(item)


def renewal(client: Any, table: str) -> dict[str, Any]:
    """The capacity of one lease renewal: our conditional UpdateItem of the lease on an in-flight record."""
    from lambda_idempotency import DynamoDBStore
    from lambda_idempotency.engine import new_owner
    from lambda_idempotency.stores.base import ClaimRequest

    store = DynamoDBStore(table, client=client)
    now_ms = 1_800_000_000_000
    request = ClaimRequest(
        f"bench#renewal-{uuid.uuid4().hex}", new_owner(), "renewal", None, "0" * 64, now_ms, now_ms + 20_000,
        now_ms // 1000 + 86_400,
    )  # fmt: skip
    if store.claim(request) is not None:
        raise RuntimeError("the renewal's record could not be claimed")
    with CapacityMeter(client) as meter:
        if store.extend_lease(request.record_id, request.owner, now_ms + 40_000, now_ms // 1000 + 86_400) is not None:
            raise RuntimeError("the renewal was refused")
    return meter.total()


def renewals_in(duration_s: float, lease_s: float = LEASE_S) -> int:
    """Renewals of a function running ``duration_s``: one every lease/3, none at the very end."""
    return math.ceil(duration_s / (lease_s / 3)) - 1


def long_function(first: dict[str, dict[str, Any]], one_renewal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A 60 s function: its first execution, plus (ours) a renewal every lease/3; Powertools renews nothing."""
    count = renewals_in(LONG_FUNCTION_S)
    ours = first[OURS]
    ours = {
        "write": ours["write"] + count * one_renewal["write"],
        "read": ours["read"] + count * one_renewal["read"],
        "calls": [*ours["calls"], f"{count} x UpdateItem (renewal)"],
        "renewals": count,
    }
    return {OURS: ours, THEIRS: dict(first[THEIRS])}


SCALED_LEASE_S = 0.6
"""The long function, run for real at 1/100 scale: a 0.6 s lease renewed every 0.2 s over 0.6 * 3 s, the same nine
periods (eight renewals) as a 60 s function under a 20 s lease."""


def long_function_run(client: Any, tables: dict[str, str]) -> dict[str, dict[str, Any]] | None:
    """The long function run for real (scaled: `SCALED_LEASE_S`), once the lease renewal of issue 13 is in the
    library; None before. Each library's handler sleeps through the same span; the renewals are counted as sent."""
    import importlib.util
    import time

    if importlib.util.find_spec("lambda_idempotency.lease") is None:
        return None
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency import idempotent as powertools_idempotent
    from lambda_idempotency import DynamoDBStore, idempotent

    span_s = SCALED_LEASE_S * LONG_FUNCTION_S / LEASE_S

    def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
        time.sleep(span_s)
        return {"statusCode": 200}

    handlers = {
        OURS: idempotent(
            DynamoDBStore(tables[OURS], client=client),
            key="json(body).order_id",
            lease=SCALED_LEASE_S,
            local_cache=False,
        )(work),
        THEIRS: powertools_idempotent(
            persistence_store=DynamoDBPersistenceLayer(tables[THEIRS], boto3_client=client),
            config=IdempotencyConfig(event_key_jmespath="powertools_json(body).order_id"),
        )(work),
    }
    found: dict[str, dict[str, Any]] = {}
    for name, handler in handlers.items():
        with CapacityMeter(client) as meter:
            handler(event(f"long-{uuid.uuid4().hex[:8]}"), CONTEXT)
        found[name] = meter.total()
        found[name]["renewals"] = max(0, len(meter.calls) - 2)
    return found


def dollars_per_million(units: dict[str, Any]) -> float:
    """Dollars per million calls: each call's units times the price of a unit (a million calls, a million units)."""
    return float(units["write"] * PRICES["write_per_million"] + units["read"] * PRICES["read_per_million"])


def measure(client: Any, tables: dict[str, str]) -> dict[str, Any]:
    rows = per_call(client, tables)
    one_renewal = renewal(client, tables[OURS])
    measured = long_function_run(client, tables)
    rows[f"{LONG_FUNCTION_S:.0f} s function, lease renewal"] = measured or long_function(
        rows["first execution"], one_renewal
    )
    for row in rows.values():
        for units in row.values():
            units["dollars_per_million"] = dollars_per_million(units)
    return {
        "rows": rows,
        "renewal": one_renewal,
        "long_run_measured": measured is not None,
        "record_bytes": record_sizes(client, tables),
        "prices": PRICES,
    }


def scenario_names() -> list[str]:
    return [s.name for s in SCENARIOS if not s.local_cache] + [f"{LONG_FUNCTION_S:.0f} s function, lease renewal"]
