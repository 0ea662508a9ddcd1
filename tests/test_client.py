"""The retrying client's policy, through httpx's own mock transport (the real-socket runs are in test_http_e2e)."""

from __future__ import annotations

import asyncio
import email.utils
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from lambda_idempotency.client import AsyncIdempotentClient, IdempotentClient, RetryPolicy

Outcome = int | tuple[int, dict[str, str]] | Exception


class Server:
    """Answers each request with the next scripted outcome and records the requests it saw."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes: Iterator[Outcome] = iter(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = next(self.outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        status, headers = outcome if isinstance(outcome, tuple) else (outcome, {})
        return httpx.Response(status, headers=headers, json={"status": status})

    def keys(self) -> list[str | None]:
        return [r.headers.get("idempotency-key") for r in self.requests]


def async_client_for(server: Server) -> AsyncIdempotentClient:
    """An async client whose requests ``server`` answers, with no jitter."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return server(request)

    transport = httpx.MockTransport(handler)
    return AsyncIdempotentClient(
        client=httpx.AsyncClient(transport=transport, base_url="http://api.test"), rng=lambda: 0.0
    )


def client_for(server: Server, sleeps: list[float], **policy: float) -> IdempotentClient:
    transport = httpx.MockTransport(server)
    return IdempotentClient(
        client=httpx.Client(transport=transport, base_url="http://api.test"),
        policy=RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=sleeps.append,
        rng=lambda: 1.0,
    )


def test_one_uuid4_key_for_every_retry_of_an_operation_and_exponential_backoff() -> None:
    server, sleeps = Server(500, 503, 502, 201), []
    response = client_for(server, sleeps, base_delay=0.1).post("/payments", json={"amount": 1})
    assert response.status_code == 201
    keys = server.keys()
    assert len(set(keys)) == 1 and uuid.UUID(str(keys[0])).version == 4
    assert sleeps == pytest.approx([0.1, 0.2, 0.4])
    second = Server(201)
    client_for(second, []).post("/payments")
    assert second.keys() != keys


def test_the_callers_key_is_used_and_full_jitter_stays_under_the_cap() -> None:
    server, sleeps = Server(500, 500, 201), []
    client = IdempotentClient(
        client=httpx.Client(transport=httpx.MockTransport(server)),
        policy=RetryPolicy(base_delay=1.0, max_delay=1.5),
        sleep=sleeps.append,
        rng=lambda: 0.5,
    )
    client.post("http://api.test/payments", idempotency_key="order-42")
    assert server.keys() == ["order-42"] * 3
    assert sleeps == [0.5, 0.75]


def test_safe_methods_send_no_key_but_are_retried() -> None:
    server = Server(503, 200)
    assert client_for(server, []).get("/payments/1").status_code == 200
    assert server.keys() == [None, None]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_never_retried(status: int) -> None:
    server, sleeps = Server(status, 201), []
    assert client_for(server, sleeps).post("/payments").status_code == status
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_408_409_425_429_and_5xx_are_retried(status: int) -> None:
    server = Server(status, 201)
    assert client_for(server, []).post("/payments").status_code == 201
    assert len(server.requests) == 2


@pytest.mark.parametrize("header", [{"Idempotency-Key": "order-7"}, {"idempotency-key": "order-7"}])
def test_a_key_the_caller_put_in_the_headers_is_the_key(header: dict[str, str]) -> None:
    server = Server(503, 201)
    client_for(server, []).post("/payments", headers=header, json={"amount": 1})
    assert server.keys() == ["order-7", "order-7"]
    same = Server(201)
    client_for(same, []).post("/payments", headers=header, idempotency_key="order-7")
    assert same.keys() == ["order-7"]


@pytest.mark.parametrize(
    "headers",
    [[("Idempotency-Key", "order-7")], [("Idempotency-Key", "a"), ("Idempotency-Key", "order-7")]],
    ids=["header-and-argument", "header-twice"],
)
def test_two_different_keys_for_one_request_are_a_value_error(headers: list[tuple[str, str]]) -> None:
    server = Server(201)
    with pytest.raises(ValueError, match="Idempotency-Key"):
        client_for(server, []).post("/payments", headers=headers, idempotency_key="order-8")
    assert server.requests == []


@pytest.mark.parametrize("status", [409, 503])
def test_a_replayed_response_is_final(status: int) -> None:
    """A 409 marked replayed is the handler's stored business conflict, not a key in flight: it will not change."""
    server, sleeps = Server((status, {"Idempotent-Replayed": "true"}), 201), []
    assert client_for(server, sleeps).post("/payments").status_code == status
    assert len(server.requests) == 1 and sleeps == []


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> float:
    """A whole second the client takes for now. An HTTP-date has whole seconds: read on the real clock, a date 3 s on
    was 2-3 s away when written and less by the time the client read it, which a loaded machine could make < 1.5 s."""
    import types

    from lambda_idempotency import client

    frozen = float(int(time.time()))
    monkeypatch.setattr(client, "time", types.SimpleNamespace(time=lambda: frozen))  # this module's clock only
    return frozen


