"""The SAM CLI of .venv-sam (made by `make setup`), as the template and local-runtime tests run it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAM_BIN = ROOT / ".venv-sam" / "bin"


def sam_tool(*args: str, cwd: Path = ROOT, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a tool of .venv-sam with python3.12 on PATH (PYENV_VERSION=3.12.1) and no telemetry."""
    env = {**os.environ, "PYENV_VERSION": "3.12.1", "SAM_CLI_TELEMETRY": "0"}
    return subprocess.run(
        [str(SAM_BIN / args[0]), *args[1:]],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
