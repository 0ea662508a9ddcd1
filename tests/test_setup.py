"""The newcomer's setup (issue 12, items 4-6): a `[testing]` extra for `lambda_idempotency.testing`, `make serve`
with nothing but Python, and a Makefile that checks the Python version first and rebuilds a .venv another Python
made. The Makefile is run with `make -n` (what it would do), in a scratch copy where it would change files."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .doc_examples import ROOT, make_environment

TESTING_PAGE = ROOT / "docs" / "testing.md"


def make(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        env=make_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_testing_extra_installs_moto_and_the_testing_page_uses_it() -> None:
    metadata = importlib.metadata.metadata("lambda-idempotency")
    assert "testing" in (metadata.get_all("Provides-Extra") or [])
    requirements = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("moto[server]") and "extra == 'testing'" in r for r in requirements), requirements
    testing_section = TESTING_PAGE.read_text(encoding="utf-8").split("## Local DynamoDB backends", 1)[1]
    assert 'pip install ".[testing]"' in testing_section


def test_make_serve_needs_python_only() -> None:
    """No npm (nor Node, nor Java). The SAM CLI is installed because `make serve` uses it now: `sam build` makes what
    the local Lambda runtime runs, and RIE ships in its wheel; both are Python packages from PyPI."""
    chain = make("-n", "-B", "serve")  # -B: as on a fresh clone, every prerequisite rebuilt
    assert chain.returncode == 0, chain.stderr
    assert "local_api.py" in chain.stdout
    assert not re.search(r"\bnpm\b|node_modules|package\.json", chain.stdout), chain.stdout


def test_a_python_too_old_is_one_line_saying_what_is_needed_and_found() -> None:
    result = make("-n", "demo", "PYTHON_MIN=3.99")  # this Python plays the old one: the check is the same
    assert result.returncode != 0 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    found = ".".join(map(str, sys.version_info[:3]))
    assert f"needs Python >= 3.99; found Python {found}" in line, line

    missing = make("-n", "demo", "PYTHON=no-such-python3")
    assert "needs Python >= 3.11; found no working no-such-python3" in missing.stderr.strip().splitlines()[-1]


def scratch_project(tmp_path: Path) -> Path:
    for name in ("Makefile", "requirements-dev.txt", "pyproject.toml", "requirements-sam.txt", "package.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "check_python.py", tmp_path / "tools")
    return tmp_path


def fake_venv(project: Path, version: str) -> Path:
    venv = project / ".venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text(f"home = /somewhere/bin\nversion = {version}\n")
    (venv / ".installed").touch()
    return venv


def test_a_venv_made_by_another_python_is_rebuilt(tmp_path: Path) -> None:
    project = scratch_project(tmp_path)
    venv = fake_venv(project, "3.10.12")
    result = make("-n", "demo", "DEMO_FLAGS=--in-process", f"PYTHON={sys.executable}", cwd=project)
    assert result.returncode == 0, result.stderr
    assert not venv.exists()
    assert "made by Python 3.10, not" in result.stderr
    assert f"{sys.executable} -m venv .venv" in result.stdout  # rebuilt by the Python asked for


def test_a_venv_made_by_this_python_is_kept(tmp_path: Path) -> None:
    project = scratch_project(tmp_path)
    venv = fake_venv(project, ".".join(map(str, sys.version_info[:3])))
    result = make("-n", "demo", "DEMO_FLAGS=--in-process", f"PYTHON={sys.executable}", cwd=project)
    assert result.returncode == 0, result.stderr
    assert venv.exists() and "-m venv" not in result.stdout


def older_pythons() -> list[str]:
    """Real interpreters older than 3.11 on this machine (pyenv's): the newest and the oldest of them."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for python in pyenv.glob("*/bin/python"):
        parts = python.parent.parent.name.split(".")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            version = (int(parts[0]), int(parts[1]))
            if version < (3, 11):
                found.append((version, str(python)))
    found.sort()
    return sorted({found[0][1], found[-1][1]}) if found else []


def test_a_real_older_python_gets_the_same_one_line() -> None:
    olds = older_pythons()
    if not olds:
        pytest.skip("no Python older than 3.11 on this machine (the PYTHON_MIN test above covers the check)")
    for old in olds:
        result = make("-n", "demo", f"PYTHON={old}")
        (line,) = result.stderr.strip().splitlines()
        assert result.returncode != 0 and "needs Python >= 3.11; found Python " in line, (old, result.stderr)
