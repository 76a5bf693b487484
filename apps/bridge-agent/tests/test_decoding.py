# SPDX-License-Identifier: GPL-2.0-or-later
"""Our own decoding of raw answers, on frames as python-OBD's CAN parser hands them over."""

from obd.protocols import ISO_15765_4_11bit_500k

from obd2_bridge.adapter.decoding import decode_vin, mode01_command, split_mode01

PROTOCOL = ISO_15765_4_11bit_500k(["7E8 06 41 00 BE 3F A8 13"])


def test_vins_ending_in_0_1_2_survive() -> None:
    vin = "1HGCM82633A004350"
    payload = bytes([0x49, 0x02, 0x01]) + vin.encode()
    frames = [
        "7E8 10 14 " + payload[:6].hex(" "),
        "7E8 21 " + payload[6:13].hex(" "),
        "7E8 22 " + payload[13:20].hex(" "),
    ]
    assert decode_vin(PROTOCOL(frames)) == vin


def test_a_multi_pid_answer_is_split_with_python_obds_decoders() -> None:
    commands = {mode01_command(n).pid: mode01_command(n) for n in ("RPM", "SPEED", "COOLANT_TEMP")}
    # 41 0C 1A F8 0D 32 05 7B: RPM 1726, SPEED 50, COOLANT 83; two frames.
    frames = ["7E8 10 08 41 0C 1A F8 0D 32", "7E8 21 05 7B 00 00 00 00 00"]
    values = split_mode01(PROTOCOL(frames), commands)
    assert values == {"RPM": 1726.0, "SPEED": 50.0, "COOLANT_TEMP": 83.0}


def test_pids_left_out_of_a_multi_answer_are_absent() -> None:
    commands = {mode01_command(n).pid: mode01_command(n) for n in ("RPM", "SPEED", "THROTTLE_POS")}
    values = split_mode01(PROTOCOL(["7E8 06 41 0D 32 0C 1A F8"]), commands)
    assert values == {"SPEED": 50.0, "RPM": 1726.0}
