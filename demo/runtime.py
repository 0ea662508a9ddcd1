"""The demo's functions on the local Lambda runtime (tools/runtime_pool.py): `make demo`'s default.

Each function runs in its own runtime processes from `sam build`'s output, under RIE, with the environment the
template gives it on the demo's local resources. A "container" of the story is then the function's warm pool: the
runtime starts a sandbox for every invoke that finds none idle, so concurrent clients get concurrent sandboxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.runtime_pool import LocalRuntime
from tools.sam_template import load_template

from .stack import LocalStack
from .template import TEMPLATE


@dataclass
class Deployed:
    """A function on the runtime, called as the story calls a module: ``handler(event, context)``.

    The context is the runtime's own (its remaining time runs from the invoke's deadline); the one passed is unused.
    """

    runtime: LocalRuntime
    logical_id: str

    def handler(self, event: dict[str, Any], _context: Any) -> Any:
        return self.runtime.invoke(self.logical_id, event)


class RuntimeFunctions:
    """The story's functions on RIE; ``parameters`` and ``timeouts`` override the template's (the timeout chapter)."""

    real_timeouts = True

    def __init__(self, stack: LocalStack, build_dir: Path) -> None:
        self.stack = stack
        self.build_dir = build_dir
        self.runtimes: list[LocalRuntime] = []
        self._by_latency: dict[str, LocalRuntime] = {}

    def runtime(self, parameters: dict[str, str], timeouts: dict[str, int] | None = None) -> LocalRuntime:
        resources = {k: v for k, v in self.stack.names.items() if k in self.stack.template["Resources"]}
        template = load_template(TEMPLATE, parameters=parameters, names=resources)
        for function in template.functions:
            function.environment.update(self.stack.overrides)
            function.timeout_s = (timeouts or {}).get(function.logical_id, function.timeout_s)
        environ = {**self.stack.endpoints, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}
        runtime = LocalRuntime(template, build_dir=self.build_dir, environ=environ)
        self.runtimes.append(runtime)
        return runtime

    def load(self, logical_id: str, GATEWAY_LATENCY_MS: str = "0") -> Deployed:
        """The function on the runtime whose gateway answers after ``GATEWAY_LATENCY_MS`` (one per latency)."""
        if GATEWAY_LATENCY_MS not in self._by_latency:
            parameters = {"GatewayLatencyMs": GATEWAY_LATENCY_MS, "SenderEmail": self.stack.names["SenderEmail"]}
            self._by_latency[GATEWAY_LATENCY_MS] = self.runtime(parameters)
        return Deployed(self._by_latency[GATEWAY_LATENCY_MS], logical_id)

    def close(self) -> None:
        for runtime in self.runtimes:
            runtime.close()
