# SPDX-License-Identifier: GPL-2.0-or-later
"""The realistic simulated car behind the ELM327: parked, then driving, then a trouble code."""

from obd2_bridge.simulator import ElmSimulator, SimulatedCar
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
