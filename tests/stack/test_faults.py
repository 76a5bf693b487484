"""Faults in the whole stack while agents upload and viewers watch through nginx.

One stack for the module (two API processes and two workers behind nginx, its own PostgreSQL
cluster and Redis server so that both can be restarted, two agents: one on ELM327-emulator, one
on the simulated car), faults one after another. Each test ends with the same two checks:
every sample the agents spooled is stored exactly once (the agents' ledgers against the
``samples`` table, and seq continuity per device), and every viewer, resuming with
``Last-Event-ID``, got every sample of its vehicle without a gap or a repeat, or a ``reset``
that tells it to reload. Derived data is then checked against a recomputation.
"""

import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from obd2_dashboard.telemetry.streams import WORK_GROUP, WORK_STREAM
from obd2_testkit.stack.harness import (
    Agent,
    Endpoint,
    Fleet,
    Stack,
    StackConfig,
    ViewerLog,
    ViewerPool,
    check_live,
    check_stored_exactly_once,
    now_ms,
    wait_live,
    wait_stored,
)
from obd2_testkit.stack.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("stack")]

VIEWERS_PER_VEHICLE = 3


@dataclass
class Faults:
    stack: Stack
    fleet: Fleet
    agents: list[Agent]
    cookie: str

    @contextmanager
    def viewing(self) -> Iterator[list[ViewerLog]]:
        """Viewers on every vehicle for the duration of a fault, all stack parts running."""
        self.stack.ensure_running()
        endpoint = Endpoint.of(self.stack.url, self.stack.site.cert)
        pool = ViewerPool(endpoint, self.cookie, self.fleet.vehicles, VIEWERS_PER_VEHICLE)
        with pool.running():
            time.sleep(1.5)
            yield pool.logs

    def settle_and_check(
        self, viewers: list[ViewerLog], *, lost_batches: int = 0, timeout: float = 60
    ) -> None:
        until = now_ms()
        wait_stored(self.stack, self.agents, until, timeout)
        wait_live(viewers, self.agents, until)
        for agent in self.agents:
            check_stored_exactly_once(self.stack, agent, until)
        by_vehicle = {a.device.vehicle_id: a for a in self.agents}
        for viewer in viewers:
            check_live(viewer, by_vehicle[viewer.vehicle_id], until, lost_batches=lost_batches)
        # Rollups trail ingest by design: compared once nothing new arrives.
        for agent in self.agents:
            agent.freeze()
        try:
            # A batch already on its way when they froze may land after any fixed pause: the
            # check is that the rollups come to equal the raw rows, whenever that last one lands.
            self.stack.wait_rollups_match(timeout)
        finally:
            for agent in self.agents:
                agent.thaw()


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    config = StackConfig(apis=2, workers=2, own_postgres=True, own_redis=True)
    stack = Stack(tmp_path_factory.mktemp("stack"), config).start()
    try:
        fleet = stack.fleet(vehicles=2)
        agents = [
            stack.add_agent(fleet.devices[0], "elm", "agent-elm"),
            stack.add_agent(fleet.devices[1], "simulate", "agent-sim"),
        ]
        for agent in agents:
            agent.start()
        for agent in agents:
            agent.wait_producing()
        yield Faults(stack, fleet, agents, stack.sign_in(fleet.email))
    finally:
        stack.stop()


def test_api_processes_killed_one_then_the_other(faults: Faults) -> None:
    stack = faults.stack
    with faults.viewing() as viewers:
        for index in (0, 1):
            time.sleep(2)
            stack.kill_api(index)
            time.sleep(4)  # everything goes through the other process meanwhile
            stack.restart_api(index)
        # A batch committed in the instant before its process died is stored but was never
        # put on the live stream: at most one such run per kill.
        faults.settle_and_check(viewers, lost_batches=2)
    # The viewers on each killed process came back through nginx, to the other one.
    assert sum(v.connects for v in viewers) > len(viewers)


def _pending_of(stack: Stack, pid: int) -> int:
    consumer = f"{socket.gethostname()}-{pid}"
    redis = stack.redis.client()
    try:
        summary = redis.xpending(f"{stack.redis.prefix}{WORK_STREAM}", WORK_GROUP)
    finally:
        redis.close()
    return sum(int(c["pending"]) for c in summary["consumers"] or [] if c["name"] == consumer)


def test_worker_killed_mid_batch(faults: Faults) -> None:
    stack = faults.stack
    with faults.viewing() as viewers:
        victim, other = stack.live_workers()[:2]
        # Work piles up while both workers are frozen; then one takes a batch and dies with it.
        for worker in (victim, other):
            os.kill(worker.pid, signal.SIGSTOP)
        time.sleep(3)
        os.kill(victim.pid, signal.SIGCONT)
        wait_until(lambda: _pending_of(stack, victim.pid) > 0, 30, "the worker to take a batch")
        victim.kill9()
        os.kill(other.pid, signal.SIGCONT)
        stack.start_worker()
        faults.settle_and_check(viewers)
    # What the dead worker held is claimed by the others and acknowledged.
    wait_until(lambda: _pending_of(stack, victim.pid) == 0, 30, "the dead worker's batch")


def test_redis_restarted(faults: Faults) -> None:
    stack = faults.stack
    server = stack.redis.server
    assert server is not None
    with faults.viewing() as viewers:
        time.sleep(2)
        server.kill()
        time.sleep(4)
        server.start()  # empty: nothing was persisted
        faults.settle_and_check(viewers)
    # Batches stored while Redis was away never reached the live stream: each viewer was told.
    assert all(v.resets for v in viewers)


def test_postgres_restarted(faults: Faults) -> None:
    cluster = faults.stack.db.cluster
    assert cluster is not None
    with faults.viewing() as viewers:
        time.sleep(2)
        cluster.crash()
        time.sleep(4)
        cluster.start()
        faults.settle_and_check(viewers)


def test_agents_network_cut_for_30_s(faults: Faults) -> None:
    with faults.viewing() as viewers:
        time.sleep(2)
        for agent in faults.agents:
            agent.proxy.cut()
        time.sleep(30)
        # Meanwhile the agents went on reading into their spools.
        assert all(agent.backlog() > 100 for agent in faults.agents)
        for agent in faults.agents:
            agent.proxy.restore()
        faults.settle_and_check(viewers, timeout=90)


def test_agent_restarted_with_a_full_spool(faults: Faults) -> None:
    agent = faults.agents[1]
    with faults.viewing() as viewers:
        agent.proxy.cut()
        time.sleep(4)  # a backlog of its own readings
        agent.kill9()
        # And a long drive's worth, read while the car had no network.
        agent.prefill(20_000)
        backlog = agent.backlog()
        assert backlog > 20_000
        agent.proxy.restore()
        agent.start()
        wait_until(lambda: agent.backlog() < 1_000, 90, "the restarted agent to drain its spool")
        faults.settle_and_check(viewers, timeout=90)
