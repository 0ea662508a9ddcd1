"""The typed errors of the toolkit.

Every failure a caller can act on has its own type, so an HTTP adapter can map it to a status code and a queue
consumer can decide whether to retry, without parsing messages.
"""

from __future__ import annotations


class IdempotencyError(Exception):
    """Base of every error this library raises."""


class MissingKeyError(IdempotencyError):
    """The idempotency key could not be found in the event or the arguments (and the key is required)."""


class InvalidKeyError(IdempotencyError):
    """The key is empty, too long, or cannot be written as text (nor the payload it is fingerprinted with); nothing
    was stored."""


class MissingScopeError(IdempotencyError):
    """A ``scope=`` was configured and returned None, an empty value or one that cannot be written as text for this
    call; nothing was claimed.

    Never a fallback to the unscoped record: that record is shared by every caller, so one caller's result would
    be replayed to another (HTTP: 401 ``principal-required``).
    """


class InputTooDeepError(IdempotencyError):
    """JSON nests deeper than `depth.MAX_JSON_DEPTH` levels, or a value deeper than Python can encode; nothing was
    claimed or stored. An HTTP adapter answers 400 ``request-invalid``."""


class KeyReuseError(IdempotencyError):
    """The key was already used with a different payload (fingerprint): HTTP 422, never a replay."""


class InProgressError(IdempotencyError):
    """Another execution holds the key right now; retry after ``retry_after`` seconds (HTTP 409)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailableError(IdempotencyError):
    """The store could not be reached or refused the call; the function did not run (fail closed)."""


class StoreConfigurationError(IdempotencyError):
    """The store cannot work as configured: a missing table, a table with another key schema (a Powertools table),
    denied access, missing or rejected credentials, or a wrong region. A retry cannot help, so it is raised whatever
    ``fail_open`` says; the message names the table, the region and the fix. Only throttling, 5xx answers, timeouts and
    connection failures are outages (`StoreUnavailableError`)."""


class ResultNotStoredError(IdempotencyError):
    """The key completed, but its result could not be stored (too big, or not serialisable).

    The work ran once and will not run again; only its return value cannot be replayed.
    """


class ResultUnreadableError(ResultNotStoredError):
    """A stored result, step or failure cannot be read back, so nothing is replayed from it and the work is not run
    again: it would inflate past `record.MAX_UNPACKED_BYTES` (a decompression bomb, never inflated), it is corrupt or
    nests too deeply to parse, its offloaded object is missing or not the one the record's hash names, or it cannot be
    decrypted (another record's ciphertext, the wrong key, or a store without the offload or encryption that wrote it).
    """


class LeaseLostError(IdempotencyError):
    """This execution lost its lease: another execution took the key over, or no renewal landed before the lease
    ended. Raised by the next step, write, heartbeat or completion before it sends anything, and by a commit the
    store refused; nothing of this execution's commit was written."""


class InvalidWriteError(IdempotencyError):
    """A write given to `current().write` cannot go into the commit; nothing was sent.

    It is malformed, breaks one of DynamoDB's transaction rules (100 actions including the completion, 4 MB,
    one action per item, none on the idempotency record itself), or the store cannot commit writes at all.
    """


class WriteConditionError(IdempotencyError):
    """The condition of one of the function's own writes failed, so none of its writes was applied.

    The key is released, so a retry runs again. ``failed`` lists the failing writes as (index, action, table).
    """

    def __init__(self, message: str, *, failed: tuple[tuple[int, str, str], ...]) -> None:
        super().__init__(message)
        self.failed = failed


class ModeError(IdempotencyError):
    """A feature was used where it cannot work: `step` and `heartbeat` need a claimed record (mode="claim"),
    and a step runs a plain function (an async one's awaitable cannot be saved)."""


class InvalidBatchError(IdempotencyError, ValueError):
    """A queue or stream event `process_batch` cannot report on record by record: not a ``{"Records": [...]}``
    event, records of an unsupported or mixed source, or a record without the id its partial batch response names
    (SQS ``messageId``, Kinesis ``kinesis.sequenceNumber``, DynamoDB Streams ``dynamodb.SequenceNumber``).
    Raised before any record runs: the invocation fails, and the queue or stream retries the batch."""


class InvalidStepError(IdempotencyError, ValueError):
    """A step name that cannot key a saved result: empty, not valid Unicode text, past `effects.MAX_STEP_NAME_BYTES`,
    or already used by this execution (a second ``step("charge", ...)`` would get the first one's saved result and
    never run). Raised before the step's function runs; nothing is saved."""


class CachedFailureError(IdempotencyError):
    """Replay of a stored failure whose original exception type could not be rebuilt."""

    def __init__(self, message: str, *, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class NoActiveExecutionError(IdempotencyError):
    """``current()`` was called outside an idempotent function."""
