"""Bad input, generated: keys (as arguments and as Idempotency-Key headers), events, results (of the function and
of its steps) and clock skew, on DynamoDB Local (over HTTP).

Expected everywhere: the function runs at most once per key, every answer is that key's own (never lost, never
another key's), and the only errors are the documented typed ones — never an exception from inside the library.
The suite runs the small hypothesis profile; `make test-long` runs 10,000 cases per target.
"""

from __future__ import annotations

import base64
import json
import math
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lambda_idempotency import (
    DynamoDBStore,
    InProgressError,
    InvalidKeyError,
    MissingKeyError,
    ResultNotStoredError,
    current,
    idempotent,
    idempotent_function,
)
from lambda_idempotency.http import idempotent_http

from .conftest import FakeClock, client_of, new_dynamodb_store
from .http_events import SHAPES, headers_of, http_event, options_for, problem_of

REFUSED_INPUT = (MissingKeyError, InvalidKeyError)
"""What a call may raise for an unusable key or event, before anything is claimed or run."""


@pytest.fixture(scope="module")
def store(request: pytest.FixtureRequest) -> Iterator[DynamoDBStore]:
    """One table for the module; every generated case uses its own operation, so cases never share records."""
    with client_of(request, "dynamodb_local") as client:
        yield new_dynamodb_store(client)


def operation() -> str:
    return f"case-{uuid.uuid4().hex}"


any_text = st.text(st.characters() | st.characters(categories=["Cs"]))  # lone surrogates included
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    any_text,
    st.text(min_size=250, max_size=300),
    st.text(st.characters(categories=["Cc"])),
    st.binary(max_size=20),
    st.decimals(),
)
keys = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3),
    max_leaves=6,
)


@given(first=keys, second=keys)
def test_any_key_runs_once_with_its_own_result_or_is_refused_typed(
    store: DynamoDBStore, first: Any, second: Any
) -> None:
    runs: list[Any] = []

    @idempotent_function(store, key="k", operation=operation(), local_cache=False)
    def work(k: Any, tag: str) -> str:
        runs.append(tag)
        return tag

    answers: dict[str, str] = {}
    for tag, key in (("first", first), ("second", second)):
        try:
            answers[tag] = work(key, tag)
        except REFUSED_INPUT:
            continue
    for tag, key in (("first", first), ("second", second)):
        if tag in answers:
            assert work(key, "again") == answers[tag]  # a replay is the key's own answer
    assert "again" not in runs
    assert sorted(runs) == sorted(set(answers.values()))  # each accepted key ran at most once


header_keys = st.one_of(
    any_text,
    st.text(min_size=250, max_size=300),
    st.text(st.characters(categories=["Cc", "Zs"])),
    st.text(st.characters(codec="ascii")).map(lambda text: f'"{text}"'),  # structured-field strings, well or not
)


@given(shape=st.sampled_from(list(SHAPES)), key=header_keys)
def test_any_idempotency_key_header_runs_once_or_is_a_400(store: DynamoDBStore, shape: str, key: str) -> None:
    runs: list[int] = []

    def create(event: Any, context: Any) -> dict[str, Any]:
        runs.append(1)
        return {"statusCode": 201, "body": json.dumps({"run": len(runs)})}

    api = idempotent_http(store, operation=operation(), **options_for(shape))(create)
    first = api(http_event(shape, key=key), None)
    if first["statusCode"] == 400:
        assert problem_of(first)["code"] == "idempotency-key-invalid"
        assert runs == []
        return
    assert first["statusCode"] == 201
    replay = api(http_event(shape, key=key), None)
    assert headers_of(replay)["idempotent-replayed"] == "true"
    assert json.loads(replay["body"]) == json.loads(first["body"]) == {"run": 1}
    assert runs == [1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def events(draw: st.DrawFn) -> Any:
    """API Gateway-like events, well and badly formed: the body missing, of the wrong type, not JSON, base64, huge."""
    order_id = draw(st.none() | st.integers() | st.text(max_size=300) | json_values)
    payload = {"order_id": order_id, "pad": "x" * draw(st.sampled_from([0, 10, 100_000, 1_000_000]))}
    body = draw(
        st.sampled_from(["json", "base64", "not json", "object", "wrong type", "missing"]).flatmap(
            lambda form: {
                "json": st.just(json.dumps(payload)),
                "base64": st.just(base64.b64encode(json.dumps(payload).encode()).decode()),
                "not json": st.just("{order_id: " + str(order_id)),
                "object": st.just(payload),
                "wrong type": json_values,
                "missing": st.just(None),
            }[form]
        )
    )
    event = {"body": body, "isBase64Encoded": draw(st.booleans())} if body is not None else {"headers": {}}
    return draw(st.just(event) | json_values) if draw(st.booleans()) else event


@given(event=events())
def test_any_event_runs_once_or_is_refused_typed(store: DynamoDBStore, event: Any) -> None:
    runs: list[int] = []

    @idempotent(store, key="json(body).order_id", fingerprint="json(body)", operation=operation(), local_cache=False)
    def handler(event: Any, context: Any) -> dict[str, Any]:
        runs.append(1)
        return {"statusCode": 201, "runs": len(runs)}

    try:
        first = handler(event, None)
    except REFUSED_INPUT:
        assert runs == []
        return
    assert handler(event, None) == first == {"statusCode": 201, "runs": 1}
    assert runs == [1]


class Opaque:
    """A result the default serializer cannot store."""


results = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        any_text,
        st.binary(max_size=50),
        st.decimals(),
        st.datetimes(),
        st.dates(),
        st.uuids(),
        st.builds(Opaque),
        st.sampled_from([420_000, 2_000_000]).map(os.urandom),  # past the 400 KB item, incompressible
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.frozensets(st.integers() | st.text(max_size=4), max_size=3),
        st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4),
    ),
    max_leaves=10,
)


