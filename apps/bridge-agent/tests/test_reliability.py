# SPDX-License-Identifier: GPL-2.0-or-later
"""Lose nothing: network drops, a killed agent, adapter faults."""

import time
from collections.abc import Callable

from bridge_proxy import CuttableProxy
from bridge_standin import StandInServer
from bridge_support import (
    Agent,
    Emulator,
    api,
    assert_contiguous,
    drain,
    recovered,
    states,
    wait_until,
)

from obd2_bridge.simulator import SimulatorThread


def test_network_drops_mid_drive_and_during_a_flush_lose_and_double_nothing(
    simulator: SimulatorThread, server: StandInServer, make_agent: Callable[..., Agent]
) -> None:
    proxy = CuttableProxy(server.port)
    try:
        agent = make_agent(
            simulator.url, api(proxy.port), voltage_interval_s=3600.0, upload_max_batch=40
        ).start()
        wait_until(lambda: len(server.seqs()) >= 50, 60, "samples before the drop")
        proxy.cut(10.0)  # mid-drive, for 10 s: samples pile up in the spool
        time.sleep(10.0)
        assert agent.backlog() > 40
        before = len(server.seqs())
        wait_until(lambda: len(server.seqs()) > before, 30, "the flush to start")
        assert agent.backlog() > 0
        proxy.cut(2.0)  # and again while the backlog is being flushed
        time.sleep(2.0)
        last = drain(agent, simulator, server)
        assert agent.stop() == 0
    finally:
        proxy.close()
    seqs = server.seqs()
    assert_contiguous(seqs, last)
    assert proxy.connections >= 3
    with server.lock:
        ordered = [server.samples[(1, seq)].ts for seq in seqs]
    assert ordered == sorted(ordered), "seq order and time order disagree"


def test_kill_9_mid_upload_then_restart_loses_and_doubles_nothing(
    simulator: SimulatorThread, server: StandInServer, make_agent: Callable[..., Agent]
) -> None:
    server.ack_delay_s = 0.2  # a batch is in flight most of the time
    agent = make_agent(simulator.url, api(server.port), voltage_interval_s=3600.0).start()
    wait_until(lambda: len(server.seqs()) >= 100, 60, "samples before the kill")
    agent.kill9()
    first_run_last = agent.high_water_mark()
    left_behind = agent.backlog()
    assert left_behind > 0
    agent.start()
    wait_until(lambda: server.seqs()[-1] > first_run_last, 60, "samples of the second run")
    last = drain(agent, simulator, server)
    assert agent.stop() == 0
    seqs = server.seqs()
    first_run = [s for s in seqs if s <= first_run_last]
    second_run = [s for s in seqs if s > first_run_last]
    assert_contiguous(first_run, first_run_last)
    assert_contiguous(second_run, last)
    with server.lock:
        assert server.arrivals - server.duplicates == len(server.samples)


def test_adapter_faults_are_reported_and_recovered(
    simulator: SimulatorThread, server: StandInServer, make_agent: Callable[..., Agent]
) -> None:
    elm = simulator.server.elm
    agent = make_agent(simulator.url, api(server.port)).start()
    wait_until(lambda: "connected" in states(server), 60, "a connected status")

    mark = len(server.frames_of("status"))
    elm.silence_ecu(3.0)  # NO DATA
    wait_until(lambda: "no_ecu" in states(server, mark), 30, "NO DATA reported")
    no_data = [f for f in server.frames_of("status")[mark:] if f["adapter_state"] == "no_ecu"]
    assert "NO DATA" in no_data[0]["adapter_detail"]
    mark, now = len(server.frames_of("status")), int(time.time() * 1000)
    wait_until(lambda: recovered(server, mark, now + 3000), 30, "recovery from NO DATA")

    mark = len(server.frames_of("status"))
    simulator.drop_connections(refuse_for_s=2.0)  # a dead socket
    wait_until(lambda: "no_adapter" in states(server, mark), 30, "the dead socket reported")
    mark, now = len(server.frames_of("status")), int(time.time() * 1000)
    wait_until(lambda: recovered(server, mark, now), 30, "recovery from the dead socket")

    mark = len(server.frames_of("status"))
    elm.ignition_off(4.0)  # UNABLE TO CONNECT on the reconnect
    simulator.drop_connections()
    wait_until(lambda: "no_ecu" in states(server, mark), 30, "UNABLE TO CONNECT reported")
    unable = [f for f in server.frames_of("status")[mark:] if f["adapter_state"] == "no_ecu"]
    assert "ignition off" in unable[0]["adapter_detail"]
    mark, now = len(server.frames_of("status")), int(time.time() * 1000)
    wait_until(lambda: recovered(server, mark, now), 30, "recovery from ignition off")
    assert agent.stop() == 0


def test_emulator_engine_off_is_reported_and_recovered(
    emulator: Emulator, server: StandInServer, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(emulator.url, api(server.port), "--pids", "RPM,SPEED").start()
    wait_until(lambda: len(server.values("RPM")) >= 5, 60, "RPM samples")
    mark = len(server.frames_of("status"))
    emulator.command("engineoff")  # every OBD request: NO DATA
    wait_until(lambda: "no_ecu" in states(server, mark), 30, "NO DATA reported")
    mark, now = len(server.frames_of("status")), int(time.time() * 1000)
    emulator.command("scenario car")
    wait_until(lambda: recovered(server, mark, now), 30, "recovery")
    assert agent.stop() == 0
