"""The adapter's request validation error: a 400 that stores nothing, so a corrected retry with the key works."""

from __future__ import annotations

from typing import Any


class RequestValidationError(Exception):
    """Raise from a ``validate`` hook or from the handler: the answer is a 400 problem and the key is released.

    ``errors`` (any JSON-serialisable list, e.g. pydantic's ``errors()``) goes into the problem's ``errors`` member.
    """

    def __init__(self, detail: str, errors: list[Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
