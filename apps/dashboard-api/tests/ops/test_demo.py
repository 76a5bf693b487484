"""`obd2-dashboard demo` tried as a new user would: start it, read the login, sign in, and find a
month of the demo car's drives."""

import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import CLI, clean_env, free_port


def test_demo_serves_health_and_its_printed_login_works(tmp_path: Path) -> None:
    port = free_port()
    started_ms = int(time.time() * 1000)
    process = subprocess.Popen(
        [str(CLI), "demo", "--port", str(port)],
        env=clean_env(),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        printed: dict[str, str] = {}
        while "password" not in printed:
            line = process.stdout.readline()
            assert line, f"demo stopped before printing a login (exit {process.wait()})"
            key, sep, value = line.partition(": ")
            if sep and key in {"login", "password"}:
                printed[key] = value.strip()
            elif "http://" in line:
                assert f"127.0.0.1:{port}" in line
        base = f"http://127.0.0.1:{port}"
        # The deadline only keeps a demo that never listens from hanging the suite.
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "demo did not start serving"
                time.sleep(0.1)
        assert health.status_code == 200
        assert health.json()["db"] == "ok"
        assert health.json()["redis"] == "embedded"

        with httpx.Client(base_url=base, timeout=30) as client:
            login = client.post(
                "/api/v1/auth/login",
                json={"email": printed["login"], "password": printed["password"]},
            )
            assert login.status_code == 200, login.text
            vehicles = client.get("/api/v1/vehicles").json()
            assert [v["name"] for v in vehicles] == ["Demo car"]
            car = vehicles[0]["id"]
            now = int(time.time() * 1000)
            month = {"from": now - 30 * 86_400_000, "to": now}
            trips = client.get(f"/api/v1/vehicles/{car}/trips", params={**month, "limit": 500})
            assert len(trips.json()) >= 60
            assert all(t["track_points"] > 0 for t in trips.json()[-10:])
            speed = client.get(f"/api/v1/vehicles/{car}/samples", params={**month, "pid": "SPEED"})
            assert len(speed.json()["points"]) >= 60
            # The live car's first drive: a trip of its own, with the phone's GPS track. (The
            # deadline only keeps a demo whose car never drives from hanging the suite.)
            deadline = time.monotonic() + 120
            while True:
                newest = client.get(f"/api/v1/vehicles/{car}/trips", params={"limit": 1})
                trip = newest.json()[0]
                if trip["start_ts"] >= started_ms and trip["track_points"] > 0:
                    break
                assert time.monotonic() < deadline, f"no live trip with a track: {trip}"
                time.sleep(0.5)
            assert not trip["finished"]
            codes = client.get(f"/api/v1/vehicles/{car}/dtcs").json()
            assert {(c["code"], c["kind"]) for c in codes} == {
                ("P0420", "pending"),
                ("P0420", "stored"),
            }
        assert (tmp_path / "var" / "demo" / "obd2-dashboard.sqlite3").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
