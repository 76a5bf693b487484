"""infra/docker-compose.ops.yml: valid against the compose spec, data on named volumes, every
published port on loopback, pinned (overridable) images, health checks, Redis with AOF and a
required password that its health check uses."""

import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.tests.conftest import REPO, free_port, tool
from obd2_testkit.stack.processes import RedisServer

COMPOSE = REPO / "infra/docker-compose.ops.yml"
LOOPBACK = ("127.0.0.1:", "[::1]:")


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_valid_against_the_compose_spec() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    checked = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def published_beyond_loopback(services: dict[str, Any]) -> list[str]:
    exposed = []
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                if port.get("published") is not None and port.get("host_ip") not in {
                    "127.0.0.1",
                    "::1",
                }:
                    exposed.append(f"{name}: {port}")
            elif not str(port).startswith(LOOPBACK):
                exposed.append(f"{name}: {port}")
        if service.get("network_mode") == "host":
            exposed.append(f"{name}: network_mode host")
    return exposed


def test_no_port_is_bound_beyond_loopback() -> None:
    services = load()["services"]
    assert published_beyond_loopback(services) == []
    assert all(service.get("ports") for service in services.values())


def test_the_loopback_check_catches_public_ports() -> None:
    assert published_beyond_loopback({"a": {"ports": ["5432:5432"]}}) == ["a: 5432:5432"]
    assert published_beyond_loopback({"a": {"ports": ["0.0.0.0:6379:6379"]}}) != []
    assert published_beyond_loopback({"a": {"ports": [{"target": 1, "published": 2}]}}) != []
    assert published_beyond_loopback({"a": {"network_mode": "host"}}) != []


def test_pinned_images_named_volumes_health_checks_and_aof() -> None:
    data = load()
    postgres, redis = data["services"]["postgres"], data["services"]["redis"]
    # Pinned, and replaceable from the compose env file (a mirror, stand-ins built locally).
    assert re.fullmatch(r"\$\{POSTGRES_IMAGE:-postgres:16\.\d+(-\w+)?\}", postgres["image"])
    assert re.fullmatch(r"\$\{REDIS_IMAGE:-redis:7\.\d+\.\d+(-\w+)?\}", redis["image"])
    assert set(data["volumes"]) == {"postgres-data", "redis-data"}
    assert postgres["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert redis["volumes"] == ["redis-data:/data"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


REQUIRED_PASSWORD = re.compile(r"\$\{REDIS_PASSWORD:\?[^}]+\}")


def test_redis_requires_the_password_of_the_compose_env_file() -> None:
    redis = load()["services"]["redis"]
    command = redis["command"]
    # Required: compose refuses to start without it, rather than start a Redis open to all.
    assert REQUIRED_PASSWORD.fullmatch(command[command.index("--requirepass") + 1])
    assert REQUIRED_PASSWORD.fullmatch(redis["environment"]["REDIS_PASSWORD"])
    kind, script = redis["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # $$: the container's shell reads the variable, compose does not paste the password in.
    assert '-a "$$REDIS_PASSWORD"' in script


def healthcheck(port: int, password: str, tmp_path: Path) -> int:
    """The redis service's health check as the container's shell runs it, against a Redis on
    `port` (a redis-cli wrapper adds -p: in the container the port is the default)."""
    script = load()["services"]["redis"]["healthcheck"]["test"][1].replace("$$", "$")
    wrapper = tmp_path / "bin/redis-cli"
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec {tool("redis-cli")} -p {port} "$@"\n')
    wrapper.chmod(0o755)
    return subprocess.run(
        ["sh", "-c", script],
        env={"PATH": f"{wrapper.parent}:/usr/bin:/bin", "REDIS_PASSWORD": password},
        capture_output=True, timeout=30, check=False,
    ).returncode  # fmt: skip


def test_the_health_check_authenticates(tmp_path: Path) -> None:
    password = secrets.token_hex(16)
    server = RedisServer(free_port(), tmp_path, password=password)
    server.start()
    try:
        assert healthcheck(server.port, password, tmp_path) == 0
        assert healthcheck(server.port, secrets.token_hex(16), tmp_path) != 0
        assert healthcheck(server.port, "", tmp_path) != 0
    finally:
        server.kill()
