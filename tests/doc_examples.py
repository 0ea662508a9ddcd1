"""The README's and the docs' examples as tests: every ```python block of README.md and docs/**/*.md runs.

A block runs as written, in a fresh module, inside the environment its page names in an HTML comment right above
it (``<!-- example: fixture=NAME -->``). Without one it gets the default: moto's ``mock_aws`` active, fake
credentials, ``AWS_DEFAULT_REGION=us-east-1`` and the table ``IdempotencyTable`` created (RULES.md, "README / docs
examples convention"). New pages are picked up by the glob, new environments are added to `FIXTURES`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<info>[^`\s]*)")
FIXTURE_COMMENT = re.compile(r"^\s*<!--\s*example:\s*fixture=(?P<name>[\w-]+)\s*-->\s*$")
DEFAULT_TABLE = "IdempotencyTable"


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its text, and the environment it asks for."""

    path: Path
    line: int
    language: str
    source: str
    fixture: str = "default"

    @property
    def id(self) -> str:
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{where}:{self.line}"


def doc_pages(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page under docs/ (any depth)."""
    pages = [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]
    return [page for page in pages if page.is_file()]


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of one page, each with the fixture named by the comment right above it (if any)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            line = lines[end]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            end += 1
        above = _previous_text_line(lines, index)
        comment = FIXTURE_COMMENT.match(above) if above is not None else None
        found.append(
            Block(
                page,
                index + 1,
                opening["info"].lower(),
                "\n".join(body) + "\n",
                comment["name"] if comment else "default",
            )
        )
        index = end + 1
    return found


def _previous_text_line(lines: list[str], index: int) -> str | None:
    for line in reversed(lines[:index]):
        if line.strip():
            return line
    return None


def python_blocks(root: Path = ROOT) -> list[Block]:
    return [
        block for page in doc_pages(root) for block in blocks_of(page) if block.language in ("python", "py", "python3")
    ]


def shell_blocks(root: Path = ROOT) -> list[Block]:
    return [block for page in doc_pages(root) for block in blocks_of(page) if block.language in ("bash", "sh", "shell")]


def run_block(block: Block) -> dict[str, Any]:
    """Execute ``block`` as a module of its own (dataclasses, pydantic and return annotations need one)."""
    name = "doc_example_" + re.sub(r"\W", "_", block.id)
    module = types.ModuleType(name)
    module.__file__ = str(block.path)
    sys.modules[name] = module
    try:
        exec(compile(block.source, block.id, "exec"), module.__dict__)
    finally:
        sys.modules.pop(name, None)
    return module.__dict__


# --- the environments a block can ask for ------------------------------------------------------------------------


@contextmanager
def default_environment() -> Iterator[None]:
    """moto in-process, fake credentials, us-east-1, and an empty ``IdempotencyTable``."""
    from lambda_idempotency import DynamoDBStore, create_table
    from lambda_idempotency.testing import serialise_moto_dynamodb
    from moto import mock_aws

    serialise_moto_dynamodb()
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
    with _environ(AWS_DEFAULT_REGION="us-east-1", **fake), mock_aws():
        create_table(DynamoDBStore(DEFAULT_TABLE))
        yield


@contextmanager
def plain_environment() -> Iterator[None]:
    """Nothing set up, as on a developer's machine or a CI runner without AWS configured: no credentials, no region
    (the suite's own fake ones are taken away for the block). For blocks that start their own backends
    (``lambda_idempotency.testing``) or need no AWS at all."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


@contextmanager
def local_api_environment(url: str) -> Iterator[None]:
    """`make serve` running (the template's HTTP functions, embedded DynamoDB) at ``url``, given as ``API_URL``."""
    with _environ(API_URL=url):
        yield


@contextmanager
def serve(timeout: float = 120.0) -> Iterator[str]:
    """Run `make serve PORT=<free port>` as the README says; yields its URL and stops it by its process group."""
    from lambda_idempotency.testing import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"PORT={port}"],
        cwd=ROOT,
        env=make_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        try:
            wait_for_port(port, process, timeout)
        except (RuntimeError, TimeoutError) as exc:
            _stop(process)
            errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"make serve did not start: {exc}\n{errors[-3000:]}") from exc
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def make_environment() -> dict[str, str]:
    """The environment for running this project's make from a test: ``PYTHON`` is the tests' own interpreter.

    The Makefile removes a .venv made by another Python than ``$(PYTHON)``; with the default ``python3`` on PATH
    (which may not be the one that made .venv) a test could remove the .venv it runs from.
    """
    return {**os.environ, "PYTHON": sys.executable}


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the group of the make we started: make and its python
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


FIXTURES: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "default": default_environment,
    "plain": plain_environment,
}
SERVED: dict[str, tuple[str, Callable[[str], AbstractContextManager[None]]]] = {
    "local_api": ("served_api", local_api_environment),
}
"""Environments around a session fixture of tests/conftest.py (its name, and what to do with its value)."""


def environment(name: str, fixture_value: Callable[[str], Any]) -> AbstractContextManager[None]:
    """The environment a block asks for; ``fixture_value`` is pytest's ``request.getfixturevalue``."""
    if name in SERVED:
        fixture, make = SERVED[name]
        return make(fixture_value(fixture))
    if name not in FIXTURES:
        known = sorted([*FIXTURES, *SERVED])
        raise LookupError(f"no example fixture {name!r}; known: {known} (tests/doc_examples.py)")
    return FIXTURES[name]()
