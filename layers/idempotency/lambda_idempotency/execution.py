"""The running execution of an idempotent function, reachable from inside it through `current()`.

A context variable carries it, so threads and asyncio tasks each see their own. The Lambda context travels the
same way: `idempotent` sets it, and `use_lambda_context` sets it for code that calls `idempotent_function`
outside such a handler, so leases can follow the invocation's remaining time.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

from .errors import NoActiveExecutionError
from .record import Payload


@dataclass(slots=True)
class Execution:
    """One claim of one key: who holds it (``owner``, the fencing token) and until when."""

    key: str
    scope: str | None
    operation: str
    record_id: str
    attempt: int
    owner: str
    fingerprint: str | None
    lease_expires_at: int
    steps: dict[str, Payload] = field(default_factory=dict)


_current: contextvars.ContextVar[Execution | None] = contextvars.ContextVar(
    "lambda_idempotency_execution", default=None
)
_lambda_context: contextvars.ContextVar[Any] = contextvars.ContextVar("lambda_idempotency_context", default=None)


def current() -> Execution:
    """The execution running in this context; raises `NoActiveExecutionError` outside an idempotent function."""
    execution = _current.get()
    if execution is None:
        raise NoActiveExecutionError("current() is only available inside an idempotent function")
    return execution


def use_lambda_context(context: Any) -> None:
    """Let `idempotent_function` calls in this invocation size their lease by the Lambda's remaining time."""
    _lambda_context.set(context)


def lambda_context() -> Any:
    return _lambda_context.get()


Tokens = tuple[contextvars.Token[Execution | None], contextvars.Token[Any]]


def enter(execution: Execution, context: Any) -> Tokens:
    """Make ``execution`` current, with the Lambda context it runs under, until `leave`."""
    return _current.set(execution), _lambda_context.set(context)


def leave(tokens: Tokens) -> None:
    _lambda_context.reset(tokens[1])
    _current.reset(tokens[0])
