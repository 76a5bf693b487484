"""Helpers for the operations tests: repository paths, free ports, throwaway databases."""

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from obd2_testkit.ports import free_port

__all__ = ["free_port"]

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("OBD2_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("OBD2_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def tool(name: str) -> str:
    """The path of a tool tools/bootstrap.sh installs; a missing one fails the test loudly."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"{name} is not installed: run tools/bootstrap.sh (make install)")


def find_uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), f"{Path.home()}/.local/bin/uv"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("uv is not installed: run tools/bootstrap.sh")


def pg_url(database: str) -> str:
    return f"{PG_ADMIN_URL.rpartition('/')[0]}/{database}"


def psql(url: str, statement: str) -> str:
    out = subprocess.run(
        ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", url, "-c", statement],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A new empty database; it and any database named after it are dropped afterwards."""
    name = f"obd2_ops_{uuid.uuid4().hex[:12]}"
    psql(PG_ADMIN_URL, f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        listed = psql(PG_ADMIN_URL, "SELECT datname FROM pg_database").splitlines()
        for leftover in (n for n in listed if n.startswith(name)):
            psql(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{leftover}" WITH (FORCE)')
