# SPDX-License-Identifier: GPL-2.0-or-later
"""``obd2-bridge run`` against ELM327-emulator and our simulated car, uploading to the stand-in."""

import subprocess
from collections.abc import Callable
from pathlib import Path

from bridge_standin import StandInServer
from bridge_support import BIN, Agent, Emulator, free_port, wait_until

from obd2_bridge.simulator import SimulatorThread


def api(server: StandInServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_run_against_the_emulator_uploads_its_values(
    emulator: Emulator, server: StandInServer, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(
        emulator.url, api(server), "--pids", "RPM,SPEED", "--slow-pids", "COOLANT_TEMP"
    ).start()
    wait_until(lambda: len(server.values("COOLANT_TEMP")) >= 2, 60, "coolant samples")
    wait_until(lambda: len(server.values("RPM")) >= 20, 60, "RPM samples")
    assert agent.stop() == 0
    # The emulator's car scenario answers 41 05 7B: 123 - 40 = 83 °C, every time.
    assert set(server.values("COOLANT_TEMP")) == {83.0}
    assert all(0 < rpm < 8000 for rpm in server.values("RPM"))
    assert server.ws_batches > 0
    status = server.frames_of("status")[-1]
    assert status["protocol"] == "ISO 15765-4 (CAN 11/500)"
    assert status["vin"] in {"WP0ZZZ99ZTS390000", "MAT403096BNL00000", "SB1ZS3JE60E282102"}


def test_run_against_our_simulator_cli_uploads_a_drive(
    server: StandInServer, make_agent: Callable[..., Agent], tmp_path: Path
) -> None:
    port = free_port()
    simulate = subprocess.Popen(
        [str(BIN / "obd2-bridge"), "simulate", "--port", str(port), "--dtc", "P0301"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        agent = make_agent(f"socket://127.0.0.1:{port}", api(server)).start()
        wait_until(lambda: len(server.values("SPEED")) >= 50, 60, "SPEED samples")
        wait_until(lambda: server.frames_of("dtcs"), 30, "a DTC report")
        # Status frames are periodic: under load the first ones can precede reading the VIN.
        wait_until(
            lambda: any(f["vin"] == "1HGCM82633A004352" for f in server.frames_of("status")),
            30,
            "a status frame with the VIN",
        )
        assert agent.stop() == 0
    finally:
        simulate.terminate()
        simulate.wait(10)
    report = server.frames_of("dtcs")[0]
    assert [d["code"] for d in report["stored"]] == ["P0301"]
    assert report["freeze_dtc"] == "P0301"
    assert "RPM" in report["freeze_frame"]
    assert all(0 <= v <= 100 for v in server.values("THROTTLE_POS"))
    assert max(server.values("RPM")) > 700


def test_clear_dtcs_only_on_the_servers_command(
    simulator: SimulatorThread, server: StandInServer, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(simulator.url, api(server)).start()
    wait_until(lambda: server.frames_of("dtcs"), 30, "a DTC report")
    wait_until(lambda: server.ws_batches > 2, 30, "WebSocket uploads")
    assert [d["code"] for d in server.frames_of("dtcs")[0]["stored"]] == ["P0143"]
    server.send_command({"type": "clear_dtcs", "id": 7})
    wait_until(lambda: server.frames_of("command_result"), 30, "the command's result")
    result = server.frames_of("command_result")[0]
    assert result == {
        "type": "command_result",
        "id": 7,
        "command": "clear_dtcs",
        "ok": True,
        "detail": "",
    }
    wait_until(lambda: len(server.frames_of("dtcs")) >= 2, 30, "a DTC report after clearing")
    after = server.frames_of("dtcs")[-1]
    assert after["stored"] == []
    assert after["pending"] == []
    assert [d["code"] for d in after["permanent"]] == ["U0100"]  # permanent codes stay
    assert agent.stop() == 0
