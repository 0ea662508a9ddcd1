"""The local demo (README's first command): its story holds on moto, and it notices when idempotency is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.__main__ import main
from demo.stack import LocalStack
from demo.story import Story

pytestmark = pytest.mark.usefixtures("restore_environment")


def test_the_demo_story_holds_every_invariant_on_the_lambda_runtime(
    capsys: pytest.CaptureFixture[str], sam_build: Path
) -> None:
    """`make demo` as it runs by default: the functions on RIE, a real timeout in chapter 7."""
    assert main(["--build-dir", str(sam_build)]) == 0
    out = capsys.readouterr().out
    assert "the runtime stopped it: Task timed out after 5.00 seconds" in out
    assert "Summary: 4 charges for 4 payments, 3 emails sent for 3 email ids, 0 failed checks." in out
    assert "FAIL" not in out


def test_the_demo_fails_when_the_functions_are_not_idempotent(moto_endpoint: str) -> None:
    stack = LocalStack.create(dynamodb_endpoint=moto_endpoint, aws_endpoint=moto_endpoint)
    stack.overrides = {"LAMBDA_IDEMPOTENCY_DISABLED": "1", "POWERTOOLS_LOG_LEVEL": "CRITICAL"}
    lines: list[str] = []
    assert Story(stack, say=lines.append).run() is False
    failed = [line.strip() for line in lines if line.strip().startswith("FAIL")]
    assert any("emails sent, one per email_id" in line for line in failed), lines
