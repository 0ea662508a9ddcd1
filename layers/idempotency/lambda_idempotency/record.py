"""The idempotency record: one item per (operation, scope, key), and how its stored result is packed.

A record is a plain value; stores turn it into their own representation. Time fields follow DESIGN.md:
``expires_at`` in epoch seconds (the table's TTL attribute), ``lease_expires_at`` in epoch milliseconds.
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar, Final

from .errors import ResultUnreadableError

Payload = str | bytes
"""A stored result: JSON text, or zlib-compressed JSON once it is past `COMPRESS_ABOVE` bytes."""

COMPRESS_ABOVE = 4096
MAX_PAYLOAD_BYTES = 350_000
"""A result bigger than this after compression is not stored (DynamoDB's item limit is 400 KB in all)."""
MAX_UNPACKED_BYTES = 8 * 1024 * 1024
"""The most a stored result may inflate to when it is read back: a synchronous Lambda response carries 6 MiB, as
base64 8 MiB. zlib packs a run of one byte about 1,000 to 1, so a 350 KB record could otherwise become 350 MB in
the memory of every replay; one past this is `ResultUnreadableError`, and is not inflated further."""


class Status(str):
    """A record's state: `IN_PROGRESS`, `COMPLETED` or `FAILED`, the only three instances, compared by identity.

    A ``str`` (it is stored, printed and compared as its text) with the three constants below, not an
    ``enum.StrEnum``: creating an enum class costs about 0.14 ms of every cold start, a tenth of this package's
    import. As with an enum, ``Status("COMPLETED")`` is the constant itself and other text is a ``ValueError``;
    `STATUSES` lists them; ``value`` is the text.
    """

    __slots__ = ()

    IN_PROGRESS: ClassVar[Status]
    COMPLETED: ClassVar[Status]
    FAILED: ClassVar[Status]

    def __new__(cls, text: str) -> Status:
        found = _BY_TEXT.get(text)
        if found is None:
            raise ValueError(f"{text!r} is not a record status")
        return found

    @property
    def value(self) -> str:
        return str.__str__(self)


_BY_TEXT: dict[str, Status] = {text: str.__new__(Status, text) for text in ("IN_PROGRESS", "COMPLETED", "FAILED")}
Status.IN_PROGRESS, Status.COMPLETED, Status.FAILED = _BY_TEXT.values()
STATUSES: Final = (Status.IN_PROGRESS, Status.COMPLETED, Status.FAILED)
"""Every status: what a stored one is read as, and the CLI's choices and columns."""


class Record:
    """One record as stored. Immutable (``Final`` attributes, checked by the type checker): `replace` makes a changed
    copy, since caches and stores share instances.

    A plain slotted class, not a dataclass: defining a frozen dataclass costs most of a millisecond at import,
    and every cold start pays it; and enforcing immutability at run time (``object.__setattr__`` per field) would
    cost more than a microsecond per record, on every call.
    """

    __slots__ = (  # noqa: RUF023 - in field order: repr and replace() follow it
        "record_id",
        "status",
        "owner",
        "expires_at",
        "lease_expires_at",
        "key",
        "scope",
        "fingerprint",
        "result",
        "steps",
        "attempts",
        "created_at",
        "completed_at",
    )

    def __init__(
        self,
        record_id: str,
        status: Status,
        owner: str,
        expires_at: int,
        lease_expires_at: int | None = None,
        key: str | None = None,
        scope: str | None = None,
        fingerprint: str | None = None,
        result: Payload | None = None,
        steps: dict[str, Payload] | None = None,
        attempts: int = 1,
        created_at: int | None = None,
        completed_at: int | None = None,
    ) -> None:
        self.record_id: Final[str] = record_id
        self.status: Final[Status] = status
        self.owner: Final[str] = owner
        self.expires_at: Final[int] = expires_at
        self.lease_expires_at: Final[int | None] = lease_expires_at
        self.key: Final[str | None] = key
        self.scope: Final[str | None] = scope
        self.fingerprint: Final[str | None] = fingerprint
        self.result: Final[Payload | None] = result
        self.steps: Final[dict[str, Payload]] = {} if steps is None else steps
        self.attempts: Final[int] = attempts
        self.created_at: Final[int | None] = created_at
        self.completed_at: Final[int | None] = completed_at

    def replace(self, **changes: Any) -> Record:
        """A copy with ``changes`` applied (what ``dataclasses.replace`` does for a dataclass)."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return Record(**fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Record:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # equal by value, and ``steps`` is a dict

    def __repr__(self) -> str:
        return f"Record({', '.join(f'{name}={getattr(self, name)!r}' for name in self.__slots__)})"

    def is_expired(self, now_s: int) -> bool:
        """TTL deletes late: a record past ``expires_at`` counts as absent everywhere."""
        return self.expires_at < now_s

    def lease_is_live(self, now_ms: int) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > now_ms


def pack(text: str) -> Payload | None:
    """The stored form of a result's JSON text, or None when it is too big to store (or to read back)."""
    if len(text) <= COMPRESS_ABOVE and text.isascii():  # one byte a character: no need to encode to measure
        return text
    data = text.encode()
    if len(data) <= COMPRESS_ABOVE:
        return text
    if len(data) > MAX_UNPACKED_BYTES:  # however well it compresses, it could not be read back
        return None
    packed = zlib.compress(data, 6)
    return packed if len(packed) <= MAX_PAYLOAD_BYTES else None


def unpack(payload: Payload) -> str:
    """The result's JSON text; raises `ResultUnreadableError` past `MAX_UNPACKED_BYTES` or for a corrupt payload."""
    if isinstance(payload, str):
        return payload
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(payload, MAX_UNPACKED_BYTES + 1)  # stops at the bound, whatever the input holds
        if len(data) > MAX_UNPACKED_BYTES:
            raise ResultUnreadableError(
                f"the stored result inflates past {MAX_UNPACKED_BYTES} bytes (MAX_UNPACKED_BYTES); it was not read"
            )
        if not inflater.eof:
            raise ResultUnreadableError("the stored result is truncated")
        return data.decode()
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ResultUnreadableError(f"the stored result is corrupt ({exc})") from None
