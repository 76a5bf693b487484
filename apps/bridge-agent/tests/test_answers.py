# SPDX-License-Identifier: GPL-2.0-or-later
"""Every ELM327 answer class, classified once."""

from collections.abc import Callable

import pytest

from obd2_bridge.adapter import ObdAdapter
from obd2_bridge.adapter.answers import Condition, classify
from obd2_bridge.simulator import SimulatorThread


def test_data_after_bus_init_ok_and_searching_is_kept() -> None:
    # An ISO 9141-2 car woken by the ELM: the data frame follows the informational lines.
    answer = classify("010C", ["SEARCHING...", "BUS INIT: ...OK", "48 6B 10 41 0C 0B B8 A3"])
    assert answer.data == ["48 6B 10 41 0C 0B B8 A3"]
    assert answer.condition is None
    assert answer.informational == ["SEARCHING...", "BUS INIT: ...OK"]


@pytest.mark.parametrize(
    ("line", "condition"),
    [
        ("NO DATA", Condition.NO_DATA),
        ("UNABLE TO CONNECT", Condition.UNABLE_TO_CONNECT),
        ("BUS INIT: ...ERROR", Condition.BUS_INIT_ERROR),
        ("STOPPED", Condition.STOPPED),
        ("BUFFER FULL", Condition.BUFFER_FULL),
        ("CAN ERROR", Condition.CAN_ERROR),
        ("?", Condition.UNKNOWN_COMMAND),
        ("FB ERROR", Condition.BUS_ERROR),
        ("<RX ERROR", Condition.DATA_ERROR),
    ],
)
def test_each_condition_is_named(line: str, condition: Condition) -> None:
    answer = classify("010C", ["SEARCHING...", line])
    assert answer.condition is condition
    assert not answer.data


def test_the_adapter_conditions_call_for_a_reset_the_ecu_ones_do_not() -> None:
    stuck = {c for c in Condition if c.adapter_stuck}
    assert stuck == {
        Condition.STOPPED,
        Condition.BUFFER_FULL,
        Condition.UNKNOWN_COMMAND,
        Condition.CAN_ERROR,
        Condition.ECHO,
    }
    assert Condition.NO_DATA.no_ecu
    assert Condition.UNABLE_TO_CONNECT.no_ecu


def test_a_stuck_echo_is_seen_and_does_not_hide_the_data() -> None:
    answer = classify("010C", ["010C", "7E8 04 41 0C 0B B8"])
    assert answer.echoed
    assert answer.data == ["7E8 04 41 0C 0B B8"]
    only_echo = classify("010C", ["010C"])
    assert only_echo.condition is Condition.ECHO


def test_silence_is_no_condition_and_no_data() -> None:
    answer = classify("010C", [])
    assert answer.condition is None
    assert not answer.data


def test_an_old_clone_that_does_not_know_mode_0a_still_reads_the_car(
    make_simulator: Callable[..., SimulatorThread],
) -> None:
    # ELM327 v1.x clones answer "?" to modes they do not know: that is "nothing", not a lock-up.
    simulator = make_simulator()
    simulator.server.elm.unknown_modes = {0x0A, 0x09}
    adapter = ObdAdapter(simulator.url, timeout_s=5.0)
    adapter.connect()
    try:
        assert adapter.read_vin() is None
        assert adapter.read_dtcs().permanent == []
        assert "RPM" in adapter.read_pids(["RPM"])
    finally:
        adapter.close()
