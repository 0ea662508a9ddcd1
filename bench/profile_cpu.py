"""Where a call's CPU goes: each CPU case of the bench under cProfile, on a playback of recorded answers.

    .venv/bin/python bench/profile_cpu.py [--library lambda-idempotency|Powertools] [--calls N] [--top N]
    .venv/bin/python bench/profile_cpu.py --answers /tmp/answers.json   # record once, then profile again and again

Records each library's answers on DynamoDB Local (or reads them from ``--answers`` when the file exists, and
writes them there when it does not), then prints the CPU per call of both libraries and the profile of one.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import uuid
from pathlib import Path
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1", POWERTOOLS_DEV="false"
)

import measure
from contenders import OURS, THEIRS, create_tables


def recorded(answers: Path | None) -> dict[str, Any]:
    if answers is not None and answers.exists():
        found: dict[str, Any] = json.loads(answers.read_text())
        return found
    from lambda_idempotency.testing import dynamodb_local
    from run import client_for

    with dynamodb_local() as endpoint:
        client = client_for(endpoint)
        found = measure.record_answers(client, create_tables(client, f"profile-{uuid.uuid4().hex[:8]}"))
    if answers is not None:
        answers.write_text(json.dumps(found, indent=1))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default=OURS, choices=(OURS, THEIRS))
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile (0: the CPU table alone)")
    parser.add_argument(
        "--answers", type=Path, help="a recording to reuse (stale after an hour: Powertools' records expire)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the CPU table and the profiles here, as Markdown")
    args = parser.parse_args()
    answers = recorded(args.answers)
    cpu = measure.cpu_per_call(answers, calls=args.calls // 5, repeats=5)
    lines = ["| case | ours | Powertools | ratio (spread) |", "|---|---|---|---|"]
    for case, row in cpu.items():
        ratio = row["ratio"]
        print(
            f"{case:35} ours {row[OURS]:6.1f} µs  Powertools {row[THEIRS]:6.1f} µs  "
            f"ratio {ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})"
        )
        lines.append(
            f"| {case} | {row[OURS]:.1f} µs | {row[THEIRS]:.1f} µs | "
            f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f}) |"
        )
    for scenario in measure.CPU_CASES if args.top else ():
        handler = measure.playback_handlers(scenario, answers[scenario.name])[args.library]
        events = measure._events(scenario, answers[scenario.name][args.library]["event"], args.calls)
        profile = cProfile.Profile()
        profile.enable()
        for payload in events:
            handler(payload, measure.CONTEXT)
        profile.disable()
        print(f"\n== {args.library}: {scenario.name}, {args.calls} calls (tottime and cumtime in s per {args.calls})")
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        lines += ["", f"**{scenario.name}**", "", *top_functions(stats, args.calls, args.top)]
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


def top_functions(stats: pstats.Stats, calls: int, top: int) -> list[str]:
    """The ``top`` functions by own time, as shares of the whole call (the profiler's own cost inflates each function
    call alike, and shares hold under a neighbour's load where microseconds do not)."""
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    total = sum(v[2] for _, v in rows)
    lines = [
        f"{sum(v[1] for _, v in rows) / calls:.0f} function calls per decorated call",
        "",
        "| function | calls per call | own time | with callees |",
        "|---|---|---|---|",
    ]
    for (path, line, name), (_, ncalls, own, cumulative, _) in rows[:top]:
        where = f"{Path(path).name}:{line} {name}" if line else name
        where = where.replace("|", "\\|").replace("<", "&lt;")
        lines.append(f"| `{where}` | {ncalls / calls:g} | {own / total:.1%} | {cumulative / total:.1%} |")
    return lines


if __name__ == "__main__":
    main()
