# SPDX-License-Identifier: GPL-2.0-or-later
"""The reader thread: connect, poll on schedule, spool every sample, look after the battery."""

import logging
import queue
import random
import threading
import time

from obd2_bridge.adapter import AdapterError, NoEcuError, ObdAdapter
from obd2_bridge.adapter.connection import DtcSnapshot
from obd2_bridge.adapter.errors import AdapterLostError, AdapterTimeoutError, NoAdapterError
from obd2_bridge.adapter.memory import AdapterMemory
from obd2_bridge.config import AgentConfig
from obd2_bridge.reader.schedule import Schedule
from obd2_bridge.spool import Spool
from obd2_bridge.status import AgentState, now_ms
from obd2_protocol import (
    MAX_DETAIL,
    MAX_DTC_DESCRIPTION,
    MAX_DTCS,
    AdapterState,
    BridgeClearDtcs,
    BridgeCommandResult,
    BridgeDtcReport,
    DtcEntry,
)

log = logging.getLogger(__name__)

# Escalation for a silent or stuck adapter, counted in consecutive failed requests: the first
# is reported and retried, the second gets a warm start (ATWS), the next a reconnect (ATZ).
WARM_START_AFTER = 2
RECONNECT_AFTER = 3
# While the car was answering this recently, reconnects stay short: it is probably running.
LIKELY_RUNNING_S = 120.0
LIKELY_RUNNING_RECONNECT_MAX_S = 2.0
# Nothing at the port at all (the adapter is powered with the car, a Bluetooth adapter out of
# range): trying again costs the car nothing, and a car that starts is read within seconds.
ADAPTER_ABSENT_RECONNECT_MAX_S = 1.0
# How long the engine-off watch listens to a CAN bus (ATMA) for a car that woke up.
BUS_LISTEN_S = 0.2
# The file, next to the spool, that remembers what each adapter takes.
ADAPTER_MEMORY_FILE = "adapters.json"
# A voltage this far above the engine-off resting voltage means the alternator is charging.
ENGINE_START_RISE_V = 0.4
# Misses of a PID inside multi-PID answers after which it is asked for on its own.
MULTI_MISSES_BEFORE_SINGLE = 3

OutboundFrame = BridgeDtcReport | BridgeCommandResult


class ReconnectError(AdapterTimeoutError):
    """A warm start did not help: the session ends and the adapter is connected afresh."""


