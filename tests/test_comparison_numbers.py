"""docs/comparison.md quotes the last bench run, docs/benchmarks/results.json: each number it gives is that run's."""

from __future__ import annotations

import json
from typing import Any

from .doc_examples import ROOT

RESULTS: dict[str, Any] = json.loads((ROOT / "docs" / "benchmarks" / "results.json").read_text(encoding="utf-8"))
RUN = RESULTS["dynamodb_local"]
PAGE = " ".join((ROOT / "docs" / "comparison.md").read_text(encoding="utf-8").split())
"""The page with its line breaks and indents as single spaces."""


def spread(ratio: dict[str, float]) -> str:
    return f"{ratio['min']:.2f}-{ratio['max']:.2f}"


def test_record_sizes_are_the_runs() -> None:
    """The page said 344 against 264 bytes, 80 longer: the run measured Powertools' record at 265."""
    sizes = RUN["cost"]["record_bytes"]
    ours, theirs = sizes["lambda-idempotency"]["bytes"], sizes["Powertools"]["bytes"]
    assert f"a record {ours - theirs} bytes longer ({ours} against {theirs}:" in PAGE


def test_optimistic_payment_latency_is_the_runs() -> None:
    """The page said about 0.57x: the run's median is 0.59x."""
    ratio = RUN["latency"]["payment, ours optimistic"]["ratio_p50"]
    assert f"the payment is about {ratio['median']:.2f}x at p50 ({spread(ratio)})" in PAGE


def test_cpu_ratios_are_the_runs() -> None:
    cpu = RUN["cpu_us"]
    names = ("duplicate, plain key", "duplicate, key + fingerprint")
    duplicates = sorted(cpu[name]["ratio"]["median"] for name in names)
    assert f"every duplicate takes {duplicates[0]:.2f}-{duplicates[-1]:.2f}x of Powertools' CPU" in PAGE
    fingerprinted = cpu["first execution, key + fingerprint"]["ratio"]
    assert f"fingerprinted takes {fingerprinted['median']:.2f}x ({spread(fingerprinted)})" in PAGE
    plain = cpu["first execution, plain key"]["ratio"]
    assert f"misses the 0.33x target at {plain['median']:.2f}x ({spread(plain)})" in PAGE
    first = cpu["first execution, plain key"]
    assert f"Powertools spends about {first['Powertools']:.0f} µs" in PAGE
    assert f"against {first['lambda-idempotency']:.1f} µs" in PAGE


def test_latency_ratios_are_the_runs() -> None:
    latency = RUN["latency"]
    duplicate = latency["duplicate"]
    assert (
        f"p50 {duplicate['ratio_p50']['median']:.2f}x, p99 {duplicate['ratio_p99']['median']:.2f}x, "
        f"{spread(duplicate['ratio_p99'])})" in PAGE
    )
    payment = latency["payment + business write"]
    assert f"({payment['ratio_p50']['median']:.2f}x, {spread(payment['ratio_p50'])})" in PAGE
    assert f"the payment's ({payment['ratio_p99']['median']:.2f}x, {spread(payment['ratio_p99'])})" in PAGE
    first = latency["first execution"]
    runs = ", ".join(f"{run['ratio_p50']:.3f}" for run in first["runs"][:-1])
    assert f"first execution's p50 is {first['ratio_p50']['median']:.2f}x, with runs at {runs} and " in PAGE
    assert f"The first execution's p99 ({first['ratio_p99']['median']:.2f}x, {spread(first['ratio_p99'])})" in PAGE
    control = latency["control: Powertools against itself, first execution"]["ratio_p99"]
    assert f"a noise floor that spread {spread(control)} in the same run" in PAGE


def test_import_times_are_the_runs() -> None:
    ours, theirs = RESULTS["import_ms"]["lambda-idempotency"]["median"], RESULTS["import_ms"]["Powertools"]["median"]
    ratio = ours / theirs
    assert f"{ours:.1f} ms against {theirs:.1f} ms, {ratio:.2f}x ({ratio:.3f})" in PAGE