def test_retry_after_seconds_and_http_date_are_honoured(now: float) -> None:
    date = email.utils.formatdate(now + 3, usegmt=True)
    server, sleeps = Server((409, {"Retry-After": "2"}), (429, {"Retry-After": date}), 201), []
    client_for(server, sleeps, base_delay=0.01).post("/payments")
    assert sleeps[0] == 2.0
    assert sleeps[1] == 3.0


def test_an_asctime_retry_after_is_gmt_whatever_the_local_time_zone(
    monkeypatch: pytest.MonkeyPatch, now: float
) -> None:
    """RFC 9110 5.6.7: an HTTP-date in asctime form carries no zone and is GMT; read as local time, a server west of
    Greenwich would turn 3 s into hours (past max_delay: no retry), one east of it into none."""
    monkeypatch.setenv("TZ", "EST+5")  # POSIX form: 5 h west of UTC, no tz database needed
    time.tzset()
    try:
        date = time.asctime(time.gmtime(now + 3))
        server, sleeps = Server((503, {"Retry-After": date}), 201), []
        assert client_for(server, sleeps, base_delay=0.01).post("/payments").status_code == 201
        assert sleeps == [3.0]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("value", ["\u00b2", "\u00b9", "\u00b3", "1.5", "-1", "soon"])
def test_an_unreadable_retry_after_is_ignored_not_raised(value: str) -> None:
    """RFC 9110 10.2.3: delay-seconds is ASCII digits. A superscript digit (latin-1 0xB2, which httpx decodes as
    such) is a digit to ``str.isdigit`` but not to ``float``: it must fall back to the backoff, never raise."""
    server, sleeps = Server((503, {"Retry-After": value.encode("latin-1")}), 201), []  # type: ignore[dict-item]
    assert client_for(server, sleeps, base_delay=0.01).post("/payments").status_code == 201
    assert sleeps == [0.01]


def test_a_retry_after_beyond_max_delay_returns_the_response() -> None:
    server, sleeps = Server((503, {"Retry-After": "120"}), 201), []
    assert client_for(server, sleeps, max_delay=30).post("/payments").status_code == 503
    assert sleeps == []


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")],
    ids=["connect", "timeout", "dropped"],
)
def test_transport_failures_are_retried_with_the_same_key(error: Exception) -> None:
    server = Server(error, error, 201)
    assert client_for(server, []).post("/payments").status_code == 201
    assert len(set(server.keys())) == 1 and len(server.requests) == 3


def test_attempts_run_out_with_the_last_error_or_response() -> None:
    with pytest.raises(httpx.ConnectError):
        client_for(Server(*[httpx.ConnectError("refused")] * 3), [], max_attempts=3).post("/payments")
    server = Server(500, 500, 500)
    assert client_for(server, [], max_attempts=3).post("/payments").status_code == 500
    assert len(server.requests) == 3


def test_an_unretriable_transport_error_is_raised_at_once() -> None:
    server = Server(httpx.UnsupportedProtocol("ftp"), 201)
    with pytest.raises(httpx.UnsupportedProtocol):
        client_for(server, []).post("/payments")
    assert len(server.requests) == 1


def test_on_retry_sees_each_failed_attempt() -> None:
    seen: list[tuple[int, object]] = []
    server = Server(httpx.ConnectError("refused"), 409, 201)
    client = IdempotentClient(
        client=httpx.Client(transport=httpx.MockTransport(server), base_url="http://api.test"),
        on_retry=lambda attempt, delay, outcome: seen.append(
            (attempt, outcome.status_code if isinstance(outcome, httpx.Response) else type(outcome))
        ),
        sleep=lambda _: None,
    )
    client.post("/payments")
    assert seen == [(1, httpx.ConnectError), (2, 409)]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_async_client_retries_with_one_key() -> None:
    server = Server(httpx.ReadTimeout("slow"), 409, 201)

    async def run() -> int:
        async with async_client_for(server) as client:
            response = await client.post("/payments", json={"amount": 1})
            assert (await client.get("/payments/1")).status_code == 200
            return response.status_code

    server.outcomes = iter([httpx.ReadTimeout("slow"), 409, 201, 200])
    assert asyncio.run(run()) == 201
    keys = server.keys()
    assert len(set(keys[:3])) == 1 and keys[0] is not None and keys[3] is None


def test_async_client_uses_the_callers_header_key_and_stops_at_a_replayed_409() -> None:
    server = Server(503, (409, {"Idempotent-Replayed": "true"}), 201)

    async def run() -> int:
        async with async_client_for(server) as client:
            with pytest.raises(ValueError):
                await client.post("/payments", headers={"Idempotency-Key": "a"}, idempotency_key="b")
            response = await client.post("/payments", headers={"Idempotency-Key": "order-9"})
            return response.status_code

    assert asyncio.run(run()) == 409
    assert server.keys() == ["order-9", "order-9"]
