"""Cold start measured the Lambda way: the Init Duration of a real runtime process, ours against Powertools'.

make bench-cold-start        # or: .venv/bin/python bench/cold_start_rie.py [--runs 30]

Three minimal handlers run on the local Lambda runtime (tools/runtime_pool.py: RIE + awslambdaric, Python 3.12),
each from its own task folder and all with the same layer, `sam build`'s IdempotencyLayer (lambda_idempotency and
Powertools both in it): no idempotency (a boto3 DynamoDB client, what both libraries make), ``@idempotent`` of
lambda_idempotency with a `DynamoDBStore`, and Powertools' ``@idempotent`` with a `DynamoDBPersistenceLayer`. Each
cold start is a new sandbox: a new RIE and runtime process, invoked once (against moto's DynamoDB, so the handler
really runs). The figure is RIE's ``INIT REPORT(durationMs)``: from the runtime process's start to its first request
for work, the span Lambda bills as Init Duration. (RIE's REPORT line also prints an ``Init Duration``, but it does
not include the runtime's start or the handler's import; see tools/sandbox.py.) The handlers take turns, run by
run, so a machine's load falls on all three alike. Writes docs/benchmarks/cold-start-rie.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lambda_idempotency.testing import moto_server  # noqa: E402

from tools.runtime_pool import BUILD_DIR, LocalRuntime  # noqa: E402
from tools.sam_template import Function, Template  # noqa: E402
from tools.sandbox import FunctionError  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
TABLES = {"Bare": "unused", "Ours": "OursTable", "Powertools": "PowertoolsTable"}
"""Each library's table: ours keyed on ``pk`` (`create_table`), Powertools' on ``id`` (its default)."""
HANDLERS = {
    "Bare": "no idempotency: a boto3 DynamoDB client",
    "Ours": "lambda_idempotency @idempotent",
    "Powertools": "Powertools @idempotent",
}
SOURCES = {
    "Bare": """
import boto3

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    return {"order": event["order_id"]}
""",
    "Ours": """
import os

from lambda_idempotency import DynamoDBStore, idempotent

store = DynamoDBStore(os.environ["IDEMPOTENCY_TABLE"])


@idempotent(store, key="order_id")
def handler(event, context):
    return {"order": event["order_id"]}
""",
    "Powertools": """
import os

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent

persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
config = IdempotencyConfig(event_key_jmespath="order_id")


@idempotent(persistence_store=persistence, config=config)
def handler(event, context):
    return {"order": event["order_id"]}
""",
}


def task_folders(build: Path, layer: Path) -> Template:
    """A build folder holding the three handlers' task folders and a copy of the layer, as `sam build` lays them
    out (a copy: a `make build` meanwhile must not change the layer under the measurement)."""
    shutil.copytree(layer, build / "IdempotencyLayer", symlinks=True)
    functions = []
    for name, source in SOURCES.items():
        (build / name).mkdir()
        (build / name / "app.py").write_text(source.lstrip())
        functions.append(
            Function(
                logical_id=name,
                code_dir=build / name,
                handler="app.handler",
                timeout_s=30,
                memory_mb=512,
                environment={"IDEMPOTENCY_TABLE": TABLES[name]},
                layers=["IdempotencyLayer"],
            )
        )
    return Template(functions, [])


def create_tables(endpoint: str) -> None:
    import boto3
    from lambda_idempotency import DynamoDBStore, create_table

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    create_table(DynamoDBStore(TABLES["Ours"], client=client))
    client.create_table(
        TableName=TABLES["Powertools"],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def measure(runtime: LocalRuntime, runs: int) -> dict[str, list[float]]:
    """``runs`` Init Durations per handler; a cold start whose invoke failed is reported and taken again."""
    found: dict[str, list[float]] = {name: [] for name in SOURCES}
    names = list(SOURCES)
    for run in range(runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            while len(found[name]) <= run:
                sandbox = runtime.new_sandbox(name, run)
                try:
                    sandbox.invoke({"order_id": f"order-{run}"})
                    found[name].append(sandbox.init_durations(at_least=1)[0])
                except FunctionError as error:
                    print(f"{name}: a cold start failed and is taken again: {error}", flush=True)
                finally:
                    sandbox.stop()
        print(f"run {run + 1}/{runs}: " + ", ".join(f"{n} {found[n][-1]:.0f} ms" for n in names), flush=True)
    return found


def summary(values: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(values, n=4)
    return {
        "median": statistics.median(values),
        "p25": quartiles[0],
        "p75": quartiles[2],
        "min": min(values),
        "max": max(values),
    }


def write(found: dict[str, list[float]], runs: int, load: tuple[float, float]) -> str:
    stats = {name: summary(values) for name, values in found.items()}
    paired = [o / t for o, t in zip(found["Ours"], found["Powertools"], strict=True)]
    ratio = summary(paired)
    bare = stats["Bare"]["median"]
    ours, theirs = stats["Ours"]["median"], stats["Powertools"]["median"]
    lines = [
        "# Cold start on the Lambda runtime (Init Duration)",
        "",
        f"`make bench-cold-start` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average"
        f" {load[0]:.1f} at the start and {load[1]:.1f} at the end, {runs} cold starts each, handlers taking turns):",
        "RIE's `INIT REPORT(durationMs)` of a new runtime process, Python 3.12, awslambdaric 4.2.2, the same",
        "`sam build` layer for all three. See bench/cold_start_rie.py for the method.",
        "",
        "| handler | median ms | p25-p75 ms | min-max ms | beyond no idempotency (median) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, label in HANDLERS.items():
        s = stats[name]
        extra = "" if name == "Bare" else f"{s['median'] - bare:+.0f} ms"
        lines.append(
            f"| {label} | {s['median']:.0f} | {s['p25']:.0f}-{s['p75']:.0f} | {s['min']:.0f}-{s['max']:.0f} | {extra} |"
        )
    lines += [
        "",
        f"Ours / Powertools, Init Duration: {ratio['median']:.2f}x, the median of the {runs} paired runs (each"
        f" pair back to back; p25-p75 {ratio['p25']:.2f}-{ratio['p75']:.2f}x); the ratio of the medians is"
        f" {ours / theirs:.2f}x. What the idempotency adds beyond the bare handler, medians:"
        f" {ours - bare:+.0f} ms (ours), {theirs - bare:+.0f} ms (Powertools).",
        "",
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"runs": runs, "load_average": load, "init_ms": found, "stats": stats, "paired_ratio": ratio}
    (OUT / "cold-start-rie.json").write_text(json.dumps(record, indent=2))
    page = "\n".join(lines)
    (OUT / "cold-start-rie.md").write_text(page)
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR, help="sam build's output (make build)")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as folder:
        create_tables(endpoint)
        template = task_folders(Path(folder), args.build_dir / "IdempotencyLayer")
        environ = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": endpoint}
        runtime = LocalRuntime(template, build_dir=Path(folder), environ=environ)
        start_load = os.getloadavg()[0]
        found = measure(runtime, args.runs)
        print(write(found, args.runs, (start_load, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
