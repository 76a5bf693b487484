"""Keeps a test's connections on loopback and answers its name lookups from a table of its own.

A test that checks that the product refuses to reach some address must not rely on the product
for it: if the code under test is wrong, the request would leave the machine. With the guard,
``socket.getaddrinfo`` answers only IP literals and the names the test put in ``names`` (no DNS
query is sent), and ``connect`` to anything but loopback raises before any packet and is
recorded in ``attempts``, which the test then asserts is empty.
"""

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class LoopbackOnly:
    names: dict[str, list[str]] = field(default_factory=dict)
    attempts: list[Any] = field(default_factory=list)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False


def loopback_only(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
    """Installs the guard for the rest of the test (monkeypatch undoes it)."""
    guard = LoopbackOnly()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name is None:
            return real_getaddrinfo(host, port, family, type, proto, flags)
        try:
            ipaddress.ip_address(name.partition("%")[0])
        except ValueError:
            pass
        else:  # a literal: no lookup leaves the machine
            return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        answers = guard.names.get(name.lower().removesuffix("."))
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        found: list[Any] = []
        for answer in answers:
            found += real_getaddrinfo(
                answer, port, family, type, proto, flags | socket.AI_NUMERICHOST
            )
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found

    def _check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            guard.attempts.append(address)
            raise PermissionError(f"test network guard: no connection to {address[0]}")

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return guard
