"""The benchmark's outputs: a Markdown page with every number and the targets, and one PNG chart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cold_start import DECORATED, FROM_SOURCE, IMPORTS
from contenders import OURS, SCENARIOS, THEIRS
from measure import CONTROL, HANDLER

CPU_TARGET = 0.33
P99_TARGETED = ("first execution", "duplicate", "payment + business write")
SAME_WORK = ("first execution", "duplicate")
"""Cost rows where both libraries do the same work (the target: ours costs no more)."""
IMPORT_TARGET = 0.15
LATENCY_TARGET = 1.0


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def markdown(results: dict[str, Any], out: Path) -> str:
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
        "## Summary (the README's table)",
        "",
        *summary(results, out),
        "",
        "![latency](latency.png)",
        "",
        "## Targets",
        "",
        "| target | ours | Powertools | ratio | |",
        "|---|---|---|---|---|",
    ]
    for label, cpu in local["cpu_us"].items():
        ratio = cpu["ratio"]
        lines.append(
            f"| CPU per call ≤ 0.33x, {label} (playback) | {cpu[OURS]:.1f} µs | {cpu[THEIRS]:.1f} µs | "
            f"{_spread(ratio)} | {verdict(ratio['max'] <= CPU_TARGET)} |"
        )
    imports = results["import_ms"]
    ratio = imports[OURS]["median"] / imports[THEIRS]["median"]
    lines.append(
        f"| import beyond boto3 ≤ 0.15x | {imports[OURS]['median']:.2f} ms | {imports[THEIRS]['median']:.2f} ms | "
        f"{ratio:.2f} | {verdict(ratio <= IMPORT_TARGET)} |"
    )
    for scenario in SCENARIOS:
        measured = local["latency"][scenario.name]
        for q in ("p50", "p99") if scenario.name in P99_TARGETED else ("p50",):
            spread = measured[f"ratio_{q}"]
            lines.append(
                f"| latency {q} ≤ 1.0x, {scenario.name} | {measured[f'{OURS} {q}']:.2f} ms | "
                f"{measured[f'{THEIRS} {q}']:.2f} ms | {_spread(spread)} | {verdict(spread['max'] <= LATENCY_TARGET)} |"
            )
    if "cost" in local:
        for name in SAME_WORK:
            row = local["cost"]["rows"][name]
            ours, theirs = row[OURS]["dollars_per_million"], row[THEIRS]["dollars_per_million"]
            lines.append(
                f"| cost ≤ Powertools, {name} | ${ours:.3f} | ${theirs:.3f} | {ours / theirs:.2f} | "
                f"{verdict(ours <= theirs)} |"
            )
    handler = {label: cpu.get(HANDLER) for label, cpu in local["cpu_us"].items()}
    lines += [
        "",
        "CPU: what each library adds to a call, timed on a playback of its own answers recorded on DynamoDB Local",
        "(bench/playback.py: each library builds its requests and reads the real answers, refused conditions",
        "included, and does none of botocore's work), after subtracting the undecorated handler's own CPU ("
        + ", ".join(f"{label} {value:.1f} µs" for label, value in handler.items() if value is not None)
        + f"); {settings.get('cpu_runs', 7)} runs of {settings.get('cpu_calls', 4000)} calls per library, in blocks "
        "of 50 interleaved in random order; the ratio is the median of the runs, the runs' lowest and highest in",
        "brackets, and a target counts as met only when every run meets it. A plain key reads `order_id` alone; with",
        "the fingerprint both libraries also hash the whole body. Where the time goes: [profile.md](profile.md).",
        "",
        "![cpu](cpu.png)",
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
    if "gc" in local:
        lines += gc_table(local["gc"])
    lines += latency_table(
        "moto server (labelled: moto parses every expression in Python, so a longer condition costs far more there "
        "than on DynamoDB)",
        moto["latency"],
        1,
        settings["moto_calls"],
    )
    if "cost" in local:
        lines += cost_section(local["cost"])
    lines += [
        "## Cold start",
        "",
        *_init_duration(init_duration(out)),
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


GUARANTEES = {
    "payment + business write": "ours commits the charge and the completion in one transaction, fenced by the "
    "owner token: the charge lands exactly once or not at all (Powertools writes it on its own, and a crash "
    "between the charge and the completion charges again on the retry). A transaction bills 2 units an item",
    "payment, ours optimistic": "the same exactly-once commit, without a claim: one transaction",
    "60 s function, lease renewal": "ours renews a short lease every lease/3 (issue 13), so a crashed "
    "execution frees its key within one lease (20 s) instead of after the whole invocation's time; "
    "Powertools takes one lease for the invocation and renews nothing",
}
"""What ours buys where it costs more than Powertools."""


def summary(results: dict[str, Any], out: Path) -> list[str]:
    """The comparison in a dozen rows, each with its spread: what README.md quotes."""
    local = results["dynamodb_local"]
    cpu, latency, imports = local["cpu_us"], local["latency"], results["import_ms"]

    def cpu_row(keying: str) -> str:
        first, dup = cpu[f"first execution, {keying}"], cpu[f"duplicate, {keying}"]
        met = " / ".join(verdict(c["ratio"]["max"] <= CPU_TARGET) for c in (first, dup))
        return (
            f"| CPU per call, {keying}: first execution / duplicate | {first[OURS]:.1f} / {dup[OURS]:.1f} µs | "
            f"{first[THEIRS]:.1f} / {dup[THEIRS]:.1f} µs | {_spread(first['ratio'])} / {_spread(dup['ratio'])} | "
            f"≤ 0.33x in every run: {met} |"
        )

    def latency_row(q: str) -> str:
        rows = [latency[name] for name in P99_TARGETED]
        met = " / ".join(verdict(r[f"ratio_{q}"]["max"] <= LATENCY_TARGET) for r in rows)
        return (
            f"| latency {q}, DynamoDB Local: first execution / duplicate / payment | "
            + " / ".join(f"{r[f'{OURS} {q}']:.2f}" for r in rows)
            + " ms | "
            + " / ".join(f"{r[f'{THEIRS} {q}']:.2f}" for r in rows)
            + " ms | "
            + " / ".join(_spread(r[f"ratio_{q}"]) for r in rows)
            + f" | ≤ 1.0x in every run: {met} |"
        )

    lines = [
        "| | ours | Powertools | ratio, median (spread of runs) | target |",
        "|---|---|---|---|---|",
        cpu_row("plain key"),
        cpu_row("key + fingerprint"),
        latency_row("p50"),
        latency_row("p99"),
    ]
    control = latency.get(CONTROL)
    if control is not None:
        lines.append(
            f"| the same, Powertools against itself (noise floor): p50 / p99 | | | {_spread(control['ratio_p50'])} / "
            f"{_spread(control['ratio_p99'])} | |"
        )
    if "cost" in local:
        rows = local["cost"]["rows"]
        same = [rows[name] for name in SAME_WORK]
        extra = [rows["payment + business write"], rows[LONG_ROW]]
        same_verdict = " / ".join(
            verdict(r[OURS]["dollars_per_million"] <= r[THEIRS]["dollars_per_million"]) for r in same
        )
        lines += [
            _dollar_row(
                "DynamoDB $ per million calls (on-demand, us-east-1): first execution / duplicate",
                same,
                f"≤ Powertools: {same_verdict}",
            ),
            _dollar_row(
                "$ per million calls: payment (exactly-once commit) / 60 s function (lease renewal)",
                extra,
                "not the same work: what the guarantee costs",
            ),
            f"| record size, same call and result | {local['cost']['record_bytes'][OURS]['bytes']} B | "
            f"{local['cost']['record_bytes'][THEIRS]['bytes']} B | | both under 1 KB: 1 WRU a write |",
        ]
    ratio = imports[OURS]["median"] / imports[THEIRS]["median"]
    lines.append(
        f"| import beyond boto3 | {imports[OURS]['median']:.1f} ms | {imports[THEIRS]['median']:.1f} ms | {ratio:.2f} "
        f"({imports[OURS]['min']:.1f}-{imports[OURS]['max']:.1f} / {imports[THEIRS]['min']:.1f}-"
        f"{imports[THEIRS]['max']:.1f} ms) | ≤ 0.15x: {verdict(ratio <= IMPORT_TARGET)} |"
    )
    init = init_duration(out)
    if init is None:
        lines.append("| Init Duration, real Lambda runtime (issue 14) | not measured yet | not measured yet | | |")
    else:
        stats, paired = init["stats"], init["paired_ratio"]
        lines.append(
            f"| Init Duration, real Lambda runtime (issue 14) | {stats['Ours']['median']:.0f} ms | "
            f"{stats['Powertools']['median']:.0f} ms | {paired['median']:.2f} (p25-p75 {paired['p25']:.2f}-"
            f"{paired['p75']:.2f}) | |"
        )
    return lines


def gc_table(collections: dict[str, Any]) -> list[str]:
    """Garbage collections inside each library's calls during the DynamoDB Local latency runs (a p99 suspect)."""
    lines = [
        "Garbage collections that ran inside each library's calls during these runs (a suspect for p99: a",
        "collection pauses the call it lands in), per 1000 calls, and their total milliseconds:",
        "",
        "| scenario | ours: per 1000 calls | ours: ms | Powertools: per 1000 calls | Powertools: ms |",
        "|---|---|---|---|---|",
    ]
    for name, found in collections.items():
        ours, theirs = found[OURS], found[THEIRS]
        lines.append(
            f"| {name} | {1000 * ours['collections'] / ours['calls']:.0f} | {ours['ms']:.1f} | "
            f"{1000 * theirs['collections'] / theirs['calls']:.0f} | {theirs['ms']:.1f} |"
        )
    return [*lines, ""]


