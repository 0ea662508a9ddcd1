"""What a cold start pays: import time beyond boto3, and the layer's size as `sam build` produces it.

.venv/bin/python bench/cold_start.py [--runs N]      # the import costs alone, in a few seconds
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from contenders import OURS, THEIRS

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = {
    OURS: "from lambda_idempotency import DynamoDBStore, idempotent",
    THEIRS: "from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, "
    "idempotent",
}
POWERTOOLS_REQUIREMENT = "aws-lambda-powertools==3.37.0"
DECORATE = "handler = contenders.BUILDERS[{name!r}](object(), 'bench', contenders.SCENARIOS[0])"
"""What a handler module runs at init besides its imports: make the store (on a client made earlier) and
decorate the handler."""


def import_ms_beyond_boto3(statement: str, env: dict[str, str] | None = None, setup: str = "") -> float:
    """Milliseconds ``statement`` takes in a fresh interpreter that has already imported boto3 (and ``setup``).

    Timed with a clock around the statement, not summed from ``-X importtime``: that flag reports only modules
    loaded by an ``import`` statement, and this library loads its modules through ``importlib`` on first use
    (``python -X importtime`` is still the tool to see which module costs what).
    """
    timed = f"t = time.perf_counter()\n{statement}\nprint((time.perf_counter() - t) * 1000)"
    timer = f"import boto3, time\n{setup}\n{timed}"
    done = subprocess.run(
        [sys.executable, "-c", timer], capture_output=True, text=True, check=True, env=env, cwd=Path(__file__).parent
    )
    return float(done.stdout)


def compile_ours() -> None:
    """Write our bytecode as an installed wheel has it (pip compiles Powertools' on install)."""
    compileall.compile_dir(ROOT / "layers" / "idempotency" / "lambda_idempotency", quiet=1)


FROM_SOURCE = f"{OURS}, no .pyc"
"""Our layer as `sam build` ships it: source only, and Lambda cannot write bytecode under /opt."""
DECORATED = " + store + decorate"
"""Suffix of the cases that also build the store and decorate the handler, as a handler module's init does."""


def import_costs(runs: int) -> dict[str, dict[str, float]]:
    """Median and spread over ``runs`` fresh processes per case, alternating.

    Besides the import alone (the target), each library's import followed by building its store and decorating
    the benchmark's handler: our package loads its engine when a function is decorated, so the import alone
    does not show everything a cold start pays.
    """
    compile_ours()
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="no-pyc-") as empty:
        no_bytecode = {**os.environ, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        for _ in range(runs):
            for name, statement in IMPORTS.items():
                samples.setdefault(name, []).append(import_ms_beyond_boto3(statement))
                decorate = DECORATE.format(name=name)
                cost = import_ms_beyond_boto3(decorate, setup="import contenders")
                samples.setdefault(name + DECORATED, []).append(cost)
            samples.setdefault(FROM_SOURCE, []).append(import_ms_beyond_boto3(IMPORTS[OURS], no_bytecode))
    return {
        name: {"median": statistics.median(values), "min": min(values), "max": max(values)}
        for name, values in samples.items()
    }


LAYER_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  IdempotencyLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: {ours}
      CompatibleRuntimes: [python3.12]
    Metadata:
      BuildMethod: python3.12
  PowertoolsLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: {theirs}
      CompatibleRuntimes: [python3.12]
    Metadata:
      BuildMethod: python3.12
"""


TEMPLATE_LAYER = "template.yaml's IdempotencyLayer"
"""The layer the project deploys: our package with its bytecode, plus Powertools for the example functions."""


def layer_sizes(sam: Path) -> dict[str, dict[str, int]] | None:
    """Bytes on disk and zipped of each layer as ``sam build`` builds it; None when sam is not installed.

    Ours is the ``lambda_idempotency`` package as a clean checkout has it (no bytecode) and nothing else.
    Powertools' is a layer whose requirements.txt holds aws-lambda-powertools (pip compiles its bytecode), built by
    the same command. `TEMPLATE_LAYER` is what template.yaml deploys: `layers/idempotency/Makefile` adds Powertools
    (for the example functions) and the bytecode of both.
    """
    if not sam.exists():
        return None
    with tempfile.TemporaryDirectory(prefix="layer-size-") as folder:
        work = Path(folder)
        ours = work / "idempotency"
        package = ROOT / "layers" / "idempotency" / "lambda_idempotency"
        shutil.copytree(package, ours / package.name, ignore=shutil.ignore_patterns("__pycache__"))
        (ours / "requirements.txt").write_text("")
        theirs = work / "powertools"
        theirs.mkdir()
        (theirs / "requirements.txt").write_text(POWERTOOLS_REQUIREMENT + "\n")
        template = work / "template.yaml"
        template.write_text(LAYER_TEMPLATE.format(ours=ours, theirs=theirs))
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.12.1")}
        subprocess.run(
            [str(sam), "build", "--template-file", str(template), "--build-dir", str(work / "build")],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(  # the project's own layer, exactly as template.yaml builds it (Makefile, with Powertools)
            [str(sam), "build", "IdempotencyLayer", "--template-file", str(ROOT / "template.yaml"),
             "--build-dir", str(work / "project"), "--cache-dir", str(work / "cache")],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        found = {}
        for name, built in (
            (OURS, work / "build" / "IdempotencyLayer"),
            (THEIRS, work / "build" / "PowertoolsLayer"),
            (TEMPLATE_LAYER, work / "project" / "IdempotencyLayer"),
        ):
            found[name] = {"bytes": _bytes(built), "zipped": _zipped(built, work / "layer.zip")}
        return found


def _bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _zipped(folder: Path, target: Path) -> int:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    size = target.stat().st_size
    target.unlink()
    return size


def sam_on_path() -> Path:
    """The project's own SAM CLI (``make .venv-sam``), else whatever ``sam`` is on PATH."""
    local = ROOT / ".venv-sam" / "bin" / "sam"
    return local if local.exists() else Path(shutil.which("sam") or local)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="import costs beyond boto3 (medians over fresh processes)")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--layers", action="store_true", help="print the layer sizes (sam build) instead")
    options = parser.parse_args()
    if options.layers:
        print(json.dumps(layer_sizes(sam_on_path()), indent=2))
        sys.exit(0)
    costs = import_costs(options.runs)
    print(json.dumps(costs, indent=2))
    print(f"ratio ours/Powertools: {costs[OURS]['median'] / costs[THEIRS]['median']:.3f}", file=sys.stderr)
