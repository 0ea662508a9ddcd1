"""The storm (bench/storm.py) on the HTTP backends: 64 threads, every key exactly one execution.

Short storm here (5,000 invocations per backend: 50 keys x 100, so duplicates collide in flight); the long one
(1,000 keys x 100 = 100,000 invocations) is marked slow and runs with `make test-long`. moto's server has its item
operations serialised (`lambda_idempotency.testing`), as DynamoDB serialises writes to an item; DynamoDB Local does
so itself.
"""

from __future__ import annotations

import pytest

from bench.storm import HEADER, run_storm

from .conftest import HTTP_BACKENDS, endpoint_of

THREADS = 64


def storm(request: pytest.FixtureRequest, backend: str, keys: int, per_key: int) -> None:
    report = run_storm(endpoint_of(request, backend), backend, keys=keys, per_key=per_key, threads=THREADS)
    print(f"\n{HEADER}\n{report.row()}")
    assert report.invocations == keys * per_key
    assert report.executions_per_key() == {1}
    assert report.outcomes["executed"] == keys
    assert report.wrong_answers == []
    assert report.duplicates_absorbed == keys * per_key - keys


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
def test_short_storm_runs_every_key_exactly_once(request: pytest.FixtureRequest, backend: str) -> None:
    storm(request, backend, keys=50, per_key=100)


@pytest.mark.slow
@pytest.mark.parametrize("backend", HTTP_BACKENDS)
def test_long_storm_runs_every_key_exactly_once(request: pytest.FixtureRequest, backend: str) -> None:
    storm(request, backend, keys=1000, per_key=100)
