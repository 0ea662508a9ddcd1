"""Recorded-answer playback: each library's real DynamoDB answers, recorded once, played back to time its CPU alone.

`Recorder` wraps a real client and keeps every answer of the calls a library makes (the response, or the error
botocore raised, with its item). `Playback` answers the same calls, in the same order, from that recording, at
once: the library does all of its own work (build the requests, read the answers, raise and catch the refused
condition) and none of botocore's or the network's. A call the recording does not expect fails loudly, so a
library that changes what it sends cannot be timed against answers meant for another request.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items")
Answer = tuple[str, dict[str, Any] | None, dict[str, Any] | None]
"""(operation, response, error response): one of the last two is None."""


class Recorder:
    """A real client that records the answers of its DynamoDB calls (the rest passes through unrecorded)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.answers: list[Answer] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name not in OPERATIONS:
            return found
        return self._recording(name, found)

    def _recording(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        from botocore.exceptions import ClientError

        def record(**request: Any) -> Any:
            try:
                response = call(**request)
            except ClientError as exc:
                self.answers.append((name, None, copy.deepcopy(exc.response)))
                raise
            self.answers.append((name, copy.deepcopy(response), None))
            return response

        return record


class Playback:
    """Answers a library's calls from one recorded call's answers, again and again, in order."""

    def __init__(self, answers: list[Answer]) -> None:
        from botocore.exceptions import ClientError

        if not answers:
            raise ValueError("nothing recorded")
        self._script = [
            (name, response, ClientError(error, name) if error else None) for name, response, error in answers
        ]
        self._next = 0
        for name in OPERATIONS:
            setattr(self, name, self._answering(name))

    def _answering(self, name: str) -> Callable[..., Any]:
        script = self._script

        def answer(**request: Any) -> Any:
            expected, response, error = script[self._next]
            self._next = (self._next + 1) % len(script)
            if expected != name:
                raise AssertionError(f"recorded {expected}, asked {name}")
            if error is not None:
                raise error.with_traceback(None)
            return response

        return answer