def cost_section(cost: dict[str, Any]) -> list[str]:
    prices = cost["prices"]
    lines = [
        "## Cost: capacity units and dollars per call, DynamoDB Local",
        "",
        "Every call both libraries make asks for `ReturnConsumedCapacity=TOTAL` (a botocore hook on the shared",
        "client); a refused conditional write reports nothing but is billed as a write of the larger of the stored",
        "and the sent item, so it is counted from the item sizes (marked *counted*). Dollars per million calls at",
        f"{prices['region']} {prices['mode']} prices: ${prices['write_per_million']} per million write request",
        f"units, ${prices['read_per_million']} per million read request units (as of {prices['as_of']}: "
        f"{prices['source']}). Units do not depend on the machine's load: these rows are exact.",
        "",
        "| call | ours: WRU / RRU | Powertools: WRU / RRU | ours $/M calls | Powertools $/M calls | ours' calls | "
        "Powertools' calls |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in cost["rows"].items():
        ours, theirs = row[OURS], row[THEIRS]
        lines.append(
            f"| {name} | {ours['write']:g} / {ours['read']:g} | {theirs['write']:g} / {theirs['read']:g} | "
            f"{ours['dollars_per_million']:.3f} | {theirs['dollars_per_million']:.3f} | {_calls(ours)} | "
            f"{_calls(theirs)} |"
        )
    sizes = cost["record_bytes"]
    lines += [
        "",
        f"Where both do the same work ({', '.join(SAME_WORK)}) ours costs the same as Powertools. Where ours costs "
        "more, it buys a guarantee:",
        "",
        *(
            f"- **{name}** (+{row[OURS]['dollars_per_million'] - row[THEIRS]['dollars_per_million']:.3f} $/M calls): "
            f"{GUARANTEES.get(name, '')}."
            for name, row in cost["rows"].items()
            if row[OURS]["dollars_per_million"] > row[THEIRS]["dollars_per_million"]
        ),
        "",
        _long_row_note(cost),
        "",
        f"Record size for the same call (same key, body and result), as DynamoDB counts it: ours "
        f"{sizes[OURS]['bytes']} bytes ({len(sizes[OURS]['attributes'])} attributes), Powertools "
        f"{sizes[THEIRS]['bytes']} bytes ({len(sizes[THEIRS]['attributes'])} attributes). A write is billed per KB "
        "started, so both records cost 1 WRU until the stored result nears 1 KB; ours reaches the next unit "
        f"{sizes[OURS]['bytes'] - sizes[THEIRS]['bytes']} bytes of result sooner. Ours keeps the key, owner and",
        "timestamps, and once there are any, the attempts past the first and the step results, which a take-over,",
        "the fenced commit and the `lambda-idempotency` CLI read.",
        "",
        "![cost](cost.png)",
        "",
    ]
    return lines


LONG_ROW = "60 s function, lease renewal"


def _long_row_note(cost: dict[str, Any]) -> str:
    renewals = cost["rows"][LONG_ROW][OURS].get("renewals", 0)
    one = cost["renewal"]["write"]
    if cost.get("long_run_measured"):
        return (
            f"The 60 s row is run for real at 1/100 scale (a 0.6 s lease renewed every 0.2 s, over 1.8 s: the same "
            f"nine periods as 60 s under the default 20 s lease): {renewals} renewals were sent, {one:g} WRU each "
            "as DynamoDB Local reports it."
        )
    return (
        f"The 60 s row adds {renewals} renewals (one every lease/3 of a 20 s lease) at {one:g} WRU each, measured on "
        "DynamoDB Local for one renewal `UpdateItem`; the count comes from the renewal period, not from a run (the "
        "renewal of issue 13 is not in this build)."
    )


def _calls(units: dict[str, Any]) -> str:
    return ", ".join(c.replace(" (refused, counted)", " (refused, *counted*)") for c in units["calls"])


INIT_DURATION = "cold-start-rie.json"
"""Issue 14's measurement of Init Duration on the real Lambda runtime (`make bench-cold-start`), beside this page."""


def init_duration(out: Path) -> dict[str, Any] | None:
    """Issue 14's Init Duration figures, when its file is in the page's folder."""
    import json

    found = out / INIT_DURATION
    if not found.exists():
        return None
    data: dict[str, Any] = json.loads(found.read_text())
    return data


def _init_duration(init: dict[str, Any] | None) -> list[str]:
    """The real runtime's Init Duration (issue 14): its medians, quartiles and the paired ratio."""
    if not init:
        return [
            "**Init Duration on the real Lambda runtime: not measured yet** (issue 14's `make bench-cold-start` writes",
            f"`{INIT_DURATION}` beside this page; the row fills in from it).",
            "",
        ]
    stats, ratio = init["stats"], init["paired_ratio"]
    return [
        f"Init Duration on the Lambda runtime (RIE's `INIT REPORT`, {init['runs']} cold starts each, "
        "[cold-start-rie.md](cold-start-rie.md)): ours "
        f"{stats['Ours']['median']:.0f} ms (p25-p75 {stats['Ours']['p25']:.0f}-{stats['Ours']['p75']:.0f}), "
        f"Powertools {stats['Powertools']['median']:.0f} ms ({stats['Powertools']['p25']:.0f}-"
        f"{stats['Powertools']['p75']:.0f}), no idempotency {stats['Bare']['median']:.0f} ms; paired ratio "
        f"{ratio['median']:.2f}x (p25-p75 {ratio['p25']:.2f}-{ratio['p75']:.2f}x). A cold start is dominated by",
        "the runtime's own start; the import cost below is what each library adds to it.",
        "",
    ]


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
    control = latency.get(CONTROL)
    if control is not None:
        lines += [
            "",
            f"The noise floor ({CONTROL}: two identical Powertools handlers in the same interleaved pairs, so every",
            f"difference is the machine's): ratio p50 {_spread(control['ratio_p50'])}, ratio p99 "
            f"{_spread(control['ratio_p99'])}. A ratio inside that spread is no difference at all.",
        ]
    return [*lines, ""]


def _spread(ratio: dict[str, float]) -> str:
    if ratio["min"] == ratio["max"]:
        return f"{ratio['median']:.2f}"
    return f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})"


