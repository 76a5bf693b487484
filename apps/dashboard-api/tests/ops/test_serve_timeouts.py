"""`obd2-dashboard serve` alone (no nginx in front, as the demo runs) closes connections whose
request headers do not arrive in time: half-open sockets cannot pile up."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve_process import ServeProcess, fresh_storage, serve_process

HEADER_TIMEOUT_S = 1.0
SOCKETS = 150


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    with (
        fresh_storage("sqlite", tmp_path) as storage,
        serve_process(storage, tmp_path, HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S)) as running,
    ):
        yield running


def _closed_by_server(connection: socket.socket) -> bool:
    """True once the server closed the connection (EOF or reset); False while it is open."""
    try:
        return connection.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_half_open_connections_are_closed_within_the_header_timeout(
    server: ServeProcess,
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    connections: list[socket.socket] = []
    try:
        for n in range(SOCKETS):
            connection = socket.create_connection((host, int(port)), timeout=10)
            connections.append(connection)
            if n % 3 == 0:
                continue  # says nothing at all
            partial = b"GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\n" if n % 3 == 1 else b"GE"
            connection.sendall(partial)
        # A keep-alive connection that finished one request, then sends half of the next.
        keep_alive = socket.create_connection((host, int(port)), timeout=10)
        connections.append(keep_alive)
        keep_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert keep_alive.recv(4096).startswith(b"HTTP/1.1 200")
        keep_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost")
        opened = time.monotonic()
        for connection in connections:
            connection.setblocking(False)

        open_ones = list(connections)
        deadline = opened + HEADER_TIMEOUT_S + 10  # only stops a hang
        while open_ones and time.monotonic() < deadline:
            open_ones = [c for c in open_ones if not _closed_by_server(c)]
            time.sleep(0.05)
        assert not open_ones, f"{len(open_ones)} of {len(connections)} connections still open"
        # Not too early either: a client gets its whole header timeout.
        assert time.monotonic() - opened >= HEADER_TIMEOUT_S * 0.5
    finally:
        for connection in connections:
            connection.close()
    # The server is as well as before.
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
