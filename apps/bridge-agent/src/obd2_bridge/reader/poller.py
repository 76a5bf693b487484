# SPDX-License-Identifier: GPL-2.0-or-later
"""The reader thread: connect, poll on schedule, spool every sample, look after the battery."""

import logging
import queue
import random
import threading
import time

from obd2_bridge.adapter import AdapterError, NoEcuError, ObdAdapter
from obd2_bridge.adapter.connection import DtcSnapshot
from obd2_bridge.adapter.errors import AdapterLostError, AdapterTimeoutError
from obd2_bridge.config import AgentConfig
from obd2_bridge.reader.schedule import Schedule
from obd2_bridge.spool import Spool
from obd2_bridge.status import AgentState, now_ms
from obd2_protocol import (
    MAX_DETAIL,
    MAX_DTC_DESCRIPTION,
    MAX_DTCS,
    BridgeClearDtcs,
    BridgeCommandResult,
    BridgeDtcReport,
    DtcEntry,
)

log = logging.getLogger(__name__)

# Consecutive timeouts after which the adapter is taken for gone and reconnected.
MAX_TIMEOUTS = 3
# Misses of a PID inside multi-PID answers after which it is asked for on its own.
MULTI_MISSES_BEFORE_SINGLE = 3

OutboundFrame = BridgeDtcReport | BridgeCommandResult


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
        )
        self.slow_names = set(config.slow_pids)
        self._last_dtcs: tuple[object, ...] | None = None

    # ---- the outer loop: connect, poll, reconnect with backoff -----------------------------
    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            self.state.set_adapter("connecting", self.config.adapter)
            try:
                self.adapter.connect()
                failures = 0
                self._session()
            except AdapterError as exc:
                self.state.set_adapter(exc.state, str(exc))
                log.warning("adapter: %s", exc)
                failures += 1
            finally:
                self.adapter.close()
            delay = min(
                self.config.reconnect_max_s, self.config.reconnect_min_s * 2 ** max(0, failures - 1)
            )
            self.stop.wait(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto

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
        self.state.set_adapter("connected", adapter.protocol_name)
        log.info("reading %s (VIN %s)", adapter.protocol_name, self.state.vin)
        self._report_dtcs(force=True)
        last_voltage = 0.0
        last_dtcs = time.monotonic()
        last_engine_on = time.monotonic()
        timeouts = 0
        silent = 0
        while not self.stop.is_set():
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
            try:
                got, engine_on = self._cycle(schedule)
                timeouts = 0
            except AdapterTimeoutError:
                timeouts += 1
                if timeouts >= MAX_TIMEOUTS:
                    raise
                continue
            except NoEcuError as exc:
                log.info("no ECU answer: %s", exc)
                got, engine_on = 0, False
            if engine_on:
                last_engine_on = time.monotonic()
                if got and self.state.adapter_state != "connected":
                    self.state.set_adapter("connected", adapter.protocol_name)
            elif time.monotonic() - last_engine_on >= self.config.engine_off_after_s:
                self._engine_off_heartbeat()
                last_engine_on = time.monotonic()
                last_voltage = 0.0
                continue
            if got == 0:
                silent += 1
                if silent == 2:
                    self.state.set_adapter("no_ecu", "NO DATA: the ECU does not answer")
                    log.warning("the ECU does not answer (NO DATA)")
                self.stop.wait(0.5)  # do not hammer a silent bus
                continue
            silent = 0
            wait = schedule.next_due_in(time.monotonic())
            if wait > 0:
                self.stop.wait(wait)

    # ---- one polling cycle ----------------------------------------------------------------
    def _cycle(self, schedule: Schedule) -> tuple[int, bool]:
        adapter = self.adapter
        multi = adapter.multi_pid
        rows: list[tuple[int, str, float, bool]] = []
        answered = False
        rpm: float | None = None
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
                else:
                    slot.done(done)
            if "RPM" in values:
                rpm = values["RPM"]
        if rows:
            self.spool.append(rows)
            self.state.count_samples(len(rows))
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
        """Engine off: stop waking the ECU; watch the voltage, probe the engine rarely."""
        self.state.set_adapter("engine_off", "engine off: slow heartbeat")
        log.info("engine off: slow heartbeat every %g s", self.config.heartbeat_s)
        last_probe = time.monotonic()
        while not self.stop.wait(self.config.heartbeat_s):
            self._run_commands()
            voltage = self._read_voltage()
            charging = voltage is not None and voltage >= self.config.engine_running_v
            if charging or time.monotonic() - last_probe >= self.config.engine_probe_s:
                last_probe = time.monotonic()
                try:
                    rpm = self.adapter.read_pids(["RPM"]).get("RPM", 0.0)
                except (NoEcuError, AdapterTimeoutError):
                    rpm = 0.0
                if rpm > 0:
                    log.info("engine running again (%.0f rpm)", rpm)
                    self.state.set_adapter("connected", self.adapter.protocol_name)
                    return

    def _low_voltage_pause(self, voltage: float) -> None:
        resume = self.config.pause_below_v + 0.3
        self.state.set_adapter(
            "low_voltage", f"battery {voltage:.1f} V < {self.config.pause_below_v:g} V: paused"
        )
        log.warning("battery at %.1f V: pausing until %.1f V", voltage, resume)
        while not self.stop.wait(self.config.heartbeat_s):
            current = self._read_voltage()
            if current is not None and current >= resume:
                self.state.set_adapter("connected", self.adapter.protocol_name)
                return

    # ---- trouble codes and server commands ---------------------------------------------------
    def _report_dtcs(self, *, force: bool) -> None:
        try:
            snapshot = self.adapter.read_dtcs()
        except (NoEcuError, AdapterTimeoutError) as exc:
            log.info("trouble codes not read: %s", exc)
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
