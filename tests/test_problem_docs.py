"""``problem_docs``: the Idempotency-Key problems link the API's documentation, as the IETF draft asks.

draft-ietf-httpapi-idempotency-key-header-06, "Error Scenarios": the 400 for a missing key and the 422 for a key
reused with another payload SHOULD carry, in the body, a link to relevant documentation. RFC 9457's ``type`` is that
link: ``{problem_docs}#{code}``; without the option it stays ``about:blank``.
"""

from __future__ import annotations

from typing import Any

import pytest
from lambda_idempotency import MemoryStore

from tests.http_events import SHAPES, http_event, problem_of
from tests.test_http_adapter import make_api, while_in_flight

DOCS = "https://docs.example.com/payments/idempotency"
SHAPES_TESTED = list(SHAPES)


def key_problems(shape: str, **options: Any) -> dict[str, dict[str, Any]]:
    """The four Idempotency-Key problems of one API, by code: missing, invalid, in use (409), reused (422)."""
    api, payments = make_api(MemoryStore(), shape, local_cache=False, lease=30, **options)
    answers = [
        api(http_event(shape, key=None), None),
        api(http_event(shape, key="k\u00e9y"), None),
    ]
    first, in_use = while_in_flight(api, payments, http_event(shape), http_event(shape))
    assert first["statusCode"] == 201
    answers += [in_use, api(http_event(shape, body={"amount": 1}), None)]
    problems = {problem["code"]: problem for problem in map(problem_of, answers)}
    assert sorted(problems) == [
        "idempotency-key-in-use",
        "idempotency-key-invalid",
        "idempotency-key-missing",
        "idempotency-key-reused",
    ]
    assert [problem["status"] for problem in problems.values()] == [400, 400, 409, 422]
    return problems


@pytest.mark.parametrize("shape", SHAPES_TESTED)
def test_each_key_problem_links_the_documentation_of_its_code(shape: str) -> None:
    for code, problem in key_problems(shape, problem_docs=DOCS).items():
        assert problem["type"] == f"{DOCS}#{code}"


@pytest.mark.parametrize("shape", ["rest", "http_api"])
def test_without_problem_docs_the_type_is_about_blank(shape: str) -> None:
    assert {problem["type"] for problem in key_problems(shape).values()} == {"about:blank"}


def test_other_problems_keep_about_blank() -> None:
    """The option documents the key's problems; a request the API's own validation refuses is not one of them."""
    api, _ = make_api(MemoryStore(), "http_api", problem_docs=DOCS)
    problem = problem_of(api(http_event("http_api", key="k", body="[" * 200), None))
    assert (problem["code"], problem["type"]) == ("request-invalid", "about:blank")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "docs.example.com/idempotency",  # not absolute
        "/idempotency",
        "ftp://docs.example.com/idempotency",
        "https://docs.example.com/idempotency#errors",  # the code is the fragment
        "https://docs.example.com/idem potency",
        "https://docs.example.com/idempotency\n",
        "https://docs.example.com/idempot\u00e9ncy",
        b"https://docs.example.com/idempotency",
    ],
)
def test_a_url_that_cannot_make_a_type_is_a_configuration_error(url: Any) -> None:
    with pytest.raises(ValueError, match="problem_docs"):
        make_api(MemoryStore(), "http_api", problem_docs=url)
