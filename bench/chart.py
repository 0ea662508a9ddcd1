"""The benchmark's outputs: a Markdown page with every number and the targets, and one PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cold_start import DECORATED, FROM_SOURCE, IMPORTS
from contenders import OURS, SCENARIOS, THEIRS
from measure import HANDLER

CPU_TARGET = 1 / 3
IMPORT_TARGET = 0.15
LATENCY_TARGET = 1.0


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def markdown(results: dict[str, Any]) -> str:
    local, moto, settings = results["dynamodb_local"], results["moto"], results["settings"]
    lines = [
        "# lambda-idempotency vs Powertools idempotency",
        "",
        f"Written by `make bench` ({results['seconds']} s on {results['machine']}). Both libraries run in one process,",
        "on the same endpoint, with the same handler (key `order_id` from a JSON body, the whole body checked on",
        "replay), the same boto3 client and the same Lambda context; each call of one library is paired with a call of",
        "the other, in random order, so drift cancels. Powertools: aws-lambda-powertools 3.37.0,",
        "`DynamoDBPersistenceLayer`. Raw numbers: [results.json](results.json).",
        "",
        *_load(results.get("load")),
        "![latency](latency.png)",
        "",
        "## Targets",
        "",
        "| target | ours | Powertools | ratio | |",
        "|---|---|---|---|---|",
    ]
    for label, cpu in local["cpu_us"].items():
        ratio = cpu[OURS] / cpu[THEIRS]
        lines.append(
            f"| CPU per call, {label} (null client) ≤ 1/3 | {cpu[OURS]:.0f} µs | {cpu[THEIRS]:.0f} µs | "
            f"{ratio:.2f} | {verdict(ratio <= CPU_TARGET)} |"
        )
    imports = results["import_ms"]
    ratio = imports[OURS]["median"] / imports[THEIRS]["median"]
    lines.append(
        f"| import beyond boto3 ≤ 0.15x | {imports[OURS]['median']:.2f} ms | {imports[THEIRS]['median']:.2f} ms | "
        f"{ratio:.2f} | {verdict(ratio <= IMPORT_TARGET)} |"
    )
    for scenario in SCENARIOS:
        summary = local["latency"][scenario.name]
        spread = summary["ratio_p50"]
        lines.append(
            f"| latency p50 ≤ 1.0x, {scenario.name} | {summary[f'{OURS} p50']:.2f} ms | "
            f"{summary[f'{THEIRS} p50']:.2f} ms | {spread['median']:.2f} ({spread['min']:.2f}-{spread['max']:.2f}) | "
            f"{verdict(spread['max'] <= LATENCY_TARGET)} |"
        )
    handler = {label: cpu.get(HANDLER) for label, cpu in local["cpu_us"].items()}
    lines += [
        "",
        "CPU: what each library adds to a call, with a null client (an in-memory stand-in for boto3 that answers at",
        "once), after subtracting the undecorated handler's own CPU ("
        + ", ".join(f"{label} {value:.1f} µs" for label, value in handler.items() if value is not None)
        + "); median of 5 runs of 2000 calls.",
        "",
        "Latency ratios: median over the runs, with the lowest and highest run in brackets; a target counts as met",
        "only when every run meets it.",
        "",
        "## DynamoDB round trips per call",
        "",
        "| scenario | ours | Powertools |",
        "|---|---|---|",
    ]
    for scenario in SCENARIOS:
        trips = local["round_trips"][scenario.name]
        lines.append(f"| {scenario.name} | {trips[OURS]} | {trips[THEIRS]} |")
    lines += [
        "",
        "The warm duplicate runs each library with its defaults: our local cache of completed records is on by",
        "default, Powertools' (`use_local_cache`) is off. The payment's business write (a charge item in a second",
        "table) is written the way each library offers: Powertools' handler puts it with the client (claim, put,",
        "complete); ours adds it with `current().write`, so it commits in one transaction with the completion,",
        'fenced by the owner token (claim, commit). The optimistic row runs ours with `mode="optimistic"`: no claim,',
        "one transaction that inserts the finished record with the write (for short handlers whose effects are all",
        "DynamoDB writes); Powertools runs the same payment as in the row above.",
        "",
    ]
    lines += latency_table(
        "DynamoDB Local (the latencies to quote)", local["latency"], settings["repeats"], settings["calls"]
    )
    lines += latency_table(
        "moto server (labelled: moto parses every expression in Python, so a longer condition costs far more there "
        "than on DynamoDB)",
        moto["latency"],
        1,
        settings["moto_calls"],
    )
    lines += [
        "## Cold start",
        "",
        f"Import beyond boto3: the time `{_imports()}` takes in a fresh interpreter that has imported boto3, median",
        f"of {settings['import_runs']} processes per library, both from compiled bytecode (min-max: ours "
        f"{imports[OURS]['min']:.2f}-{imports[OURS]['max']:.2f} ms, Powertools "
        f"{imports[THEIRS]['min']:.2f}-{imports[THEIRS]['max']:.2f} ms).",
        "",
        *_decorated(imports),
        "Without bytecode (Lambda cannot write `__pycache__` under /opt, and a plain `BuildMethod: python3.12` copies",
        f"our package as source) our import takes {imports[FROM_SOURCE]['median']:.2f} ms; so template.yaml builds the",
        "layer with `layers/idempotency/Makefile`, which ships hash-checked bytecode.",
        "",
    ]
    layer = results["layer"]
    if layer:
        lines += [
            "Layer size as `sam build` (aws-sam-cli 1.170.0) produces it, the sum of the files' bytes and the zip",
            "Lambda is given: ours holds the `lambda_idempotency` package alone (`BuildMethod: python3.12`; no",
            "dependency: boto3 is in the Lambda runtime); Powertools' is a layer whose requirements.txt holds",
            "aws-lambda-powertools==3.37.0; template.yaml's `IdempotencyLayer`, the one this project deploys, is built",
            "by `layers/idempotency/Makefile`: the package, Powertools for the example functions, and bytecode.",
            "",
            "| layer | on disk | zipped |",
            "|---|---|---|",
            *(
                f"| {name} | {layer[name]['bytes'] / 1024:,.0f} KiB | {layer[name]['zipped'] / 1024:,.0f} KiB |"
                for name in layer
            ),
            "",
        ]
    else:
        lines += ["Layer size: not measured (no SAM CLI in `.venv-sam` or on PATH).", ""]
    return "\n".join(lines)


def _load(load: dict[str, Any] | None) -> list[str]:
    """A warning when the machine was busy: other processes' load widens the spread of every timing."""
    if not load or max(load["before"], load["after"]) <= load["cores"]:
        return []
    return [
        f"**A busy machine:** the 1-minute load average was {load['before']:.1f} at the start and "
        f"{load['after']:.1f} at the end, on {load['cores']} cores",
        "(other jobs shared it). Pairs are interleaved, so the ratios hold better than the absolute numbers; expect",
        "wide p99s and runs that straddle a target.",
        "",
    ]


