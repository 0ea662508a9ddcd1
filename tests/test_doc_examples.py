"""Every ```python block of README.md and docs/**/*.md runs as written (tests/doc_examples.py says how)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lambda_idempotency import disable_metrics

from .doc_examples import FIXTURES, ROOT, Block, blocks_of, doc_pages, environment, python_blocks, run_block

BLOCKS = python_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_example_runs_as_written(block: Block, request: pytest.FixtureRequest) -> None:
    saved = dict(os.environ)
    try:
        with environment(block.fixture, request.getfixturevalue):
            run_block(block)
    finally:  # a block may set variables (LAMBDA_IDEMPOTENCY_DISABLED) or turn metrics on: undo it for the rest
        os.environ.clear()
        os.environ.update(saved)
        disable_metrics()


def test_the_harness_reads_every_page_and_every_python_block() -> None:
    pages = {page.relative_to(ROOT).as_posix() for page in doc_pages()}
    assert {"README.md", "docs/migration-from-powertools.md", "docs/DESIGN.md"} <= pages
    # The README is the landing page (one example); the other examples live on the docs site's pages.
    by_page = {block.path.relative_to(ROOT).as_posix() for block in BLOCKS}
    assert {
        "README.md",
        "docs/getting-started.md",
        "docs/http.md",
        "docs/exactly-once.md",
        "docs/storage.md",
        "docs/queues-and-streams.md",
        "docs/operations.md",
        "docs/testing.md",
    } <= by_page, sorted(by_page)
    assert len(BLOCKS) >= 20, [block.id for block in BLOCKS]


def test_new_pages_at_any_depth_and_fixture_comments_are_picked_up(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("```python\nx = 1\n```\n")
    nested = tmp_path / "docs" / "guide" / "deep"
    nested.mkdir(parents=True)
    page = nested / "page.md"
    page.write_text(
        "text\n\n<!-- example: fixture=local_api -->\n```python\nimport os\n```\n\n```text\nnot run\n```\n"
        "- a list\n\n  ```python\n  y = 2\n  ```\n"
    )
    found = python_blocks(tmp_path)
    assert [(b.path.name, b.line, b.fixture, b.source) for b in found] == [
        ("README.md", 1, "default", "x = 1\n"),
        ("page.md", 4, "local_api", "import os\n"),
        ("page.md", 13, "default", "y = 2\n"),
    ]
    assert [b.language for b in blocks_of(page)] == ["python", "text", "python"]


def test_an_unknown_fixture_is_named(request: pytest.FixtureRequest) -> None:
    with pytest.raises(LookupError, match="no example fixture 'kafka'"):
        environment("kafka", request.getfixturevalue)


def test_a_failing_block_fails_its_test(tmp_path: Path) -> None:
    page = tmp_path / "README.md"
    page.write_text("```python\nstore.put()\n```\n")
    (block,) = python_blocks(tmp_path)
    with FIXTURES["default"](), pytest.raises(NameError, match="store"):
        run_block(block)


def sam_generated_event(body: str) -> dict[str, Any]:
    """``sam local generate-event apigateway http-api-proxy``: its body is base64 (``isBase64Encoded: true``)."""
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    result = subprocess.run(
        [str(sam), "local", "generate-event", "apigateway", "http-api-proxy", "--body", body],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    event: dict[str, Any] = json.loads(result.stdout)
    return event


def test_the_validate_hook_example_reads_the_base64_bodies_sam_generates() -> None:
    (block,) = [b for b in BLOCKS if b.path.name == "http.md" and "def validate(event)" in b.source]
    assert block.fixture == "default"
    with FIXTURES[block.fixture]():
        example = run_block(block)
        valid, invalid = sam_generated_event('{"amount": 1250}'), sam_generated_event('{"currency": "EUR"}')
        assert valid["isBase64Encoded"] is True
        example["validate"](valid)
        with pytest.raises(example["RequestValidationError"]):
            example["validate"](invalid)
        for event, key in ((valid, "order-1"), (invalid, "order-2")):
            event["headers"]["idempotency-key"] = key
            event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": "alice"}, "scopes": []}}  # a caller
        assert example["handler"](valid, None)["statusCode"] == 201
        assert example["handler"](invalid, None)["statusCode"] == 400


def test_getting_started_moto_test_stays_in_memory_after_step_2(moto_endpoint: str) -> None:
    """Step 2 exports AWS_ENDPOINT_URL; boto3 then sent step 4's calls to that server, past `mock_aws`, whose table
    remembered the key: run a second time, the test that says it runs "against a table moto keeps in memory" failed
    (`calls == []`). Run twice, as a script, in the shell step 2 leaves, it passes both times."""
    page = ROOT / "docs" / "getting-started.md"
    (block,) = [block for block in python_blocks() if block.path == page and "mock_aws" in block.source]
    step_2 = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    step_2 |= {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", block.source],
            env={**os.environ, **step_2},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
