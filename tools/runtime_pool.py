"""The template's functions on the local Lambda runtime: a warm pool of sandboxes per function, as Lambda keeps.

Each function runs from `sam build`'s output (``<build>/<FunctionId>``, Lambda's ``/var/task``) with each of its
layers' ``python/`` folder on ``PYTHONPATH`` (Lambda's ``/opt/python``), under the Python 3.12 runtime venv
(``make runtime``: awslambdaric and the boto3 Lambda's image has). A sandbox's environment is the function's own:
the template's variables (resolved as SAM resolves them), the variables Lambda sets (``AWS_LAMBDA_FUNCTION_*``,
``_HANDLER``, ``LAMBDA_TASK_ROOT``...), and from this process only credentials, region and endpoint overrides.
So two functions never see each other's variables.

A sandbox serves one invoke at a time: an invoke takes an idle sandbox or starts one (a cold start), and gives it
back when answered, as sam local's warm containers and Lambda's execution environments do.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tools.sam_template import Function, Template, TemplateError
from tools.sandbox import ROOT, RuntimeConfigurationError, Sandbox, rie_binary

RUNTIME_PYTHON = ROOT / ".venv-runtime" / "bin" / "python"
BUILD_DIR = ROOT / ".aws-sam" / "build"
MAX_SANDBOXES = 32
"""Sandboxes one function may run at once; more concurrent invokes wait for one to be free."""
PASSED_THROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "TZ")
"""What a sandbox takes from this process (as `sam local` passes the shell's credentials and region), besides
``AWS_ENDPOINT_URL*`` (where the local AWS is)."""


class FunctionPool:
    """The warm sandboxes of one function.

    At most ``cold_starts`` sandboxes start at once (the machine's cores): RIE counts a cold start against the
    first invoke's Timeout, where Lambda gives it its own, so 16 runtimes importing at once on 2 cores would time
    out. An invoke waits for whichever comes first, an idle sandbox or a free start.
    """

    def __init__(
        self, function: Function, start_sandbox: Callable[[int], Sandbox], cold_starts: int = os.cpu_count() or 1
    ) -> None:
        self.function = function
        self._start_sandbox = start_sandbox
        self._cold_starts = cold_starts
        self._idle: list[Sandbox] = []
        self._all: list[Sandbox] = []
        self._starting = 0
        self._numbers = itertools.count(1)
        self._changed = threading.Condition()
        self._closed = False

    @contextmanager
    def sandbox(self) -> Iterator[Sandbox]:
        """An idle sandbox, or a new one; it is this caller's alone until the block ends."""
        sandbox, cold = self._take()
        try:
            if sandbox is None:
                sandbox = self._start_sandbox(next(self._numbers))
                with self._changed:
                    self._all.append(sandbox)
            yield sandbox
        finally:
            with self._changed:
                if sandbox is not None:
                    self._idle.append(sandbox)
                self._starting -= cold
                self._changed.notify_all()

    def _take(self) -> tuple[Sandbox | None, int]:
        """(an idle sandbox, 0), or (None, 1) when this caller may start one."""
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.function.logical_id}: the local runtime has stopped")
                while self._idle:
                    sandbox = self._idle.pop()
                    if sandbox.process.poll() is None:
                        return sandbox, 0
                    self._all.remove(sandbox)  # its RIE exited (crashed or killed): replaced by a new one
                if self._starting < self._cold_starts and len(self._all) + self._starting < MAX_SANDBOXES:
                    self._starting += 1
                    return None, 1
                self._changed.wait()

    def invoke(self, event: Any) -> Any:
        with self.sandbox() as sandbox:
            return sandbox.invoke(event)

    @property
    def sandboxes(self) -> list[Sandbox]:
        with self._changed:
            return list(self._all)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            sandboxes, self._all, self._idle = self._all, [], []
            self._changed.notify_all()
        for sandbox in sandboxes:
            sandbox.stop()


class LocalRuntime:
    """Every function of ``template`` on RIE; a context manager that stops every sandbox it started on exit."""

    def __init__(
        self,
        template: Template,
        *,
        build_dir: Path = BUILD_DIR,
        python: Path = RUNTIME_PYTHON,
        echo: Callable[[str], None] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not python.exists():
            raise RuntimeConfigurationError(f"no runtime Python at {python}: run `make runtime`")
        self.build_dir = build_dir
        self.python = python
        self.echo = echo
        self.environ = dict(os.environ if environ is None else environ)
        self.pools: dict[str, FunctionPool] = {}
        for function in template.functions:
            code = build_dir / function.logical_id
            if not code.is_dir():
                raise RuntimeConfigurationError(f"no {code}: run `sam build` (`make build`) first")
            rie_binary(function.architecture)  # fails now, not at the first invoke, on a foreign architecture
            self.pools[function.logical_id] = FunctionPool(
                function, functools.partial(self.new_sandbox, function.logical_id)
            )

    def invoke(self, logical_id: str, event: Any) -> Any:
        return self.pools[logical_id].invoke(event)

    def new_sandbox(self, logical_id: str, number: int = 0) -> Sandbox:
        """A sandbox of the function outside its pool (the caller stops it): a cold start on demand."""
        function = self.pools[logical_id].function
        return Sandbox(
            name=f"{function.logical_id}#{number}",
            rie=rie_binary(function.architecture),
            command=[str(self.python), "-m", "awslambdaric", function.handler],
            environment=self.environment(function),
            cwd=self.build_dir / function.logical_id,
            timeout_s=function.timeout_s,
            echo=self.echo,
        )

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()

    def __enter__(self) -> LocalRuntime:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def environment(self, function: Function) -> dict[str, str]:
        """The sandbox's environment: what Lambda sets, the function's variables, and no one else's."""
        task_root = self.build_dir / function.logical_id
        layer_paths = [self.build_dir / layer / "python" for layer in function.layers]
        for path in layer_paths:
            if not path.is_dir():
                raise TemplateError(f"{function.logical_id}: its layer has no {path} (a Python layer's folder)")
        site = [path / "lib" / f"python{self._python_version()}" / "site-packages" for path in layer_paths]
        inherited = {
            name: value
            for name, value in self.environ.items()
            if name in PASSED_THROUGH or name.startswith("AWS_ENDPOINT_URL")
        }
        region = self.environ.get("AWS_REGION") or self.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return {
            "PATH": f"{self.python.parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "HOME": str(task_root),
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            **inherited,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_s),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.logical_id}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(self.python.parent.parent),
            "_HANDLER": function.handler,
            "PYTHONPATH": os.pathsep.join(str(p) for p in [*layer_paths, *site]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def _python_version(self) -> str:
        return next(p.name[len("python") :] for p in (self.python.parent.parent / "lib").glob("python3*"))
