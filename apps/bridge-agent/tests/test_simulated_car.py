# SPDX-License-Identifier: GPL-2.0-or-later
"""The realistic simulated car behind the ELM327: parked, then driving, then a trouble code."""

import contextlib
import socket
import time

from obd2_bridge.simulator import DriveCycle, ElmSimulator, SimulatedCar, SimulatorThread
from obd2_bridge.simulator.elm import ElmSettings
from obd2_protocol import demo_car


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _payload(lines: list[str]) -> bytes:
    return bytes.fromhex("".join(line for line in lines if line != "SEARCHING..."))


def test_the_realistic_car_is_parked_then_drives_as_the_model_does() -> None:
    clock = Clock()
    car = SimulatedCar(clock=clock, realistic=15)
    elm = ElmSimulator(car)
    settings = ElmSettings()
    # Parked with the engine off: no ECU on the bus, only the adapter's voltage.
    assert elm.answer(settings, "010C") == ["SEARCHING...", "UNABLE TO CONNECT"]
    assert elm.answer(settings, "ATRV")[0].startswith("12.")
    speeds: list[float] = []
    second = 10
    clock.now = float(second)
    while car.state().engine_on or not speeds:
        state = car.state()
        answer = _payload(elm.answer(settings, "010D0C"))
        assert answer[:2] == b"\x41\x0d"
        assert answer[2] == round(state.speed_kmh)
        assert answer[3] == 0x0C
        assert int.from_bytes(answer[4:6], "big") == round(state.rpm * 4)
        if not speeds:
            assert elm.answer(settings, "ATRV")[0].startswith("14.")  # charging now
        speeds.append(state.speed_kmh)
        second += 5
        clock.now = float(second)
    assert max(speeds) > 100  # the first drive goes to work on the motorway
    assert 0.0 in speeds[3:-1]  # and stops on the way (red lights)
    assert 8 * 60 < second < 20 * 60
    # Parked at work: the ECU is silent again.
    assert elm.answer(settings, "010D") == ["NO DATA"]


def test_the_realistic_car_finds_its_code_pending_then_confirms_it_a_drive_later() -> None:
    clock = Clock()
    car = SimulatedCar(clock=clock, realistic=15)
    elm = ElmSimulator(car)
    settings = ElmSettings()
    code = demo_car.DTC_CODE
    pending_at = stored_at = None
    off_between = False
    for second in range(0, 4 * 3600, 2):
        clock.now = float(second)
        state = car.state()
        if pending_at is not None and not state.engine_on:
            off_between = True
        if pending_at is None and code in state.pending_dtcs:
            pending_at = second
            assert _payload(elm.answer(settings, "07")) == b"\x47\x01\x04\x20"
            assert _payload(elm.answer(settings, "03")) == b"\x43\x00"
        if code in state.stored_dtcs:
            stored_at = second
            break
    assert pending_at is not None
    assert stored_at is not None
    assert off_between  # confirmed on a later drive, not the same one
    assert _payload(elm.answer(settings, "03")) == b"\x43\x01\x04\x20"
    assert _payload(elm.answer(settings, "07")) == b"\x47\x00"
    # The check-engine light is on, and the freeze frame kept the moment.
    assert _payload(elm.answer(settings, "0101"))[2] & 0x80
    assert _payload(elm.answer(settings, "020D00"))[3] > 40


def test_a_code_stored_before_is_kept_and_its_story_not_told_again() -> None:
    clock = Clock()
    car = SimulatedCar(clock=clock, realistic=15)
    car.set_dtcs([demo_car.DTC_CODE])
    frozen = car.state().freeze_frame
    assert frozen is not None
    assert frozen[0x0D] > 40  # a moment of driving, not the standing car
    for second in range(0, 3 * 3600, 10):
        clock.now = float(second)
        state = car.state()
        assert state.pending_dtcs == []
        assert state.stored_dtcs == [demo_car.DTC_CODE]


# ---- the ELM's timing (ATST) and its bus monitor (ATMA), as the datasheet has them ------------
def test_an_ecu_slower_than_the_atst_wait_reads_no_data() -> None:
    car = SimulatedCar(DriveCycle(engine_off_s=0.0))
    elm = ElmSimulator(car, request_delay_s=0.1)  # the ECU answers after 100 ms
    settings = ElmSettings()
    assert _payload(elm.answer(settings, "010D"))[:2] == b"\x41\x0d"  # 200 ms: in time
    assert elm.answer(settings, "ATST14") == ["OK"]  # 80 ms
    assert elm.answer(settings, "010D") == ["NO DATA"]
    assert elm.answer(settings, "ATAT1") == ["OK"]
    assert elm.answer(settings, "ATST00") == ["OK"]  # back to the default
    assert _payload(elm.answer(settings, "010D"))[:2] == b"\x41\x0d"
    elm.answer(settings, "ATST14")
    elm.answer(settings, "ATWS")  # a warm start restores the default too
    assert settings.timeout_units == 0x32
    assert elm.timeouts_set == [0x14, 0x32, 0x14]


def test_an_old_clone_refuses_atst_atma_and_response_counts() -> None:
    car = SimulatedCar(DriveCycle(engine_off_s=0.0))
    elm = ElmSimulator(car, knows_timeout=False, knows_counts=False, knows_monitor=False)
    settings = ElmSettings()
    assert elm.answer(settings, "ATST19") == ["?"]
    assert elm.answer(settings, "010C1") == ["?"]
    assert elm.answer(settings, "ATMA") == ["?"]
    assert _payload(elm.answer(settings, "010C"))[:2] == b"\x41\x0c"
    assert elm.refusals == 3


def _talk(port: int, request: bytes, *, stop_after_s: float | None = None) -> str:
    """One request on a raw socket; with ``stop_after_s``, a space after that long (ATMA)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as link:
        link.sendall(request + b"\r")
        received = b""
        if stop_after_s is not None:
            stop_at = time.monotonic() + stop_after_s
            while b">" not in received and (left := stop_at - time.monotonic()) > 0:
                link.settimeout(left)
                with contextlib.suppress(TimeoutError):
                    received += link.recv(4096)
            link.settimeout(10)
            if b">" not in received:
                link.sendall(b" ")
        while b">" not in received:
            received += link.recv(4096)
        return received.decode()


def test_atma_shows_the_woken_bus_until_a_byte_stops_it() -> None:
    cycle = DriveCycle(idle_s=60.0, accelerate_s=0, cruise_s=0, brake_s=0, stop_s=0)
    with SimulatorThread(ElmSimulator(SimulatedCar(cycle))) as sim:
        said = _talk(sim.server.port, b"ATMA", stop_after_s=0.3)
        lines = [line for line in said.replace(">", "").split("\r") if line]
        assert lines[0] == "ATMA"  # the echo (ATE0 not sent)
        assert lines[-1] == "STOPPED"
        assert len(lines) > 3
        assert all(len(bytes.fromhex(line)) >= 8 for line in lines[1:-1])
        # The ELM is itself again: the next request is answered.
        assert "ELM327" in _talk(sim.server.port, b"ATI")
        sim.server.elm.ignition_off(60.0)  # asleep: the bus is quiet
        said = _talk(sim.server.port, b"ATMA", stop_after_s=0.3)
        assert [line for line in said.replace(">", "").split("\r") if line] == ["ATMA", "STOPPED"]
        assert sim.server.elm.monitors == 2
