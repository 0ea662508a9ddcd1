"""The README quotes the layer sizes the bench measured (issue 12, item 9): each package alone; the deploying page
quotes the layer template.yaml deploys (with Powertools), on disk and zipped, as docs/benchmarks/results.json
records them."""

from __future__ import annotations

import json

from .doc_examples import ROOT

RESULTS = ROOT / "docs" / "benchmarks" / "results.json"


def kib(size: int) -> str:
    return f"{size / 1024:,.0f}"


def test_the_readme_quotes_the_measured_layer_sizes() -> None:
    layer = json.loads(RESULTS.read_text())["layer"]
    ours, theirs = layer["lambda-idempotency"], layer["Powertools"]
    deployed = layer["template.yaml's IdempotencyLayer"]
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    assert f"| {kib(ours['bytes'])} / {kib(ours['zipped'])} KiB |" in readme
    assert f"| {kib(theirs['bytes'])} / {kib(theirs['zipped'])} KiB |" in readme
    deploying = ROOT.joinpath("docs", "deploying.md").read_text(encoding="utf-8")
    assert f"{kib(deployed['bytes'])} KiB on disk, {kib(deployed['zipped'])} KiB zipped" in deploying
    assert deployed["bytes"] > ours["bytes"] + theirs["bytes"] / 2  # it carries Powertools too
    page = ROOT.joinpath("docs", "benchmarks", "README.md").read_text(encoding="utf-8")
    assert (
        f"| template.yaml's IdempotencyLayer | {kib(deployed['bytes'])} KiB | {kib(deployed['zipped'])} KiB |" in page
    )
