"""Loopback ports for the servers tests and benchmarks start.

A port found free by binding port 0 comes from the kernel's ephemeral range, the same range every
outgoing connection takes its local port from: between the pick and the server's own bind, any
client connection of this or another test may take it, and the server fails to start. So ports
come from below that range, where no connection is given a port by the kernel, and each pytest-
xdist worker takes them from a block of its own, so two workers never pick the same one.
"""

import itertools
import os
import socket
from collections.abc import Iterator
from pathlib import Path

_BLOCK = 1000
_LOWEST = 10000
# Blocks: one for a run without xdist (index 0), then one per worker gw0, gw1, …
_MAX_BLOCKS = 16


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _block_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        return 1 + int(worker[2:]) % (_MAX_BLOCKS - 1)
    return 0


def _candidates() -> Iterator[int]:
    top = _ephemeral_start()
    blocks = (top - _LOWEST) // _BLOCK
    if blocks < 1:
        # An unusual kernel setting leaves no room below the ephemeral range: let the kernel pick.
        while True:
            yield 0
    first = _LOWEST + (_block_index() % blocks) * _BLOCK
    # Start where this process's id points, so that two runs on one machine rarely meet either.
    offset = os.getpid() % _BLOCK
    yield from itertools.cycle([first + (offset + n) % _BLOCK for n in range(_BLOCK)])


_ports = _candidates()


def free_port() -> int:
    """A loopback TCP port nothing listens on and no connection uses, for a server to bind."""
    for _ in range(_BLOCK):
        candidate = next(_ports)
        with socket.socket() as probe:
            try:
                # No SO_REUSEADDR: a port with a connection still in TIME_WAIT is passed over too.
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise RuntimeError("no free loopback port in this worker's block")


def closed_port_url(scheme: str) -> str:
    """A URL on loopback where nothing listens."""
    return f"{scheme}://127.0.0.1:{free_port()}/0"
