import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from obd2_testkit.commands import DASHBOARD_CLI
from obd2_testkit.ports import free_port
from tests.conftest import REDIS_URL, SESSION_SECRET, Backend

CLI = DASHBOARD_CLI


def _worker_pids(parent: int) -> set[int]:
    # Besides its workers, the supervisor has multiprocessing's resource tracker as a child.
    pids = set()
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            pids.add(int(child))
    return pids


def test_serve_refuses_several_workers_on_the_embedded_broker(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [CLI, "serve", "--workers", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "REDIS_URL" in result.stderr
    bad = subprocess.run(
        [CLI, "serve", "--workers", "0"], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert "--workers" in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_worker_processes_serve_one_port(backend: Backend, redis_prefix: str) -> None:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        "SESSION_SECRET": SESSION_SECRET,
    }
    process = subprocess.Popen(
        [CLI, "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        pids: set[int] = set()
        while time.monotonic() < deadline and process.poll() is None:
            workers = _worker_pids(process.pid)
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if healthy.status_code == 200 and len(workers) == 2:
                pids = workers
                break
            time.sleep(0.2)
        assert len(pids) == 2, "two worker processes answering"
    finally:
        process.terminate()
        process.wait(30)
    assert process.returncode == 0


def test_workers_that_start_slowly_are_waited_for(
    backend: Backend, redis_prefix: str, tmp_path: Path
) -> None:
    # On a small or busy server a worker's start (importing the app) can take longer than
    # uvicorn's default health-ping deadline, 5 s: uvicorn then killed and replaced the workers
    # for ever. Here every worker process sleeps 7 s before it imports anything.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, time\n"
        "if any('spawn_main' in argument for argument in sys.orig_argv):\n"
        "    time.sleep(7)\n"
    )
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(tmp_path),
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        "SESSION_SECRET": SESSION_SECRET,
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [CLI, "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and process.poll() is None and not ready:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.5)
        assert ready, log.read_text()[-2000:]
        assert "died" not in log.read_text(), "uvicorn replaced a worker that was starting"
    finally:
        process.terminate()
        process.wait(30)
