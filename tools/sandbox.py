"""One Lambda sandbox on this machine: AWS's Runtime Interface Emulator (RIE) running ``python -m awslambdaric``.

RIE is the emulator `sam local` puts in its containers; it ships in the aws-sam-cli wheel, so no Docker is needed.
It serves the Invoke API on its own 127.0.0.1 port (and the Runtime API the runtime polls on another), starts the
runtime process at the first invoke (a cold start, counted against that invoke's Timeout, unlike Lambda), gives the
handler a context whose remaining time runs from the invoke's deadline, and at the Timeout kills the runtime process
in the middle of the invocation and starts a new one at the next invoke. Like a Lambda sandbox, it serves one invoke
at a time: `tools.runtime_pool` keeps as many sandboxes as there are concurrent invokes.

Its output (START/END/REPORT lines, the function's own logs, RIE's ``(rapid)`` lines) is kept, and echoed if asked.
RIE's REPORT line prints an ``Init Duration`` that does not cover the runtime's start (a fraction of a millisecond
even for a handler that sleeps at import); its ``INIT REPORT(durationMs: ...)`` line does, from the runtime
process's start to its first request for work: that is the figure `init_durations` gives.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lambda_idempotency.testing import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
STARTUP_TIMEOUT_S = 30.0
INIT_ALLOWANCE_S = 60.0
"""Time an invoke may take beyond the function's Timeout before the caller gives up on RIE (a cold start on a
loaded machine; RIE counts the runtime's start against the first invoke's Timeout, Lambda does not)."""
_INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
_HOST_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


class RuntimeConfigurationError(RuntimeError):
    """The local runtime cannot run a function as the template declares it (missing RIE, foreign architecture)."""


class FunctionError(Exception):
    """The invocation failed: the handler raised (``error_type`` is its exception's), or it timed out."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message

    @property
    def timed_out(self) -> bool:
        return self.error_type == "Sandbox.Timedout"


def rie_binary(architecture: str, sam_venv: Path = ROOT / ".venv-sam") -> Path:
    """RIE for ``architecture`` (the template's Architectures) from the pinned aws-sam-cli of ``sam_venv``."""
    host = _HOST_ARCHITECTURES.get(platform.machine().lower(), platform.machine())
    if architecture != host:
        raise RuntimeConfigurationError(
            f"the function's Architectures is {architecture}, this machine is {host}: run it on an {architecture} "
            "machine, or set Architectures to match (Lambda runs each on its own hardware)"
        )
    found = sorted(sam_venv.glob(f"lib/python*/site-packages/samcli/local/rapid/aws-lambda-rie-{architecture}"))
    if not found:
        raise RuntimeConfigurationError(f"no aws-lambda-rie-{architecture} in {sam_venv}: run `make setup`")
    return found[-1]


class Sandbox:
    """An RIE process on a free 127.0.0.1 port, running ``command`` (the runtime) with ``environment`` in ``cwd``."""

    def __init__(
        self,
        *,
        name: str,
        rie: Path,
        command: list[str],
        environment: Mapping[str, str],
        cwd: Path,
        timeout_s: float,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.echo = echo
        self.lines: deque[str] = deque(maxlen=5000)
        self.port = free_port()
        runtime_api = f"127.0.0.1:{free_port()}"  # RIE's default, 127.0.0.1:9001, is one per machine
        self.process = subprocess.Popen(
            [
                str(rie),
                "--runtime-interface-emulator-address",
                f"127.0.0.1:{self.port}",
                "--runtime-api-address",
                runtime_api,
                *command,
            ],
            cwd=cwd,
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-log", daemon=True)
        self._reader.start()
        try:
            wait_for_port(self.port, self.process, STARTUP_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def invoke(self, event: Any) -> Any:
        """The handler's result for ``event``; `FunctionError` if it raised or timed out."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{INVOKE_PATH}",
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s + INIT_ALLOWANCE_S) as response:
                body = response.read().decode()
                function_error = response.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as error:  # RIE's 502: the runtime process exited or failed its init
            detail = error.read().decode(errors="replace") or error.reason
            raise FunctionError(
                f"Runtime.HTTP{error.code}", f"{detail}; last output: {list(self.lines)[-5:]}"
            ) from None
        if body.startswith("Task timed out after"):
            raise FunctionError("Sandbox.Timedout", body)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            raise FunctionError("Runtime.InvalidResponse", body) from None
        if function_error or _is_error(payload):
            details = payload if isinstance(payload, dict) else {}
            raise FunctionError(str(details.get("errorType", "Unhandled")), str(details.get("errorMessage", body)))
        return payload

    def init_durations(self, at_least: int = 0, timeout_s: float = 10) -> list[float]:
        """Milliseconds of each runtime start so far (one per cold start: the first, and after every timeout).

        The log is read by a thread, so a line may arrive after the invoke's answer: wait up to ``timeout_s`` for
        ``at_least`` of them."""
        self.wait_for_output("INIT REPORT", at_least, timeout_s)
        return [float(m.group(1)) for line in list(self.lines) if (m := _INIT_REPORT.search(line))]

    def wait_for_output(self, text: str, count: int = 1, timeout_s: float = 10) -> list[str]:
        """The output lines containing ``text``, once there are ``count`` of them (or ``timeout_s`` has passed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [line for line in list(self.lines) if text in line]
            if len(found) >= count or time.monotonic() > deadline or not self._reader.is_alive():
                return found
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop RIE; it kills its runtime process first (SIGKILL, as when Lambda reclaims a sandbox)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(timeout=5)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if self.echo is not None and _worth_echoing(line):
                self.echo(f"[{self.name}] {line}")


def _is_error(payload: Any) -> bool:
    """awslambdaric's answer for an unhandled exception: ``errorMessage`` and ``errorType``, with ``stackTrace``."""
    return isinstance(payload, dict) and {"errorMessage", "errorType", "stackTrace"} <= payload.keys()


def _worth_echoing(line: str) -> bool:
    """The function's output and START/END/REPORT; of RIE's own lines, warnings, errors and the init report."""
    if "(rapid)" not in line:
        return True
    return "[WARNING]" in line or "[ERROR]" in line or "INIT REPORT" in line
