"""What a running execution asks of the engine: its steps, saved so a resumed execution skips them, and its writes,
collected for the fenced commit (DESIGN.md, "Exactly-once effects").

`Effects` is the `execution.Host` of a `Guard`'s executions, built once with the guard, so no call allocates one.
It checks each step and write against the lease and the transaction rules; the commit that applies the writes stays
the engine's. The writes module loads with the first write, not with every cold start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InvalidStepError, InvalidWriteError, LeaseLostError, ModeError

if TYPE_CHECKING:
    from .execution import Execution
    from .lease import Lease, Send
    from .outcomes import Outcomes
    from .stores.base import Store

logger = logging.getLogger("lambda_idempotency")

T = TypeVar("T")

MAX_STEP_NAME_BYTES = 1024
"""A step name is a label in code, stored as a key of the record's ``steps`` map. DynamoDB refuses names of 64 KB
(an attribute name) and records of 400 KB; longer labels than this are a bug, refused before the step runs."""


class Effects:
    """The steps and writes of one guarded function's executions."""

    def __init__(self, store: Store, outcomes: Outcomes, send: Send) -> None:
        self.store = store
        self.outcomes = outcomes
        self._send = send
        """How a step's save is sent: the guard's retrying send (``send(record_id, call, *args)``)."""

    def add_write(self, execution: Execution, action: Mapping[str, Any], *, resource: bool) -> None:
        """`Host`: check a write against the transaction rules and keep it for the commit."""
        if execution.lease is not None:
            execution.lease.check("write()")
        if execution.running_step is not None:
            raise InvalidWriteError(
                f"write() inside step {execution.running_step!r}: an execution that resumes skips the step and "
                "would lose the write; call write() outside steps"
            )
        from . import writes as transaction  # loaded by the first write, not by every cold start

        write = transaction.normalise(action, resource=resource)
        transaction.check_can_add(execution.writes, write, self.store.record_key(execution.record_id))
        execution.writes.append(write)

    def run_step(
        self, execution: Execution, name: str, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        """`Host`: the saved result of step ``name``, or run ``fn`` and save its result before returning it."""
        lease = _need_claim(execution, "step()")
        lease.check(f"step {name!r:.100}")
        _check_step_name(name)
        taken = execution.steps_taken
        if taken is None:
            taken = execution.steps_taken = set()
        if name in taken:
            raise InvalidStepError(
                f"step {name!r:.100} already ran in this execution: a reused name would get the first step's saved "
                "result without running; give each step its own name (e.g. with the item's id)"
            )
        serializer = self.outcomes.step_serializer(fn)
        saved = execution.steps.get(name)
        if saved is not None:
            logger.debug("step %r of %s was saved by an earlier attempt; not running it", name, execution.record_id)
            replayed: T = self.outcomes.saved_step(execution, serializer, saved)
            taken.add(name)
            return replayed
        lease.fence(f"step {name!r}")
        outer, execution.running_step = execution.running_step, name
        try:
            result = fn(*args, **kwargs)
        finally:
            execution.running_step = outer
        if hasattr(result, "__await__"):
            getattr(result, "close", lambda: None)()  # never awaited: close it quietly
            raise ModeError(f"step {name!r} returned an awaitable: steps run plain (not async) functions")
        payload = self.outcomes.step(execution, name, serializer, result)
        saved = self._send(
            execution.record_id,
            self.store.save_step,
            execution.record_id,
            execution.owner,
            name,
            payload,
            first=not execution.steps,  # the record holds no step yet: no steps map either
        )
        if saved is not None:
            raise LeaseLostError(f"{execution.record_id} was taken over before step {name!r} was saved")
        execution.steps[name] = payload
        taken.add(name)  # only once saved: a step whose function raised may be tried again under its name
        return result


def _check_step_name(name: Any) -> None:
    """A step name keys the record's ``steps`` map: DynamoDB needs non-empty, valid UTF-8, and the record 400 KB."""
    if not isinstance(name, str) or not name:
        raise InvalidStepError(f"a step needs a non-empty name, got {name!r:.100}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidStepError(f"a step name must be valid Unicode text, got {name!r:.100}") from None
    if size > MAX_STEP_NAME_BYTES:
        raise InvalidStepError(f"a step name takes at most {MAX_STEP_NAME_BYTES} bytes of UTF-8, got {size}")


def _need_claim(execution: Execution, what: str) -> Lease:
    if execution.lease is None:
        raise ModeError(f"{what} needs mode='claim': an optimistic execution holds no record until it commits")
    return execution.lease