def same(a: Any, b: Any) -> bool:
    """Equality that also holds for NaNs and keeps types apart (1 vs True vs 1.0, list vs tuple)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@given(result=results)
@example(result="\ud800")  # found by the long run: JSON written as UTF-8 could not carry a lone surrogate
@example(result={"a": ["\udfff", Decimal("NaN")]})
def test_any_result_is_replayed_equal_or_reported_typed_never_rerun(store: DynamoDBStore, result: Any) -> None:
    runs: list[int] = []

    @idempotent_function(store, key="k", operation=operation(), local_cache=False)
    def work(k: str) -> Any:
        runs.append(1)
        return result

    assert work("k") is result  # the first caller gets the very object the function returned
    try:
        replayed = work("k")
    except ResultNotStoredError:
        pass  # unserialisable or too big: reported on replay, never run again
    else:
        assert same(replayed, result)
    assert runs == [1]


class SurrogateText:
    """A custom serializer whose text UTF-8 cannot carry (a lone surrogate)."""

    def dumps(self, value: Any) -> str:
        return "\ud800"

    def loads(self, text: str) -> Any:
        return text


def test_a_custom_serializers_text_that_cannot_be_stored_is_reported_typed(store: DynamoDBStore) -> None:
    runs: list[int] = []

    @idempotent_function(store, key="k", operation=operation(), serializer=SurrogateText(), local_cache=False)
    def work(k: str) -> str:
        runs.append(1)
        return "result"

    assert work("k") == "result"  # the caller gets its answer; the key is completed, not left in flight
    with pytest.raises(ResultNotStoredError):
        work("k")
    assert runs == [1]


class Crash(BaseException):
    """The container dies mid-function: nothing is released, the lease runs out."""


@given(result=results)
def test_any_step_result_is_resumed_equal_or_refused_typed(store: DynamoDBStore, result: Any) -> None:
    """A step's result is saved and handed back, equal, to the execution that takes over after a crash; or the step
    raises `ResultNotStoredError` and the key is given back (a retry runs, and refuses, again): never stuck."""
    clock = FakeClock()
    effects: list[int] = []
    resumed: list[Any] = []

    def effect() -> Any:
        effects.append(1)
        return result

    @idempotent_function(store, key="k", operation=operation(), lease=30, local_cache=False, clock=clock)
    def work(k: str) -> str:
        value = current().step("effect", effect)
        if current().attempt == 1:
            raise Crash
        resumed.append(value)
        return "done"

    try:
        work("k")
    except ResultNotStoredError:
        with pytest.raises(ResultNotStoredError):
            work("k")
        assert effects == [1, 1]
        return
    except Crash:
        pass
    clock.advance(60)
    assert work("k") == "done"
    assert effects == [1]  # the saved step was not run again
    assert same(resumed[0], result)
    assert work("k") == "done"  # replayed


@given(
    skew_s=st.floats(-300, 300, allow_nan=False),
    gap_s=st.floats(0, 120, allow_nan=False),
    concurrent=st.booleans(),
)
def test_clock_skew_between_two_executions(store: DynamoDBStore, skew_s: float, gap_s: float, concurrent: bool) -> None:
    """Two containers whose clocks differ by ``skew_s``: B replays A's result, or runs only where the contract says
    A's lease (concurrent) or A's record (after it completed) has ended on B's clock; never a mixed-up result."""
    clock_a = FakeClock()
    clock_b = FakeClock(clock_a.now + skew_s)
    lease_s, ttl_s, name = 30, 60, operation()
    runs: list[str] = []
    answers: dict[str, Any] = {}

    def container(clock: FakeClock, me: str) -> Any:
        @idempotent_function(store, key="k", operation=name, lease=lease_s, ttl=ttl_s, local_cache=False, clock=clock)
        def work(k: str) -> str:
            runs.append(me)
            if me == "A" and concurrent:  # B arrives while A runs
                clock_a.advance(gap_s)
                clock_b.advance(gap_s)
                answers["B"] = call(b)
            return f"result-of-{me}"

        return work

    def call(fn: Any) -> Any:
        try:
            return fn("k")
        except InProgressError:
            return "in progress"

    a, b = container(clock_a, "A"), container(clock_b, "B")
    started_ms = int(clock_a.now * 1000)
    answers["A"] = call(a)
    finished_ms = int(clock_a.now * 1000)
    if not concurrent:
        clock_a.advance(gap_s)
        clock_b.advance(gap_s)
        answers["B"] = call(b)

    b_now_ms = int(clock_b.now * 1000)  # B's clock when it called, read as the engine reads it
    if concurrent:
        b_runs = b_now_ms >= started_ms + (lease_s + 1) * 1000  # A's lease (+1 s margin) is over on B's clock
    else:
        b_runs = b_now_ms // 1000 > finished_ms // 1000 + ttl_s  # A's record is past expires_at on B's clock
    assert runs == (["A", "B"] if b_runs else ["A"])
    assert answers["A"] == "result-of-A"
    expected_b = "result-of-B" if b_runs else ("in progress" if concurrent else "result-of-A")
    assert answers["B"] == expected_b
    final = call(b)
    assert final == ("result-of-B" if b_runs else "result-of-A")  # the record is its last owner's, whole
