# SPDX-License-Identifier: GPL-2.0-or-later
"""What the agent remembers about each adapter, and how long it waits before reconnecting."""

import json
from pathlib import Path

from obd2_bridge.adapter.memory import AdapterMemory, AdapterTraits
from obd2_bridge.reader.poller import (
    ADAPTER_ABSENT_RECONNECT_MAX_S,
    LIKELY_RUNNING_RECONNECT_MAX_S,
    LIKELY_RUNNING_S,
    ReconnectBackoff,
)

CLONE = "ELM327 v1.5 at socket://127.0.0.1:35000"


def test_what_an_adapter_refused_is_remembered_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "adapters.json"
    memory = AdapterMemory(path)
    assert memory.traits(CLONE) == AdapterTraits()
    traits = memory.traits(CLONE)
    traits.count_hints_multi = False
    traits.timeout_tuning, traits.timeout_units = True, 0x19
    memory.remember(CLONE, traits)
    again = AdapterMemory(path)  # the agent restarted
    assert again.traits(CLONE) == traits
    assert again.traits("ELM327 v2.1 at /dev/rfcomm0") == AdapterTraits()
    assert json.loads(path.read_text())["adapters"][CLONE]["count_hints_multi"] is False
    assert not list(tmp_path.glob("*.partial"))


def test_a_corrupt_or_unreadable_memory_starts_afresh_and_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "adapters.json"
    for text in ("{not json", '["a list"]', '{"version": 99, "adapters": {}}'):
        path.write_text(text)
        memory = AdapterMemory(path)
        assert memory.traits(CLONE) == AdapterTraits()
    # Values of the wrong kind are ignored one by one, the rest kept.
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "adapters": {
                    CLONE: {"monitor": "yes", "count_hints_single": False, "timeout_units": 999}
                },
            }
        )
    )
    assert AdapterMemory(path).traits(CLONE) == AdapterTraits(count_hints_single=False)
    # A directory where the file should be: neither reading nor writing it stops the agent.
    path.unlink()
    path.mkdir()
    memory = AdapterMemory(path)
    memory.remember(CLONE, AdapterTraits(monitor=False))
    assert memory.traits(CLONE).monitor is False  # still remembered while the agent runs


def test_reconnect_waits_double_reset_after_a_success_and_stay_short_while_likely_running() -> None:
    backoff = ReconnectBackoff(1.0, 60.0)
    parked = LIKELY_RUNNING_S + 1  # the car last answered long ago
    waits = [
        backoff.next_delay(read_data=False, since_data_s=parked, absent=False) for _ in range(8)
    ]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    # A session that read data: the next failure waits the minimum again.
    assert backoff.next_delay(read_data=True, since_data_s=0.0, absent=False) == 1.0
    assert backoff.next_delay(read_data=False, since_data_s=parked, absent=False) == 1.0
    assert backoff.next_delay(read_data=False, since_data_s=parked, absent=False) == 2.0
    # The car answered a minute ago: it is probably running, reconnects stay short.
    for _ in range(10):
        wait = backoff.next_delay(read_data=False, since_data_s=60.0, absent=False)
        assert wait == LIKELY_RUNNING_RECONNECT_MAX_S
    # Nothing at the port at all (an adapter powered with the car): short as well.
    wait = backoff.next_delay(read_data=False, since_data_s=parked, absent=True)
    assert wait == ADAPTER_ABSENT_RECONNECT_MAX_S
    assert backoff.next_delay(read_data=False, since_data_s=parked, absent=False) == 60.0
