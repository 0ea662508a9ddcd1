"""The lease protocol's spin model (tests/model/lease.pml, docs/lease-model.md), checked exhaustively by `make test`.

spin turns the model into a C verifier (pan.c); the C compiler builds it; the verifier explores every state up to
the model's time horizon and reports each assertion that fails. The model must pass, and each mutant (the fence
removed; the take-over's lease condition removed) must fail, or the model would prove nothing.
`make test` installs spin (Debian package ``spin``) when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

MODEL = Path(__file__).parent / "model" / "lease.pml"
HORIZON = int(os.environ.get("LEASE_MODEL_HORIZON", "7"))
"""Ticks of time explored (`make test`: 7, a lease and a half past a crash; more takes minutes)."""
SAFE_VIOLATED = "assert((((status==1)&&(owner==(i+1)))&&!"


def verify(tmp_path: Path, *defines: str) -> str:
    """Build the verifier of the model (with ``defines``) in ``tmp_path``, run it exhaustively, return its report."""
    if shutil.which("spin") is None or shutil.which("cc") is None:
        pytest.fail("spin and a C compiler are needed: `make test` installs them (apt-get install spin gcc)")
    model = tmp_path / "lease.pml"
    shutil.copy(MODEL, model)
    flags = [f"-D{d}" for d in (f"HORIZON={HORIZON}", *defines)]
    subprocess.run(["spin", *flags, "-a", model.name], cwd=tmp_path, check=True, capture_output=True)
    optimise = "-O0" if defines else "-O2"  # a mutant fails within a few thousand states: compile it quickly
    compile_flags = [optimise, "-DSAFETY", "-DNOBOUNDCHECK", "-DCOLLAPSE"]
    subprocess.run(["cc", *compile_flags, "-o", "pan", "pan.c"], cwd=tmp_path, check=True, capture_output=True)
    # -E: a crashed execution blocks where it stood, and time stops at the horizon: those end states are intended
    run = subprocess.run(["./pan", "-E", "-m200000"], cwd=tmp_path, capture_output=True, text=True, check=False)
    report = run.stdout + run.stderr
    if defines:  # replay the trail: which assertion failed
        trail = subprocess.run(
            ["spin", *flags, "-t", model.name], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        report += trail.stdout + trail.stderr
    print(report)  # the statistics, for `pytest -s` (docs/lease-model.md quotes them)
    return report


def errors(report: str) -> int:
    found = re.search(r"errors: (\d+)", report)
    assert found is not None, report
    return int(found.group(1))


def test_the_lease_protocol_keeps_both_properties_in_every_state(tmp_path: Path) -> None:
    report = verify(tmp_path)
    assert errors(report) == 0, report
    assert "assertion violations\t+" in report  # assertions were checked, not compiled out
    assert "search depth too small" not in report  # every state was reached: the search was exhaustive


@pytest.mark.parametrize("mutant", ["NO_FENCE", "UNCONDITIONAL_TAKE_OVER"])
def test_spin_finds_the_bug_in_a_mutant(tmp_path: Path, mutant: str) -> None:
    report = verify(tmp_path, mutant)
    assert errors(report) == 1, report
    assert SAFE_VIOLATED in report  # the safety property failed: two executions could both hold the key
