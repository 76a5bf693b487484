# SPDX-License-Identifier: GPL-2.0-or-later
"""Lose nothing: network drops, a killed agent, adapter faults."""

import time
from collections.abc import Callable

from bridge_proxy import CuttableProxy
from bridge_standin import StandInServer
from bridge_support import Agent, Emulator, wait_until

from obd2_bridge.simulator import SimulatorThread


def api(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def assert_contiguous(seqs: list[int], last: int) -> None:
    assert seqs, "the server holds no sample"
    assert len(seqs) == len(set(seqs))
    missing = sorted(set(range(seqs[0], last + 1)) - set(seqs))
    assert not missing, f"{len(missing)} seqs never arrived, first {missing[:5]}"
    assert seqs[-1] == last


def drain(agent: Agent, simulator: SimulatorThread, server: StandInServer) -> int:
    """Stop the car producing samples, wait until the spool is empty; returns the last seq."""
    elm = simulator.server.elm
    asked = elm.requests
    elm.silence_ecu(120)
    # The cycle in progress is spooled when it ends, and a cycle makes at most one request per
    # PID (nine): once the adapter has had more requests than that since the silence began,
    # that cycle is over and nothing more will be spooled.
    wait_until(lambda: elm.requests > asked + 2 * 9, 60, "a whole cycle after the silence")
    wait_until(lambda: agent.backlog() == 0, 60, "the spool to drain")
    last = agent.high_water_mark()
    wait_until(lambda: server.seqs()[-1:] == [last], 30, "the last sample on the server")
    return last


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


def _states(server: StandInServer, since: int = 0) -> list[str]:
    return [f["adapter_state"] for f in server.frames_of("status")[since:]]


def _recovered(server: StandInServer, since: int, after_ms: int) -> bool:
    if "connected" not in _states(server, since):
        return False
    with server.lock:
        return any(s.ts > after_ms and s.pid == "RPM" for s in server.samples.values())


def test_adapter_faults_are_reported_and_recovered(
    simulator: SimulatorThread, server: StandInServer, make_agent: Callable[..., Agent]
) -> None:
    elm = simulator.server.elm
    agent = make_agent(simulator.url, api(server.port)).start()
    wait_until(lambda: "connected" in _states(server), 60, "a connected status")

    mark = len(server.frames_of("status"))
    elm.silence_ecu(3.0)  # NO DATA
    wait_until(lambda: "no_ecu" in _states(server, mark), 30, "NO DATA reported")
    no_data = [f for f in server.frames_of("status")[mark:] if f["adapter_state"] == "no_ecu"]
    assert "NO DATA" in no_data[0]["adapter_detail"]
    mark, now = len(server.frames_of("status")), int(time.time() * 1000)
    wait_until(lambda: _recovered(server, mark, now + 3000), 30, "recovery from NO DATA")

    mark = len(server.frames_of("status"))
    simulator.drop_connections(refuse_for_s=2.0)  # a dead socket
    wait_until(lambda: "no_adapter" in _states(server, mark), 30, "the dead socket reported")
    mark, now = len(server.frames_of("status")), int(time.time() * 1000)
    wait_until(lambda: _recovered(server, mark, now), 30, "recovery from the dead socket")

    mark = len(server.frames_of("status"))
    elm.ignition_off(4.0)  # UNABLE TO CONNECT on the reconnect
    simulator.drop_connections()
    wait_until(lambda: "no_ecu" in _states(server, mark), 30, "UNABLE TO CONNECT reported")
    unable = [f for f in server.frames_of("status")[mark:] if f["adapter_state"] == "no_ecu"]
    assert "ignition off" in unable[0]["adapter_detail"]
    mark, now = len(server.frames_of("status")), int(time.time() * 1000)
    wait_until(lambda: _recovered(server, mark, now), 30, "recovery from ignition off")
    assert agent.stop() == 0


def test_emulator_engine_off_is_reported_and_recovered(
    emulator: Emulator, server: StandInServer, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(emulator.url, api(server.port), "--pids", "RPM,SPEED").start()
    wait_until(lambda: len(server.values("RPM")) >= 5, 60, "RPM samples")
    mark = len(server.frames_of("status"))
    emulator.command("engineoff")  # every OBD request: NO DATA
    wait_until(lambda: "no_ecu" in _states(server, mark), 30, "NO DATA reported")
    mark, now = len(server.frames_of("status")), int(time.time() * 1000)
    emulator.command("scenario car")
    wait_until(lambda: _recovered(server, mark, now), 30, "recovery")
    assert agent.stop() == 0
