"""Fixtures: the DynamoDB implementations every store test runs on, and a clock tests can move.

Backends: `MemoryStore`, moto in-process, moto's server over HTTP (item operations serialised, as DynamoDB does),
and the real DynamoDB Local (Java) over HTTP. Servers start once per session on 127.0.0.1 and stop by their own
process. Credentials are fake; nothing reaches AWS.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_LAMBDA_FUNCTION_NAME", None)

import boto3
import pytest
from hypothesis import settings
from lambda_idempotency import DynamoDBStore, MemoryStore, create_table
from lambda_idempotency.stores.base import Store
from lambda_idempotency.testing import dynamodb_local, free_port, moto_server, serialise_moto_dynamodb, wait_for_port
from moto import mock_aws

settings.register_profile("suite", max_examples=40, stateful_step_count=20, deadline=None)
settings.register_profile("long", max_examples=10_000, stateful_step_count=30, deadline=None)
settings.load_profile("suite")
"""Property tests run the small profile in `make test`; `make test-long` passes ``--hypothesis-profile=long``."""

serialise_moto_dynamodb()
"""Every test's moto, in-process or the session's server, applies one item operation at a time, as DynamoDB does. Plain
moto 5.2.5 does not: a lease renewal racing a step's save could lose one of the two updates, and tests whose moto
was not serialised (those not using `client_of`, in a worker where none had run yet) failed so under load."""

DYNAMODB_BACKENDS = ["moto", "moto_server", "dynamodb_local"]
ALL_BACKENDS = ["memory", *DYNAMODB_BACKENDS]
HTTP_BACKENDS = ["moto_server", "dynamodb_local"]
"""Backends reached over real HTTP, which serialise writes to one item: the ones concurrency tests count on."""


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sam_build() -> Path:
    """`make build` (`sam build` of template.yaml into .aws-sam/build), once for the whole run: the template checks,
    the local runtime and `make serve` (served_api) share it. Under pytest-xdist every worker asks for it; a file lock
    lets one build while the others wait, then make finds the build up to date and the others get it as it is."""
    from tests.doc_examples import ROOT, make_environment

    lock = ROOT / ".aws-sam" / "build.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
        result = subprocess.run(
            ["make", "--no-print-directory", "build"],
            cwd=ROOT,
            env=make_environment(),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    return ROOT / ".aws-sam" / "build"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


SHARED_DYNAMODB_LOCAL = "LAMBDA_IDEMPOTENCY_TESTS_DYNAMODB_LOCAL"
"""The URL of the DynamoDB Local that pytest-xdist's controller started for all its workers (`pytest_configure`)."""


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, one DynamoDB Local for every worker, started by the controller before the workers: a JVM
    takes seconds of CPU to start, and each worker starting its own at once took ~30 s of a loaded 2-core machine.
    Sharing is safe: every test makes tables of its own (uuid names). moto's server stays per worker (it runs in the
    worker's own process)."""
    if hasattr(config, "workerinput") or config.getoption("dist", "no") == "no":
        return
    servers = ExitStack()
    config.add_cleanup(servers.close)
    os.environ[SHARED_DYNAMODB_LOCAL] = servers.enter_context(dynamodb_local())
    config.add_cleanup(lambda: os.environ.pop(SHARED_DYNAMODB_LOCAL, None))


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    shared = os.environ.get(SHARED_DYNAMODB_LOCAL)
    if shared:
        yield shared
        return
    with dynamodb_local() as url:
        yield url


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    """dynalite (npm): a DynamoDB implementation that returns no item with a failed condition, nor TTL."""
    root = Path(__file__).resolve().parent.parent
    port = free_port()
    process = subprocess.Popen(
        [str(root / "node_modules" / ".bin" / "dynalite"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def endpoint_of(request: pytest.FixtureRequest, backend: str) -> str:
    """The URL of an HTTP backend's session server (moto_server or dynamodb_local)."""
    fixture = {"moto_server": "moto_endpoint", "dynamodb_local": "dynamodb_local_endpoint"}[backend]
    url: str = request.getfixturevalue(fixture)
    return url


def http_client(endpoint: str) -> Any:
    """A client configured as `DynamoDBStore` configures its own (standard retries, short timeouts)."""
    return DynamoDBStore("unused", endpoint_url=endpoint, region_name="us-east-1").client


@pytest.fixture(scope="session")
def moto_server_client(moto_endpoint: str) -> Any:
    return http_client(moto_endpoint)


@pytest.fixture(scope="session")
def dynamodb_local_client(dynamodb_local_endpoint: str) -> Any:
    return http_client(dynamodb_local_endpoint)


@contextmanager
def client_of(request: pytest.FixtureRequest, backend: str) -> Iterator[Any]:
    """A DynamoDB client of ``backend``: moto in-process (for the block), or a session server's client."""
    if backend == "moto":
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")
    else:
        yield request.getfixturevalue(f"{backend}_client")


def new_dynamodb_store(client: Any) -> DynamoDBStore:
    """A store on a new table (one per test: moto in-process resets shared state between tests)."""
    store = DynamoDBStore(f"idem-{uuid.uuid4().hex[:12]}", client=client)
    create_table(store)
    return store


@pytest.fixture(params=ALL_BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh, empty store on each backend."""
    if request.param == "memory":
        yield MemoryStore()
        return
    with client_of(request, request.param) as client:
        yield new_dynamodb_store(client)


@pytest.fixture(params=DYNAMODB_BACKENDS)
def dynamodb_store(request: pytest.FixtureRequest) -> Iterator[DynamoDBStore]:
    """A fresh `DynamoDBStore` on each DynamoDB implementation."""
    with client_of(request, request.param) as client:
        yield new_dynamodb_store(client)


@dataclass
class CallCounter:
    """Counts DynamoDB API calls a client makes, by operation (botocore's ``before-call`` event)."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def reset(self) -> None:
        self.calls.clear()

    @property
    def total(self) -> int:
        return len(self.calls)


@pytest.fixture
def count_calls() -> Iterator[Callable[[Any], CallCounter]]:
    """``count_calls(client)`` starts counting that client's API calls until the test ends."""
    registered: list[tuple[Any, CallCounter]] = []

    def start(client: Any) -> CallCounter:
        counter = CallCounter()
        client.meta.events.register("before-call.dynamodb", counter)
        registered.append((client, counter))
        return counter

    yield start
    for client, counter in registered:
        client.meta.events.unregister("before-call.dynamodb", counter)


def new_business_table(client: Any, key: str = "id") -> str:
    """A plain table (partition key ``key``, a string) for the DynamoDB writes a function makes."""
    name = f"biz-{uuid.uuid4().hex[:12]}"
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


@pytest.fixture
def restore_environment() -> Iterator[None]:
    """For tests that load example functions: loading one sets its environment (endpoints, table names)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def table_items(store: DynamoDBStore) -> list[dict[str, Any]]:
    """Every item of a store's table, as DynamoDB holds it (a Scan): what someone reading the table sees."""
    items: list[dict[str, Any]] = store.client.scan(TableName=store.table_name)["Items"]
    return items


@pytest.fixture(scope="session")
def served_api(sam_build: Path) -> Iterator[str]:
    """`make serve` on a free port (the README's local API), shared by the README's client example and its curl.
    It asks for `sam_build` first, so that `make serve` finds the session's build up to date instead of building
    again (and never builds into .aws-sam/build while another worker does)."""
    from tests.doc_examples import serve

    with serve() as url:
        yield url


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the local Lambda runtime (`sam_build`'s output: RIE sandboxes, `make serve`) run on one pytest-xdist
    worker, one after another as in a serial run: `make serve` (served_api) starts once per run, and the runtime's
    real function timeouts are not raced by a second batch of cold-starting sandboxes on another worker. A test joins
    by asking for `sam_build` or `served_api`, directly or through a fixture, or by a doc example's fixture comment."""
    from tests.doc_examples import SERVED

    for item in items:
        needs = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        block = callspec.params.get("block") if callspec is not None else None
        if block is not None and block.fixture in SERVED:
            needs.add(SERVED[block.fixture][0])
        if needs & {"sam_build", "served_api"}:
            item.add_marker(pytest.mark.xdist_group("lambda_runtime"))
