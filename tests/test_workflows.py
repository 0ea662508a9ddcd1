"""The GitHub workflows under .github/workflows, read as GitHub runs them (actionlint, in `make lint`, checks their
syntax; these check what they need of the runner)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def steps(workflow: str, job: str) -> list[dict[str, Any]]:
    document = yaml.safe_load((WORKFLOWS / workflow).read_text())
    return list(document["jobs"][job]["steps"])


def apt_packages_make_installs() -> set[str]:
    """What the Makefile's recipes `apt-get install` when a tool is missing (as root: the CI of .ci/run is)."""
    makefile = (ROOT / "Makefile").read_text()
    found = re.findall(r"apt-get install ((?:-\S+ )*)([\w .+-]+?)\)", makefile)
    return {package for _, packages in found for package in packages.split()}


def test_the_test_workflow_installs_with_sudo_what_make_test_would_apt_get_as_root() -> None:
    """`make test` apt-gets spin and gcc for the lease model when they are missing, which works as root only. GitHub's
    runner is not root: its apt-get fails on the lock, and `make test` with it. So the workflow installs them with
    sudo before `make test`, and make finds them."""
    packages = apt_packages_make_installs()
    assert "spin" in packages, packages
    test_steps = steps("test.yml", "test")
    runs = [step.get("run", "") for step in test_steps]
    make_test = runs.index("make test")
    installed = set()
    for run in runs[:make_test]:
        for command in re.findall(r"sudo apt-get install ((?:-\S+ )*)([\w .+-]+)", run):
            installed |= set(command[1].split())
    assert packages <= installed, f"installed before make test: {installed}"
