"""The shortcuts the hot path takes must answer what the plain calls they replace answer."""

from __future__ import annotations

import os
import random
from unittest import mock

import pytest
from lambda_idempotency.decorators import disabled
from lambda_idempotency.engine import new_owner


def test_disabled_follows_every_change_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_IDEMPOTENCY_DISABLED", raising=False)
    assert not disabled()
    monkeypatch.setenv("LAMBDA_IDEMPOTENCY_DISABLED", "1")
    assert disabled()
    monkeypatch.setenv("LAMBDA_IDEMPOTENCY_DISABLED", "0")
    assert not disabled()
    monkeypatch.delenv("LAMBDA_IDEMPOTENCY_DISABLED")
    assert not disabled()


def test_disabled_reads_a_replaced_environment() -> None:
    with mock.patch.object(os, "environ", {"LAMBDA_IDEMPOTENCY_DISABLED": "1"}):
        assert disabled()
    with mock.patch.object(os, "environ", {}):
        assert not disabled()


def test_owner_tokens_are_32_hex_digits_and_never_repeat() -> None:
    tokens = {new_owner() for _ in range(10_000)}
    assert len(tokens) == 10_000
    assert all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)


def test_seeding_the_random_module_does_not_repeat_owner_tokens() -> None:
    random.seed(7)
    first = new_owner()
    random.seed(7)
    assert new_owner() != first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_other_tokens_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next token, to the parent
        os.write(write, new_owner().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32
    assert child != new_owner()
