"""A TCP proxy on 127.0.0.1 that drops connections after the server has answered: the lost-response failure.

The server has done the work and written its response; the proxy reads the first bytes of that response and,
when ``should_drop`` says so, resets the client's connection instead of forwarding them. The client sees a
dropped connection (``RemoteProtocolError``) and cannot know whether its request ran.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress


class DroppingProxy:
    def __init__(self, upstream_port: int, should_drop: Callable[[bytes], bool]) -> None:
        self.upstream_port = upstream_port
        self.should_drop = should_drop
        self.dropped: list[bytes] = []
        self.forwarded = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopped = threading.Event()

    def serve(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def stop(self) -> None:
        """Stop accepting; shutting the listener down wakes the blocked ``accept`` (closing alone does not)."""
        self._stopped.set()
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
            first = upstream.recv(65536)
            with self._lock:
                drop = bool(first) and self.should_drop(first)
                if drop:
                    self.dropped.append(first)
                else:
                    self.forwarded += 1
            if drop:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.shutdown(socket.SHUT_RDWR)
                return
            client.sendall(first)
            _pipe(upstream, client)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@contextmanager
def dropping_proxy(upstream_port: int, should_drop: Callable[[bytes], bool]) -> Iterator[DroppingProxy]:
    proxy = DroppingProxy(upstream_port, should_drop)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.stop()
        thread.join(5)


def first_execution(response_head: bytes) -> bool:
    """A 201 that is not a replay: the response of the execution that did the work."""
    head = response_head.split(b"\r\n\r\n", 1)[0].lower()
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
    return status == b"201" and b"idempotent-replayed" not in head
