# SPDX-License-Identifier: GPL-2.0-or-later
from obd2_bridge.reader import Schedule


def test_fast_pids_are_always_asked_and_slow_ones_fill_in() -> None:
    schedule = Schedule(
        ["RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD"],
        ["COOLANT_TEMP", "INTAKE_TEMP", "FUEL_LEVEL", "MAF", "INTAKE_PRESSURE"],
        slow_interval_s=1.0,
    )
    first = schedule.plan(0.0, multi=True)
    assert first[0][:4] == ["RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD"]
    assert len(first) == 2  # one fast request, at most one more for slow PIDs
    assert all(len(r) <= 6 for r in first)
    for request in first:
        for name in request:
            schedule.slot(name).done(0.0)
    second = schedule.plan(0.5, multi=True)
    assert second == [["RPM", "SPEED", "THROTTLE_POS", "ENGINE_LOAD"]]


def test_without_multi_pid_every_due_slow_pid_gets_its_request() -> None:
    # An old K-line car: slow PIDs keep their configured rate, the fast ones share the rest.
    schedule = Schedule(["RPM", "SPEED"], ["COOLANT_TEMP", "FUEL_LEVEL"], slow_interval_s=1.0)
    assert schedule.plan(0.0, multi=False) == [["RPM"], ["SPEED"], ["COOLANT_TEMP"], ["FUEL_LEVEL"]]
    for name in ("RPM", "SPEED", "COOLANT_TEMP", "FUEL_LEVEL"):
        schedule.slot(name).done(0.0)
    assert schedule.plan(0.5, multi=False) == [["RPM"], ["SPEED"]]
    assert schedule.plan(1.0, multi=False) == [["RPM"], ["SPEED"], ["COOLANT_TEMP"], ["FUEL_LEVEL"]]


def test_a_dead_pid_is_retried_later_and_later_until_it_answers_again() -> None:
    schedule = Schedule(["RPM", "THROTTLE_POS"], [])
    slot = schedule.slot("THROTTLE_POS")
    retries = [slot.missed(0.0) for _ in range(10)]
    assert retries[:3] == [5.0, 10.0, 20.0]
    assert retries[-1] == 300.0
    assert schedule.plan(1.0, multi=False) == [["RPM"]]
    assert schedule.plan(300.0, multi=False) == [["RPM"], ["THROTTLE_POS"]]
    slot.done(300.0)
    assert slot.missed(300.0) == 5.0


def test_pids_the_ecu_leaves_out_of_multi_answers_are_asked_alone() -> None:
    schedule = Schedule(["RPM", "SPEED", "THROTTLE_POS"], [])
    schedule.slot("THROTTLE_POS").single_only = True
    assert schedule.plan(0.0, multi=True) == [["RPM", "SPEED"], ["THROTTLE_POS"]]


def test_unsupported_pids_are_dropped() -> None:
    schedule = Schedule(["RPM", "SPEED"], ["OIL_TEMP"])
    assert schedule.restrict({"RPM", "SPEED"}) == ["OIL_TEMP"]
    assert schedule.plan(0.0, multi=True) == [["RPM", "SPEED"]]
