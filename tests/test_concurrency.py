"""Many threads, one key: exactly one execution, the others see in-flight, then every retry replays.

Runs on DynamoDB Local (which serialises writes to an item, as DynamoDB does) and on moto's server with its item
operations serialised by `lambda_idempotency.testing` (plain moto 5.2.5 lets two conditional claims both win).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from lambda_idempotency import InProgressError, idempotent_function

from .conftest import HTTP_BACKENDS, client_of, new_dynamodb_store

THREADS = 32
KEYS = 50


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
def test_32_threads_one_key_one_execution(request: pytest.FixtureRequest, backend: str) -> None:
    with client_of(request, backend) as client:
        store = new_dynamodb_store(client)
        executions: Counter[str] = Counter()
        lock = threading.Lock()
        refused = {f"key-{i}": threading.Semaphore(0) for i in range(KEYS)}

        @idempotent_function(store, key="k", operation="race", lease=60, local_cache=False)
        def work(k: str) -> str:
            with lock:
                executions[k] += 1
            # Hold the claim until every other thread has been turned away (a second execution would wait here
            # in vain and fail the test by its count, not hang it).
            for _ in range(THREADS - 1):
                if not refused[k].acquire(timeout=20):
                    break
            return f"done-{k}"

        def attempt(k: str, barrier: threading.Barrier) -> str:
            barrier.wait()
            try:
                return work(k)
            except InProgressError as exc:
                assert exc.retry_after >= 1
                refused[k].release()
                return "in-flight"

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for index in range(KEYS):
                key = f"key-{index}"
                barrier = threading.Barrier(THREADS)
                results = Counter(pool.map(lambda _, k=key, b=barrier: attempt(k, b), range(THREADS)))
                assert results == {f"done-{key}": 1, "in-flight": THREADS - 1}
                replays = list(pool.map(lambda _, k=key: work(k), range(THREADS)))
                assert replays == [f"done-{key}"] * THREADS

        assert executions == dict.fromkeys((f"key-{i}" for i in range(KEYS)), 1)
        assert sum(executions.values()) == KEYS
