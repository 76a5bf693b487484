# SPDX-License-Identifier: GPL-2.0-or-later
import json
import subprocess

from bridge_support import BIN, Emulator, free_port


def test_scan_of_the_emulator_reports_protocol_vin_and_pids(emulator: Emulator) -> None:
    result = subprocess.run(
        [str(BIN / "obd2-bridge"), "scan", "--adapter", emulator.url, "--json"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    scan = json.loads(result.stdout)
    assert scan["protocol"] == "ISO 15765-4 (CAN 11/500)"
    # The emulator's first VIN ends in 0: python-OBD 0.7.3 alone would cut it short.
    assert scan["vin"] == "WP0ZZZ99ZTS390000"
    assert {"RPM", "SPEED", "COOLANT_TEMP", "THROTTLE_POS"} <= set(scan["supported_pids"])
    assert scan["dtcs"]["stored"] == []
    assert scan["voltage"] > 11


def test_scan_without_an_adapter_says_so(tmp_path: object) -> None:
    port = free_port()
    result = subprocess.run(
        [str(BIN / "obd2-bridge"), "scan", "--adapter", f"socket://127.0.0.1:{port}", "--json"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["state"] == "no_adapter"
    assert "no adapter at" in result.stderr.decode() or "no ELM327" in result.stderr.decode()
