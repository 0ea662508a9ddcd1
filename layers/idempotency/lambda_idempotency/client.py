"""A client for APIs that take ``Idempotency-Key``: one key per logical operation, reused across its retries.

Each call of `IdempotentClient.request` is one logical operation. Unsafe methods (POST, PATCH, PUT, DELETE) get an
``Idempotency-Key`` (a UUID4 unless the caller gives one, as ``idempotency_key=`` or as the header itself) and every
retry of that call sends the same key, so a retry after a lost response replays the first outcome instead of doing
the work twice.

Retried: connection errors, timeouts, a connection dropped before the response (``RemoteProtocolError``), and the
statuses 408, 425, 429, 5xx and 409 (the key is in flight). Never retried: any other 4xx, whose answer will not
change, and any response marked ``Idempotent-Replayed: true``: that is a stored outcome (a 409 then is the
handler's own business conflict, not a key in flight), and every retry would get it back.
Delays are exponential with full jitter; a ``Retry-After`` the server sends is honoured (a retry never comes
sooner), and one longer than ``max_delay`` ends the retries with that response.

Built on httpx (the ``client`` extra): ``pip install ".[client]"`` from a clone (no release is published yet).
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger("lambda_idempotency.client")

HEADER = "Idempotency-Key"
UNSAFE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
RETRIED_STATUSES = frozenset({408, 409, 425, 429})
REPLAYED_HEADER = "Idempotent-Replayed"
RETRIED_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Transport failures after which the request may or may not have reached the server: the key makes a retry safe."""

OnRetry = Callable[[int, float, "httpx.Response | Exception"], None]
"""Called before each retry with the attempt that failed (1-based), the delay, and the response or error."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("max_attempts must be >= 1 and delays non-negative")

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2^(attempt-1))]."""
        return rng() * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))

    def after_error(self, attempt: int, rng: Callable[[], float]) -> float | None:
        """The delay before retrying a transport failure, or None to give up."""
        return self.backoff(attempt, rng) if attempt < self.max_attempts else None

    def after_response(self, attempt: int, response: httpx.Response, rng: Callable[[], float]) -> float | None:
        """The delay before retrying this response, or None to return it."""
        status = response.status_code
        if attempt >= self.max_attempts or not (status in RETRIED_STATUSES or status >= 500):
            return None
        if response.headers.get(REPLAYED_HEADER, "").strip().lower() == "true":
            return None  # a stored outcome: the same answer would come back
        delay = self.backoff(attempt, rng)
        asked = retry_after(response)
        if asked is None:
            return delay
        return max(asked, delay) if asked <= self.max_delay else None


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds from now: delta-seconds or an HTTP-date; None when absent or unreadable.

    RFC 9110: delay-seconds is ASCII digits (``str.isdigit`` alone also passes ``²``, which ``float`` refuses), and an
    HTTP-date is GMT even in the asctime form, which names no zone (a naive datetime would be read as local time)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - time.time())


class _Options:
    """What the sync and async clients share: the policy, the key rule and the retry hook."""

    def __init__(self, policy: RetryPolicy | None, rng: Callable[[], float], on_retry: OnRetry | None) -> None:
        self.policy = policy or RetryPolicy()
        self.rng = rng
        self.on_retry = on_retry

    def start(self, method: str, key: str | None, kwargs: dict[str, Any]) -> _Operation:
        """Begin one logical operation: its key goes into ``kwargs``' headers for every attempt.

        A key the caller put in the headers is the key, as one passed as ``idempotency_key`` is; both, with
        different values (or the header twice, differently), is a `ValueError`: which one the server saw would be
        a guess.
        """
        headers = httpx.Headers(kwargs.get("headers"))
        given = set(headers.get_list(HEADER))
        if key is not None:
            given.add(key)
        if len(given) > 1:
            raise ValueError(f"two different {HEADER}s for one request: {sorted(given)!r}")
        if given or method.upper() in UNSAFE_METHODS:
            headers[HEADER] = given.pop() if given else str(uuid.uuid4())
        kwargs["headers"] = headers
        return _Operation(self)


class _Operation:
    """The attempts of one logical operation (sans I/O: the clients send, this decides)."""

    def __init__(self, options: _Options) -> None:
        self.options = options
        self.attempt = 0

    def delay_after(self, outcome: httpx.Response | Exception) -> float | None:
        """How long to wait before the next attempt, or None when ``outcome`` is final."""
        self.attempt += 1
        policy, rng = self.options.policy, self.options.rng
        if isinstance(outcome, Exception):
            delay = policy.after_error(self.attempt, rng)
        else:
            delay = policy.after_response(self.attempt, outcome, rng)
        if delay is not None:
            what = outcome if isinstance(outcome, Exception) else outcome.status_code
            logger.debug("attempt %d failed (%s); retrying in %.2f s", self.attempt, what, delay)
            if self.options.on_retry is not None:
                self.options.on_retry(self.attempt, delay, outcome)
        return delay


def _final(outcome: httpx.Response | Exception) -> httpx.Response:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class IdempotentClient:
    """Synchronous: ``IdempotentClient("https://api.example.com").post("/payments", json={...})``."""

    def __init__(
        self,
        base_url: str = "",
        *,
        policy: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
        on_retry: OnRetry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.http = client or httpx.Client(base_url=base_url, timeout=timeout)
        self._options = _Options(policy, rng, on_retry)
        self._sleep = sleep

    def request(self, method: str, url: str, *, idempotency_key: str | None = None, **kwargs: Any) -> httpx.Response:
        """One logical operation: retried as the policy says, every attempt with the same key."""
        operation = self._options.start(method, idempotency_key, kwargs)
        while True:
            try:
                outcome: httpx.Response | Exception = self.http.request(method, url, **kwargs)
            except RETRIED_ERRORS as error:
                outcome = error
            if (delay := operation.delay_after(outcome)) is None:
                return _final(outcome)
            self._sleep(delay)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> IdempotentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncIdempotentClient:
    """Asynchronous twin of `IdempotentClient`, on ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str = "",
        *,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        on_retry: OnRetry | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.http = client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._options = _Options(policy, rng, on_retry)

    async def request(
        self, method: str, url: str, *, idempotency_key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        operation = self._options.start(method, idempotency_key, kwargs)
        while True:
            try:
                outcome: httpx.Response | Exception = await self.http.request(method, url, **kwargs)
            except RETRIED_ERRORS as error:
                outcome = error
            if (delay := operation.delay_after(outcome)) is None:
                return _final(outcome)
            await asyncio.sleep(delay)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncIdempotentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