def _imports() -> str:
    return IMPORTS[OURS]


def _decorated(imports: dict[str, Any]) -> list[str]:
    """The import plus building the store and decorating the handler: everything a handler module's init runs."""
    ours, theirs = imports.get(OURS + DECORATED), imports.get(THEIRS + DECORATED)
    if ours is None or theirs is None:
        return []
    return [
        "Import, then build the store and decorate the handler, as a handler module's init does (our engine loads",
        f"when a function is decorated, so the import alone does not show it): ours {ours['median']:.2f} ms,",
        f"Powertools {theirs['median']:.2f} ms, ratio {ours['median'] / theirs['median']:.2f} (not a target; the",
        "issue's target is on the import).",
        "",
    ]


def latency_table(title: str, latency: dict[str, Any], repeats: int, calls: int) -> list[str]:
    lines = [
        f"## Latency, {title}",
        "",
        f"{repeats} run(s) of {calls} interleaved pairs per scenario; milliseconds, median of the runs' percentiles.",
        "",
        "| scenario | ours p50 | Powertools p50 | ratio p50 | ours p99 | Powertools p99 | ratio p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        s = latency[scenario.name]
        lines.append(
            f"| {scenario.name} | {s[f'{OURS} p50']:.2f} | {s[f'{THEIRS} p50']:.2f} | {_spread(s['ratio_p50'])} | "
            f"{s[f'{OURS} p99']:.2f} | {s[f'{THEIRS} p99']:.2f} | {_spread(s['ratio_p99'])} |"
        )
    return [*lines, ""]


def _spread(ratio: dict[str, float]) -> str:
    if ratio["min"] == ratio["max"]:
        return f"{ratio['median']:.2f}"
    return f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})"


def plot(results: dict[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency_axis, cpu_axis) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    latency = results["dynamodb_local"]["latency"]
    names = [s.name for s in SCENARIOS]
    width = 0.38
    for offset, name, color in ((-width / 2, OURS, "#2a7ab9"), (width / 2, THEIRS, "#b0b0b0")):
        medians = [latency[n][f"{name} p50"] for n in names]
        lows = [m - min(r[name]["p50"] for r in latency[n]["runs"]) for m, n in zip(medians, names, strict=True)]
        highs = [max(r[name]["p50"] for r in latency[n]["runs"]) - m for m, n in zip(medians, names, strict=True)]
        positions = [i + offset for i in range(len(names))]
        latency_axis.bar(positions, medians, width, label=name, color=color, yerr=[lows, highs], capsize=3)
    latency_axis.set_xticks(
        range(len(names)), [n.replace(" (", "\n(").replace(" + ", "\n+ ").replace(", ", ",\n") for n in names]
    )
    latency_axis.set_ylabel("p50 latency, ms (DynamoDB Local)")
    latency_axis.set_title("End-to-end latency per call (bars: spread of runs)")
    latency_axis.legend()

    cpu = results["dynamodb_local"]["cpu_us"]
    labels = list(cpu)
    for offset, name, color in ((-width / 2, OURS, "#2a7ab9"), (width / 2, THEIRS, "#b0b0b0")):
        cpu_axis.bar([i + offset for i in range(len(labels))], [cpu[label][name] for label in labels], width,
                     label=name, color=color)  # fmt: skip
    cpu_axis.set_xticks(range(len(labels)), labels)
    cpu_axis.set_ylabel("CPU per call, µs (null client)")
    cpu_axis.set_title("The decorator's own CPU")
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    plt.close(figure)
