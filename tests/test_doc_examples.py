"""Every ```python block of README.md and docs/**/*.md runs as written (tests/doc_examples.py says how)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lambda_idempotency import disable_metrics

from .doc_examples import FIXTURES, ROOT, Block, blocks_of, doc_pages, python_blocks, run_block

BLOCKS = python_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_example_runs_as_written(block: Block) -> None:
    assert block.fixture in FIXTURES, f"{block.id} asks for fixture {block.fixture!r}; known: {sorted(FIXTURES)}"
    environment = dict(os.environ)
    try:
        with FIXTURES[block.fixture]():
            run_block(block)
    finally:  # a block may set variables (LAMBDA_IDEMPOTENCY_DISABLED) or turn metrics on: undo it for the rest
        os.environ.clear()
        os.environ.update(environment)
        disable_metrics()


def test_the_harness_reads_every_page_and_every_python_block() -> None:
    pages = {page.relative_to(ROOT).as_posix() for page in doc_pages()}
    assert {"README.md", "docs/migration-from-powertools.md", "docs/DESIGN.md"} <= pages
    in_readme = [block for block in BLOCKS if block.path.name == "README.md"]
    assert len(in_readme) >= 8, [block.id for block in in_readme]


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


def test_a_failing_block_fails_its_test(tmp_path: Path) -> None:
    page = tmp_path / "README.md"
    page.write_text("```python\nstore.put()\n```\n")
    (block,) = python_blocks(tmp_path)
    with FIXTURES["default"](), pytest.raises(NameError, match="store"):
        run_block(block)