COLOURS = {OURS: "#2a7ab9", THEIRS: "#b0b0b0"}
WIDTH = 0.38


def plot(results: dict[str, Any], out: Path) -> None:
    """latency.png (p50 per scenario), cpu.png (CPU per call per case) and cost.png (dollars per million calls)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    local = results["dynamodb_local"]
    latency = local["latency"]
    names = [s.name for s in SCENARIOS]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for offset, name in ((-WIDTH / 2, OURS), (WIDTH / 2, THEIRS)):
        medians = [latency[n][f"{name} p50"] for n in names]
        lows = [m - min(r[name]["p50"] for r in latency[n]["runs"]) for m, n in zip(medians, names, strict=True)]
        highs = [max(r[name]["p50"] for r in latency[n]["runs"]) - m for m, n in zip(medians, names, strict=True)]
        axis.bar([i + offset for i in range(len(names))], medians, WIDTH, label=name, color=COLOURS[name],
                 yerr=[lows, highs], capsize=3)  # fmt: skip
    axis.set_xticks(range(len(names)), [_wrap(n) for n in names])
    axis.set_ylabel("p50 latency, ms (DynamoDB Local)")
    axis.set_title("End-to-end latency per call (bars: spread of runs)")
    axis.legend()
    _save(figure, out / "latency.png")

    cpu = local["cpu_us"]
    labels = list(cpu)
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for offset, name in ((-WIDTH / 2, OURS), (WIDTH / 2, THEIRS)):
        values = [cpu[label][name] for label in labels]
        runs = [cpu[label]["runs"][name] for label in labels]
        errors = [[v - min(r) for v, r in zip(values, runs, strict=True)],
                  [max(r) - v for v, r in zip(values, runs, strict=True)]]  # fmt: skip
        axis.bar([i + offset for i in range(len(labels))], values, WIDTH, label=name, color=COLOURS[name],
                 yerr=errors, capsize=3)  # fmt: skip
    for i, label in enumerate(labels):
        ratio = cpu[label]["ratio"]
        axis.annotate(f"{ratio['median']:.2f}x\n({ratio['min']:.2f}-{ratio['max']:.2f})",
                      (i - WIDTH / 2, cpu[label][OURS]), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 4), textcoords="offset points")  # fmt: skip
    axis.set_xticks(range(len(labels)), [label.replace(", ", ",\n") for label in labels])
    axis.set_ylabel("CPU per call, µs (recorded-answer playback)")
    axis.set_title("The decorator's own CPU (label: ours/Powertools, spread of runs; target ≤ 0.33x)")
    axis.legend()
    _save(figure, out / "cpu.png")

    if "cost" in local:
        rows = local["cost"]["rows"]
        rows_names = list(rows)
        figure, axis = plt.subplots(figsize=(9, 4.5))
        for offset, name in ((-WIDTH / 2, OURS), (WIDTH / 2, THEIRS)):
            values = [rows[n][name]["dollars_per_million"] for n in rows_names]
            bars = axis.bar([i + offset for i in range(len(rows_names))], values, WIDTH, label=name,
                            color=COLOURS[name])  # fmt: skip
            axis.bar_label(bars, fmt="$%.2f", fontsize=8)
        axis.set_xticks(range(len(rows_names)), [_wrap(n) for n in rows_names])
        prices = local["cost"]["prices"]
        axis.set_ylabel(f"$ per million calls ({prices['region']} on-demand)")
        axis.set_title("DynamoDB cost per call (capacity units measured on DynamoDB Local)")
        axis.legend()
        _save(figure, out / "cost.png")


def _wrap(name: str) -> str:
    return name.replace(" (", "\n(").replace(" + ", "\n+ ").replace(", ", ",\n")


def _save(figure: Any, target: Path) -> None:
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(figure)


def _dollar_row(label: str, rows: list[dict[str, Any]], target: str) -> str:
    """A summary row of dollars per million calls: ours, Powertools', their ratios, then the target cell."""

    def cells(value: Callable[[dict[str, Any]], str]) -> str:
        return " / ".join(value(r) for r in rows)

    ours = cells(lambda r: f"{r[OURS]['dollars_per_million']:.3f}")
    theirs = cells(lambda r: f"{r[THEIRS]['dollars_per_million']:.3f}")
    ratio = cells(lambda r: f"{r[OURS]['dollars_per_million'] / r[THEIRS]['dollars_per_million']:.2f}")
    return f"| {label} | {ours} | {theirs} | {ratio} | {target} |"
