"""infra/docker-compose.ops.yml: valid against the compose spec, data on named volumes, every
published port on loopback, pinned images, health checks, Redis with AOF."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.tests.conftest import REPO

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
    assert re.fullmatch(r"postgres:16\.\d+(-\w+)?", postgres["image"])
    assert re.fullmatch(r"redis:7\.\d+\.\d+(-\w+)?", redis["image"])
    assert set(data["volumes"]) == {"postgres-data", "redis-data"}
    assert postgres["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert redis["volumes"] == ["redis-data:/data"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