class ReconnectBackoff:
    """How long to wait before connecting again: doubling from ``min_s`` to ``max_s`` while
    attempts fail; back to ``min_s`` after a session that read data; short while the car
    answered recently (it is probably running) or while nothing is at the port at all."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.failures = 0

    def next_delay(self, *, read_data: bool, since_data_s: float, absent: bool) -> float:
        self.failures = 0 if read_data else self.failures + 1
        delay = min(self.max_s, self.min_s * 2.0 ** max(0, self.failures - 1))
        if since_data_s < LIKELY_RUNNING_S:
            delay = min(delay, LIKELY_RUNNING_RECONNECT_MAX_S)
        if absent:
            delay = min(delay, ADAPTER_ABSENT_RECONNECT_MAX_S)
        return delay


class Reader:
    def __init__(
        self,
        config: AgentConfig,
        spool: Spool,
        state: AgentState,
        commands: "queue.Queue[BridgeClearDtcs]",
        outbound: "queue.Queue[OutboundFrame]",
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.spool = spool
        self.state = state
        self.commands = commands
        self.outbound = outbound
        self.stop = stop
        self.adapter = ObdAdapter(
            config.adapter,
            baudrate=config.baudrate,
            protocol=config.protocol,
            timeout_s=config.adapter_timeout_s,
            multi_pid=config.multi_pid,
            count_hints=config.response_count_hints,
            tune_timing=config.tune_adapter_timing,
            memory=AdapterMemory(config.spool.with_name(ADAPTER_MEMORY_FILE)),
        )
        self.slow_names = set(config.slow_pids)
        self._last_dtcs: tuple[object, ...] | None = None
        self._logged: tuple[str, str] = ("", "")
        self._last_data = -LIKELY_RUNNING_S
        self._data_since_connect = False
        # The last trouble recovered from: a lock-up cured in milliseconds stays visible.
        self._recovered_from = ""

    # ---- the outer loop: connect, poll, reconnect with backoff -----------------------------
    def run(self) -> None:
        backoff = ReconnectBackoff(self.config.reconnect_min_s, self.config.reconnect_max_s)
        self._set_state("connecting", self.config.adapter, quiet=True)
        while not self.stop.is_set():
            # While reconnecting, the status keeps saying why the last attempt failed.
            self._data_since_connect = False
            absent = False
            try:
                self.adapter.connect()
                self._session()
            except AdapterError as exc:
                self._set_state(exc.state, str(exc))
                self._remember_trouble(exc, "reconnecting")
                # Lost mid-session is not absent: a dying adapter is not hammered.
                absent = type(exc) is NoAdapterError
            finally:
                self.adapter.close()
            delay = backoff.next_delay(
                read_data=self._data_since_connect,
                since_data_s=time.monotonic() - self._last_data,
                absent=absent,
            )
            self.stop.wait(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto

    def _connected_detail(self) -> str:
        name = self.adapter.protocol_name
        return f"{name}; {self._recovered_from}" if self._recovered_from else name

    def _remember_trouble(self, exc: AdapterError, cure: str) -> None:
        what = exc.condition.value if exc.condition is not None else exc.state
        self._recovered_from = f"recovered from {what} by {cure} at {time.strftime('%H:%M:%S')}"

    def _set_state(self, state: AdapterState, detail: str, *, quiet: bool = False) -> None:
        """Report a state; log it once when it changes, not on every request."""
        self.state.set_adapter(state, detail)
        if (state, detail) != self._logged and not quiet:
            self._logged = (state, detail)
            if state in ("connected", "engine_off"):
                log.info("adapter %s: %s", state, detail)
            else:
                log.warning("adapter %s: %s", state, detail)

    def _session(self) -> None:
        adapter = self.adapter
        self.state.protocol = adapter.protocol_name
        self.state.vin = adapter.read_vin() or self.state.vin
        schedule = Schedule(
            list(self.config.fast_pids),
            list(self.config.slow_pids),
            fast_interval_s=self.config.fast_interval_s,
            slow_interval_s=self.config.slow_interval_s,
        )
        dropped = schedule.restrict(adapter.supported)
        if dropped:
            log.warning("the car does not support %s: not polled", ", ".join(dropped))
        self._set_state("connected", self._connected_detail())
        log.info("reading %s (VIN %s)", adapter.protocol_name, self.state.vin)
        self._report_dtcs(force=True)
        last_voltage = 0.0
        last_dtcs = time.monotonic()
        last_engine_on = time.monotonic()
        failed = 0
        silent = 0
        while not self.stop.is_set():
            try:
                self._run_commands()
                now = time.monotonic()
                if now - last_voltage >= self.config.voltage_interval_s:
                    last_voltage = now
                    voltage = self._read_voltage()
                    if voltage is not None and voltage < self.config.pause_below_v:
                        self._low_voltage_pause(voltage)
                        last_engine_on = time.monotonic()
                        continue
                if now - last_dtcs >= self.config.dtc_interval_s:
                    last_dtcs = now
                    self._report_dtcs(force=False)
                got, engine_on = self._cycle(schedule)
                failed = 0
            except AdapterTimeoutError as exc:
                failed += 1
                self._escalate(exc, failed)
                continue
            except NoEcuError as exc:
                failed = 0
                got, engine_on = 0, False
                if silent >= 1:
                    self._set_state("no_ecu", str(exc))
            if engine_on:
                last_engine_on = time.monotonic()
                if got and self.state.adapter_state != "connected":
                    self._set_state("connected", self._connected_detail())
            elif time.monotonic() - last_engine_on >= self.config.engine_off_after_s:
                self._engine_off_heartbeat()
                last_engine_on = time.monotonic()
                last_voltage = 0.0
                continue
            if got == 0:
                silent += 1
                if silent == 2 and self.state.adapter_state == "connected":
                    self._set_state("no_ecu", "NO DATA: the ECU does not answer")
                self.stop.wait(0.5)  # do not hammer a silent bus
                continue
            silent = 0
            wait = schedule.next_due_in(time.monotonic())
            if wait > 0:
                self.stop.wait(wait)

    def _escalate(self, exc: AdapterTimeoutError, failed: int) -> None:
        """Report at once; warm-start a stuck or silent adapter; then reconnect (ATZ)."""
        if failed < WARM_START_AFTER:
            self._set_state(exc.state, str(exc))
            return
        if failed >= RECONNECT_AFTER:
            raise ReconnectError(f"{exc}: reconnecting (ATZ)", exc.condition)
        self._set_state(exc.state, f"{exc}: warm start (ATWS)")
        self._remember_trouble(exc, "ATWS")
        try:
            self.adapter.warm_start()
        except AdapterTimeoutError as again:
            raise ReconnectError(f"{again}: reconnecting (ATZ)", again.condition) from again

    # ---- one polling cycle ----------------------------------------------------------------
    def _cycle(self, schedule: Schedule) -> tuple[int, bool]:
        adapter = self.adapter
        multi = adapter.multi_pid
        rows: list[tuple[int, str, float, bool]] = []
        answered = False
        rpm: float | None = None
        unanswered: list[str] = []
        for request in schedule.plan(time.monotonic(), multi=multi):
            values = adapter.read_pids(request)
            ts = now_ms()
            done = time.monotonic()
            if values:
                answered = True
            for name in request:
                slot = schedule.slot(name)
                if name in values:
                    slot.multi_misses = 0
                    slot.done(done)
                    rows.append((ts, name, values[name], name in self.slow_names))
                elif len(request) > 1 and values:
                    # The ECU answered the others but left this one out: ask for it alone.
                    slot.multi_misses += 1
                    if slot.multi_misses >= MULTI_MISSES_BEFORE_SINGLE:
                        slot.single_only = True
                        log.info("%s is not answered in multi-PID requests: read alone", name)
                elif len(request) == 1:
                    unanswered.append(name)
                else:
                    slot.done(done)
            if "RPM" in values:
                rpm = values["RPM"]
        done = time.monotonic()
        for name in unanswered:
            slot = schedule.slot(name)
            if answered:  # the ECU is there, this PID is not: its own retry schedule
                retry = slot.missed(done)
                if slot.dead_misses == 1:
                    log.info("%s is not answered: retried in %g s, then less often", name, retry)
            else:
                slot.done(done)
        if rows:
            self.spool.append(rows)
            self.state.count_samples(len(rows))
            self._last_data = time.monotonic()
            self._data_since_connect = True
        # RPM 0 with the ECU answering is ignition on, engine off: it counts as off too.
        return len(rows), (rpm > 0) if rpm is not None else answered

    def _read_voltage(self) -> float | None:
        voltage = self.adapter.voltage()
        if voltage is not None:
            self.state.battery_voltage = voltage
            self.spool.append([(now_ms(), "ELM_VOLTAGE", voltage, True)])
            self.state.count_samples(1)
        return voltage

    # ---- battery care -------------------------------------------------------------------
    def _engine_off_heartbeat(self) -> None:
        """Engine off: stop waking the ECU; watch the voltage, probe the engine rarely.

        ATRV asks the adapter, not the car, so it is watched often; a rise above the resting
        voltage (or the absolute charging threshold) means the engine started. On CAN the bus
        is listened to as well (ATMA, BUS_LISTEN_S): a car's ECUs talk as soon as it wakes,
        whatever its battery reads, so RPM is asked at once.
        """
        self._set_state("engine_off", "engine off: slow heartbeat")
        last_probe = last_sample = time.monotonic()
        resting: float | None = None
        awake = False
        while not self.stop.wait(self.config.engine_watch_s):
            self._run_commands()
            voltage = self.adapter.voltage()
            if voltage is not None:
                self.state.battery_voltage = voltage
                if time.monotonic() - last_sample >= self.config.heartbeat_s:
                    last_sample = time.monotonic()
                    self.spool.append([(now_ms(), "ELM_VOLTAGE", voltage, True)])
                    self.state.count_samples(1)
                resting = voltage if resting is None else min(resting, voltage)
            charging = voltage is not None and (
                voltage >= self.config.engine_running_v
                or (resting is not None and voltage - resting >= ENGINE_START_RISE_V)
            )
            woke = self.adapter.can_monitor and self.adapter.bus_traffic(BUS_LISTEN_S)
            if woke != awake:
                awake = woke
                log.info("CAN bus %s", "traffic: the car woke" if woke else "quiet again")
            if charging or woke or time.monotonic() - last_probe >= self.config.engine_probe_s:
                last_probe = time.monotonic()
                try:
                    rpm = self.adapter.read_pids(["RPM"]).get("RPM", 0.0)
                except (NoEcuError, AdapterTimeoutError):
                    rpm = 0.0
                if rpm > 0:
                    # The trip's first sample: spooled now, not a cycle later.
                    self.spool.append([(now_ms(), "RPM", rpm, "RPM" in self.slow_names)])
                    self.state.count_samples(1)
                    self._last_data = time.monotonic()
                    self._data_since_connect = True
                    log.info("engine running again (%.0f rpm)", rpm)
                    self._set_state("connected", self.adapter.protocol_name)
                    return
                if charging:
                    resting = voltage  # a rise that was not the engine: measure from here

    def _low_voltage_pause(self, voltage: float) -> None:
        resume = self.config.pause_below_v + 0.3
        self._set_state(
            "low_voltage",
            f"battery {voltage:.1f} V < {self.config.pause_below_v:g} V: paused until "
            f"{resume:.1f} V",
        )
        while not self.stop.wait(self.config.heartbeat_s):
            current = self._read_voltage()
            if current is not None and current >= resume:
                self._set_state("connected", self.adapter.protocol_name)
                return

    # ---- trouble codes and server commands ---------------------------------------------------
    def _report_dtcs(self, *, force: bool) -> None:
        try:
            snapshot = self.adapter.read_dtcs()
        except NoEcuError as exc:
            log.debug("trouble codes not read: %s", exc)
            return
        if not force and snapshot.key() == self._last_dtcs:
            return
        self._last_dtcs = snapshot.key()
        self.outbound.put(_dtc_report(snapshot))

    def _run_commands(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                self.adapter.clear_dtcs()
                result = BridgeCommandResult(id=command.id, command="clear_dtcs", ok=True)
                log.warning("trouble codes cleared on the server's command %d", command.id)
            except AdapterLostError:
                self.commands.put(command)  # run it once the adapter is back
                raise
            except AdapterError as exc:
                result = BridgeCommandResult(
                    id=command.id, command="clear_dtcs", ok=False, detail=str(exc)[:MAX_DETAIL]
                )
            self.outbound.put(result)
            self._report_dtcs(force=True)


def _dtc_report(snapshot: DtcSnapshot) -> BridgeDtcReport:
    def entries(codes: list[tuple[str, str]]) -> list[DtcEntry]:
        # Within the wire's limits, or the server would refuse the whole report.
        return [DtcEntry(code=c, description=d[:MAX_DTC_DESCRIPTION]) for c, d in codes[:MAX_DTCS]]

    return BridgeDtcReport(
        ts=now_ms(),
        stored=entries(snapshot.stored),
        pending=entries(snapshot.pending),
        permanent=entries(snapshot.permanent),
        freeze_dtc=snapshot.freeze_dtc,
        freeze_frame=snapshot.freeze_frame,
    )
