"""Simple selectors skip jmespath's tree walk; they must answer exactly what jmespath answers."""

from __future__ import annotations

import json
from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lambda_idempotency import MissingKeyError, selectors
from lambda_idempotency.selectors import _JmesPath, _JsonFunctions

DIRECT = ["a", "a.b", "a.b.c", "json(a)", "json(a).b", "json(a.b).c", "json(json(a).b).c", "@", "json(@)"]
OTHER = ["a[0]", "a.b || c", "a[?b].c", "length(a)", "keys(json(a))"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)
inputs = st.recursive(
    json_values,
    lambda inner: st.dictionaries(st.sampled_from("abc"), inner | json_values.map(json.dumps), max_size=3),
    max_leaves=6,
)


def reference(expression: str, data: Any) -> tuple[str, Any]:
    """What jmespath itself answers (with the library's json() function), or that it failed."""
    try:
        return "value", jmespath.search(expression, data, options=_JsonFunctions.get())
    except Exception:
        return "error", None


def ours(expression: str, data: Any) -> tuple[str, Any]:
    try:
        return "value", _JmesPath(expression).search(data)
    except MissingKeyError:
        return "error", None


@pytest.mark.parametrize("expression", DIRECT + OTHER)
@settings(max_examples=60, deadline=None)
@given(data=inputs)
def test_the_same_answer_as_jmespath(expression: str, data: Any) -> None:
    assert ours(expression, data) == reference(expression, data)


@pytest.mark.parametrize("expression", DIRECT)
def test_simple_expressions_do_not_walk_the_tree(expression: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def walked(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("jmespath's interpreter ran")

    monkeypatch.setattr(jmespath.parser.ParsedResult, "search", walked)
    _JmesPath(expression).search({"a": {"b": {"c": 1}}})


def test_a_body_read_by_key_and_fingerprint_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = []
    real = selectors.parse_json
    monkeypatch.setattr(selectors, "parse_json", lambda text: parsed.append(text) or real(text))
    event = {"body": json.dumps({"order_id": "o-1", "amount": 5})}
    assert _JmesPath("json(body).order_id").search(event) == "o-1"
    assert _JmesPath("json(body)").search(event) == {"order_id": "o-1", "amount": 5}
    assert len(parsed) == 1
