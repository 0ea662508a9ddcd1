"""Plain JSON results skip the tagging copy; the stored text must be exactly what the full path writes."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lambda_idempotency.codec import TAG, TaggedJsonSerializer, _encode, _is_plain, parse_json
from lambda_idempotency.depth import MAX_JSON_DEPTH
from lambda_idempotency.errors import InputTooDeepError


class Colour(enum.StrEnum):
    RED = "red"


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4)
values = st.recursive(
    scalars | st.sampled_from([Colour.RED, (1, 2), {TAG: "x"}, {1: "a"}, b"x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_the_fast_path_writes_what_the_full_path_writes(value: Any) -> None:
    serializer = TaggedJsonSerializer()
    assert serializer.dumps(value) == json.dumps(_encode(value), separators=(",", ":"), ensure_ascii=False)
    assert serializer.loads(serializer.dumps(value)) == value


def test_only_exact_json_types_are_plain() -> None:
    assert _is_plain({"a": [1, 2.5, "x", None, True]}, MAX_JSON_DEPTH)
    for tagged in (Colour.RED, (1,), {TAG: 1}, {1: "a"}, [b"x"], {"a": {"b": (1,)}}):
        assert not _is_plain(tagged, MAX_JSON_DEPTH)


def test_a_plain_value_past_the_depth_limit_takes_the_checked_path() -> None:
    """The fast path skips the depth scan of the text, so `_is_plain` itself must bound the depth."""

    def nested(levels: int) -> Any:
        value: Any = 1
        for i in range(levels):
            value = [value] if i % 2 else {"a": value}
        return value

    assert _is_plain(nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)
    assert not _is_plain(nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)
    serializer = TaggedJsonSerializer()
    assert serializer.loads(serializer.dumps(nested(MAX_JSON_DEPTH))) == nested(MAX_JSON_DEPTH)
    with pytest.raises(InputTooDeepError):
        serializer.dumps(nested(MAX_JSON_DEPTH + 1))


def test_a_circular_result_completes_and_replays_a_typed_error() -> None:
    """The encoder keeps no circular-reference bookkeeping: such a result fails to encode, never hangs or reruns."""
    from lambda_idempotency import MemoryStore, ResultNotStoredError, idempotent_function

    runs: list[str] = []
    loop: list[Any] = []
    loop.append(loop)

    @idempotent_function(MemoryStore(), key="k", local_cache=False)
    def work(k: str) -> Any:
        runs.append(k)
        return loop

    assert work("a") is loop
    with pytest.raises(ResultNotStoredError):
        work("a")
    assert runs == ["a"]


json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
).map(json.dumps)


def _outcome(parse: Any, text: Any) -> Any:
    try:
        return ("value", parse(text))
    except (ValueError, TypeError) as exc:
        return (type(exc), str(exc))


@settings(max_examples=300, deadline=None)
@given(text=json_texts | st.text(max_size=12), around=st.sampled_from(["", " ", "\n", "\ufeff", "x", "]"]))
def test_parse_json_answers_and_fails_as_json_loads_does(text: str, around: str) -> None:
    for variant in (text, around + text, text + around, (around + text).encode()):
        assert _outcome(parse_json, variant) == _outcome(json.loads, variant)


def test_parse_json_reads_the_common_shapes() -> None:
    assert parse_json('{"order_id":"o-1","amount":5}') == {"order_id": "o-1", "amount": 5}
    assert parse_json(" [1, 2] ") == [1, 2]
    assert parse_json(b'{"a":1}') == {"a": 1}
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        parse_json('{"a":1}{"b":2}')
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        parse_json("")
