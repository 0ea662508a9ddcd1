"""The running execution of an idempotent function, reachable from inside it through `current()`.

A context variable carries it, so threads and asyncio tasks each see their own. The Lambda context travels the
same way: `idempotent` sets it, and `use_lambda_context` sets it for code that calls `idempotent_function`
outside such a handler, so leases are capped by the invocation's remaining time.

What the function can ask of its execution (collect writes for the commit, run a step once) is carried out by the
engine that runs it, through the small `Host` protocol, so this module knows no store; the lease (renewal, fence,
heartbeat) is its own object, `lease.Lease`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from .errors import NoActiveExecutionError
from .record import Payload

if TYPE_CHECKING:
    from .lease import Lease
    from .writes import Write

Mode = Literal["claim", "optimistic"]
T = TypeVar("T")

_DERIVED_KEYS = "6f1d7a52-9b7e-4c55-a1f4-1c1d2b7e0a3e"
"""Namespace of `Execution.derived_key`; changing it would change every derived key."""


class Host(Protocol):
    """What an execution asks of the engine that runs it."""

    def add_write(self, execution: Execution, action: Mapping[str, Any], *, resource: bool) -> None: ...

    def run_step(
        self, execution: Execution, name: str, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T: ...


class Execution:
    """One claim of one key: who holds it (``owner``, the fencing token) and until when.

    In optimistic mode nothing is claimed: ``owner`` is the token the commit will write, if it wins.
    A plain slotted class rather than a dataclass, which would cost about half a millisecond of every cold start.
    """

    __slots__ = (  # noqa: RUF023 - in field order: repr and replace() follow it
        "key",
        "scope",
        "operation",
        "record_id",
        "attempt",
        "owner",
        "fingerprint",
        "_lease_end",
        "steps",
        "mode",
        "writes",
        "host",
        "running_step",
        "lease",
        "steps_taken",
        "created_at",
        "stored_as",
    )

    def __init__(
        self,
        key: str,
        scope: str | None,
        operation: str,
        record_id: str,
        attempt: int,
        owner: str,
        fingerprint: str | None,
        lease_expires_at: int,
        steps: dict[str, Payload] | None = None,
        mode: Mode = "claim",
        writes: list[Write] | None = None,
        host: Host | None = None,
        running_step: str | None = None,
        lease: Lease | None = None,
        steps_taken: set[str] | None = None,
        created_at: int | None = None,
    ) -> None:
        self.key = key
        self.scope = scope
        self.operation = operation
        self.record_id = record_id
        self.attempt = attempt
        self.owner = owner
        self.fingerprint = fingerprint
        self._lease_end = lease_expires_at
        self.steps: dict[str, Payload] = {} if steps is None else steps
        self.mode: Mode = mode
        self.writes: list[Write] = [] if writes is None else writes
        self.host = host
        self.running_step = running_step
        self.lease = lease
        """The claim's lease (claim mode); None in optimistic mode, which holds nothing until it commits."""
        self.steps_taken = steps_taken
        """The step names this attempt has saved or replayed (made by its first step): a name serves one step."""
        self.created_at = created_at
        """When the key was first claimed (epoch s), or in optimistic mode when this call started: the finished
        record, which replaces the claimed one whole, keeps it."""
        self.stored_as: tuple[str, str | None] | None = None
        """What the record stores of the key and scope when ``hash_keys`` hides them (their keyed hashes, worked out
        once, at the claim); None: the key and scope as they are."""

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name not in ("host", "lease"))
        return f"Execution({shown})"

    @property
    def lease_expires_at(self) -> int:
        """The lease's end as stored (epoch ms): the claim's, then each renewal's."""
        return self.lease.expires_at_ms if self.lease is not None else self._lease_end

    def write(self, action: Mapping[str, Any], *, resource: bool = False) -> None:
        """Add a DynamoDB write to the commit: it is applied with the record's completion, or not at all.

        ``action`` is one TransactWriteItems entry, ``{"Put" | "Update" | "Delete" | "ConditionCheck": {...}}``,
        with low-level values (``{"S": "x"}``), or plain Python values with ``resource=True`` (as the boto3
        resource API takes them). Raises `InvalidWriteError` at once when the write breaks a transaction rule.
        """
        self._host().add_write(self, action, resource=resource)

    def step(self, name: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` once per key and save its result before going on (a recovery point).

        An execution that took over after a crash gets the saved result back instead of running ``fn`` again.
        An effect outside DynamoDB happens at most once per saved step: a crash between the effect and the save
        repeats it, so give downstream APIs `derived_key(name)` as their idempotency key.
        """
        return self._host().run_step(self, name, fn, args, kwargs)

    def derived_key(self, name: str) -> str:
        """A stable key (a UUID) for a downstream API's own idempotency key: the same in every attempt of this key."""
        import uuid

        return str(uuid.uuid5(uuid.UUID(_DERIVED_KEYS), f"{self.record_id}\x00{name}"))

    def heartbeat(self) -> None:
        """Renew the lease now (it is renewed in the background anyway, every lease/3); raises `LeaseLostError`
        when another execution took it over."""
        self._host()
        if self.lease is None:
            from .errors import ModeError

            raise ModeError("heartbeat() needs mode='claim': an optimistic execution holds no record until it commits")
        self.lease.heartbeat()

    def _host(self) -> Host:
        if self.host is None:
            raise NoActiveExecutionError(
                "this execution has ended, or is not run by an idempotent function: call current() inside the function"
            )
        return self.host


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
    """Let `idempotent_function` calls in this invocation cap their lease by the Lambda's remaining time."""
    _lambda_context.set(context)


def lambda_context() -> Any:
    return _lambda_context.get()


Tokens = tuple[Execution, contextvars.Token[Execution | None], contextvars.Token[Any]]


def enter(execution: Execution, context: Any) -> Tokens:
    """Make ``execution`` current, with the Lambda context it runs under, until `leave`."""
    return execution, _current.set(execution), _lambda_context.set(context)


def leave(tokens: Tokens) -> None:
    """End the execution: its function returned or raised. An execution kept past that (``run = current()`` stored,
    or used by a thread that outlives the function) has no host any more, so its ``write`` (which no commit would
    send), ``step`` (whose function would run with no lease held) and ``heartbeat`` raise `NoActiveExecutionError`."""
    execution, current_token, context_token = tokens
    execution.host = None
    _lambda_context.reset(context_token)
    _current.reset(current_token)
