# SPDX-License-Identifier: GPL-2.0-or-later
"""One ELM327 connection through python-OBD, with errors that say what is wrong."""

import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import obd
import serial
from obd.protocols.protocol import Message
from obd.utils import OBDStatus

from obd2_bridge.adapter.answers import Answer, Condition, classify
from obd2_bridge.adapter.decoding import (
    MAX_PIDS_PER_REQUEST,
    decode_dtcs,
    decode_freeze_value,
    decode_vin,
    mode01_command,
    split_mode01,
)
from obd2_bridge.adapter.errors import (
    AdapterError,
    AdapterLostError,
    AdapterStuckError,
    AdapterTimeoutError,
    NoAdapterError,
    NoEcuError,
    UnsupportedProtocolError,
)
from obd2_bridge.adapter.memory import AdapterMemory, AdapterTraits

log = logging.getLogger(__name__)

CAN_PROTOCOL_IDS = frozenset({"6", "7", "8", "9"})
ELM_PROMPT = b">"
# PIDs a freeze frame is read for when the car stored one (mode 02, frame 0).
FREEZE_FRAME_PIDS = ("RPM", "SPEED", "COOLANT_TEMP", "ENGINE_LOAD", "INTAKE_PRESSURE", "MAF")
# ATST, in the ELM's units of 4 ms: its default (200 ms), and the floor of a tuned value: twice
# the 50 ms an ECU may take to answer on CAN (SAE J1979's P2 max), since a tuned wait shorter
# than the ECU's answer makes a working PID read NO DATA.
ATST_UNIT_S = 0.004
ATST_DEFAULT = 0x32
ATST_FLOOR = 0x19
# A tuned wait is the slowest measured answer times this, plus ATST_SLACK_S for link jitter.
ATST_MARGIN = 1.5
ATST_SLACK_S = 0.02
TIMING_SAMPLES = 3
# The request timed when tuning: supported PIDs 01-20, which every OBD-II ECU answers.
TIMING_REQUEST = b"0100"
# Any character stops ATMA; a space, unlike a CR, is ignored should the ELM have stopped by
# itself already (a lone CR would repeat the last command).
MONITOR_STOP = b" "


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _captured_obd_errors() -> Iterator[_Capture]:
    """python-OBD reports why a connection failed only through its log: keep what it said."""
    capture = _Capture()
    logger = logging.getLogger("obd")
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)


@dataclass(slots=True)
class DtcSnapshot:
    stored: list[tuple[str, str]] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    permanent: list[tuple[str, str]] = field(default_factory=list)
    freeze_dtc: str | None = None
    freeze_frame: dict[str, float] = field(default_factory=dict)

    def key(self) -> tuple[object, ...]:
        return (tuple(self.stored), tuple(self.pending), tuple(self.permanent), self.freeze_dtc)


class ObdAdapter:
    """Blocking; used from one thread. Every failure raises an ``AdapterError`` subclass."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int | None = 38400,
        protocol: str | None = None,
        timeout_s: float = 5.0,
        multi_pid: bool = True,
        count_hints: bool = True,
        tune_timing: bool = True,
        memory: AdapterMemory | None = None,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.multi_pid_enabled = multi_pid
        self.count_hints = count_hints
        self.tune_timing = tune_timing
        self.memory = memory or AdapterMemory(None)
        self._obd: Any = None
        self._frame_counts: dict[bytes, int] = {}
        self.identity = ""
        self.traits = AdapterTraits()
        # The ATST in force once tuned (re-sent after a warm start); None: the ELM's default.
        self.timeout_units: int | None = None
        self.supported: set[str] = set()
        self.single_only: set[str] = set()
        self.requests = 0
        self.warm_starts = 0
        self.echo_stuck = False

    # ---- connecting ---------------------------------------------------------------------
    def connect(self) -> None:
        self.close()
        if self.baudrate is not None:  # at an unknown baud rate only python-OBD can find it
            probe(self.port, self.baudrate, self.timeout_s)
        with _captured_obd_errors() as capture:
            try:
                connection = obd.OBD(
                    self.port,
                    baudrate=self.baudrate,
                    protocol=self.protocol,
                    fast=False,
                    check_voltage=True,
                )
            except Exception as exc:  # python-OBD lets some serial errors escape
                raise NoAdapterError(f"no adapter at {self.port}: {exc}") from exc
        status = connection.status()
        said = "; ".join(capture.messages[-3:]) or "no answer"
        if status == OBDStatus.CAR_CONNECTED:
            self._obd = connection
            self._set_read_timeout(self.timeout_s)
            self.supported = {
                c.name for c in connection.supported_commands if c.mode == 1 and c.pid not in (0,)
            }
            self._frame_counts.clear()
            self.single_only.clear()
            self.echo_stuck = False
            self._recall()
            if self.tune_timing and self.traits.timeout_tuning is not False:
                self._tune_timeout()
            return
        connection.close()
        if status == OBDStatus.OBD_CONNECTED:
            if any("protocol" in m.lower() and "valid" in m.lower() for m in capture.messages):
                raise UnsupportedProtocolError(
                    f"protocol {self.protocol!r} is not one the ELM327 knows (use 1-9 or A)"
                )
            if any("determine protocol" in m for m in capture.messages):
                raise UnsupportedProtocolError(
                    f"the adapter at {self.port} found no OBD-II protocol it can speak"
                )
            raise NoEcuError(
                f"adapter at {self.port} answers but no ECU does: ignition off? ({said})"
            )
        if status == OBDStatus.ELM_CONNECTED:
            raise NoEcuError(
                f"adapter at {self.port} answers but reads no vehicle voltage: "
                f"not plugged into the car? ({said})"
            )
        raise NoAdapterError(f"no ELM327 answering at {self.port} (baud {self.baudrate}): {said}")

    def _set_read_timeout(self, seconds: float) -> None:
        # python-OBD opens the port with a fixed 10 s timeout; ours is configurable.
        port = getattr(self._obd.interface, "_ELM327__port", None)
        if port is not None:
            port.timeout = seconds

    @property
    def connected(self) -> bool:
        return self._obd is not None and self._obd.status() == OBDStatus.CAR_CONNECTED

    @property
    def protocol_name(self) -> str:
        return str(self._obd.protocol_name()) if self._obd is not None else ""

    @property
    def protocol_id(self) -> str:
        return str(self._obd.protocol_id()) if self._obd is not None else ""

    @property
    def multi_pid(self) -> bool:
        return self.multi_pid_enabled and self.protocol_id in CAN_PROTOCOL_IDS

    def close(self) -> None:
        if self._obd is not None:
            try:
                self._obd.close()
            except Exception:  # closing a dead port must not stop a reconnect
                log.debug("closing the adapter failed", exc_info=True)
            self._obd = None

    # ---- raw requests -------------------------------------------------------------------
    def _port(self) -> Any:
        if self._obd is None:
            raise AdapterLostError(f"adapter at {self.port} is not connected")
        port = getattr(self._obd.interface, "_ELM327__port", None)
        if port is None:
            self._obd = None
            raise AdapterLostError(f"adapter at {self.port} went away")
        return port

    def exchange(self, request: bytes, *, deadline_s: float | None = None) -> list[str]:
        """Write one request and read up to the prompt under our own deadline.

        python-OBD re-reads an empty answer many times over, so a silent link would block for
        a minute; here silence raises ``AdapterTimeoutError`` once the deadline has passed.
        """
        port = self._port()
        limit = self.timeout_s if deadline_s is None else deadline_s
        try:
            port.reset_input_buffer()
            port.write(request + b"\r")
            port.flush()
            buffer = _read_prompt(port, limit)
        except Exception as exc:  # pyserial raises many kinds when the link goes away
            self.close()
            raise AdapterLostError(f"adapter at {self.port} went away: {exc}") from exc
        if buffer is None:
            raise AdapterTimeoutError(
                f"adapter at {self.port} did not answer {request.decode()!r} "
                f"within {limit:g} s: link stalled?"
            )
        text = bytes(buffer).replace(b"\x00", b"").decode("ascii", "replace")
        text = text[: text.rindex(">")]
        return [line for line in text.replace("\n", "\r").split("\r") if line.strip()]

    def ask(self, request: bytes) -> tuple[list[Message], Answer]:
        """One OBD request: its parsed messages and the classified answer (informational lines
        never discard data)."""
        self.requests += 1
        lines = self.exchange(request)
        answer = classify(request.decode(), lines)
        if answer.echoed and not self.echo_stuck:
            self.echo_stuck = True
            log.warning("the adapter at %s echoes requests despite ATE0", self.port)
        protocol = getattr(self._obd.interface, "_ELM327__protocol", None) if self._obd else None
        if protocol is None or not answer.data:
            return [], answer
        messages = [m for m in protocol(answer.data) if m.parsed()]
        return messages, answer

    def send(self, request: bytes) -> list[Message]:
        """Send one request; ``NO DATA`` is an empty list; a dead, stuck or silent adapter and
        an absent ECU raise, naming the condition."""
        messages, answer = self.ask(request)
        if messages:
            return messages
        condition = answer.condition
        if condition is None or condition is Condition.NO_DATA:
            return []
        said = " / ".join(str(c.value) for c in answer.conditions) or condition.value
        if condition.adapter_stuck:
            raise AdapterStuckError(f"adapter answers {said} to {request.decode()!r}", condition)
        raise NoEcuError(f"no ECU answers ({said}): ignition off?", condition)

    def warm_start(self) -> None:
        """``ATWS`` (a reset that keeps the baud rate), then the settings python-OBD relies on.

        Raises when the adapter does not come back: the caller reconnects.
        """
        self.warm_starts += 1
        self.exchange(b"ATWS", deadline_s=max(self.timeout_s, 2.0))
        for setting in (b"ATE0", b"ATH1", b"ATL0"):
            lines = self.exchange(setting)
            if not any("OK" in line.upper() for line in lines):
                raise AdapterStuckError(
                    f"adapter at {self.port} did not accept {setting.decode()} after ATWS: "
                    f"{' '.join(lines) or 'no answer'}"
                )
        protocol = self.protocol or "0"
        self.exchange(f"ATSP{protocol}".encode())
        if self.timeout_units is not None:  # ATWS restored the default wait
            self.exchange(b"ATAT1")
            self._set_timeout(self.timeout_units)
        self._frame_counts.clear()
        self.echo_stuck = False

    def _send_counted(self, request: bytes, *, multi: bool) -> list[Message]:
        """Append the ELM's expected-response count once known, so it answers without waiting."""
        count = self._frame_counts.get(request)
        accepted = self.traits.count_hints_multi if multi else self.traits.count_hints_single
        use_suffix = (
            self.count_hints and count is not None and 0 < count < 16 and accepted is not False
        )
        try:
            messages = self.send(request + (f"{count:X}".encode() if use_suffix else b""))
        except AdapterStuckError as exc:
            if not use_suffix or exc.condition is not Condition.UNKNOWN_COMMAND:
                raise
            self._frame_counts.pop(request, None)
            messages = self.send(request)
            # Understood without the count: this adapter does not take counts here. Remembered
            # for good (a "?" to everything is a lock-up, and the send above raised).
            self._learn(**{"count_hints_multi" if multi else "count_hints_single": False})
            log.info(
                "the adapter at %s does not take response counts in %s requests: sent without",
                self.port,
                "multi-PID" if multi else "single-PID",
            )
        else:
            if use_suffix and accepted is None:
                self._learn(**{"count_hints_multi" if multi else "count_hints_single": True})
        if messages and request not in self._frame_counts:
            self._frame_counts[request] = sum(len(m.frames) for m in messages)
        return messages

    # ---- what this adapter takes: remembered per adapter ------------------------------------
    def _recall(self) -> None:
        """Who is this adapter (``ATI`` and where it is), and what did it take before?"""
        try:
            said = [line.strip() for line in self.exchange(b"ATI") if line.strip().upper() != "ATI"]
        except AdapterTimeoutError:
            said = []
        self.identity = f"{' '.join(said) or 'unknown ELM'} at {self.port}"
        self.traits = self.memory.traits(self.identity)
        self.timeout_units = None

    def _learn(self, **changes: bool | int | None) -> None:
        for name, value in changes.items():
            setattr(self.traits, name, value)
        self.memory.remember(self.identity, self.traits)

    def _tune_timeout(self) -> None:
        """Measure the ECU's answer time, set adaptive timing and a tuned ``ATST``, verify.

        The ELM waits its ATST time for more answers after every request without a response
        count, and before it says NO DATA: 200 ms by default, several times what a CAN ECU
        takes. Counted requests time the ECU alone; without counts the wait in force is
        subtracted. A tuned value that makes a working PID go silent is reverted and remembered.
        """
        counted = self.count_hints and self.traits.count_hints_single is not False
        request = TIMING_REQUEST + (b"1" if counted else b"")
        taken: list[float] = []
        while len(taken) < TIMING_SAMPLES:
            started = time.monotonic()
            _, answer = self.ask(request)
            elapsed = time.monotonic() - started
            if counted and answer.condition is Condition.UNKNOWN_COMMAND:
                self._learn(count_hints_single=False)  # timed without counts from here
                counted, request = False, TIMING_REQUEST
                continue
            if not answer.data:
                return  # the ECU is silent now: nothing to measure, nothing learned
            taken.append(elapsed if counted else max(0.0, elapsed - ATST_DEFAULT * ATST_UNIT_S))
        units = min(
            ATST_DEFAULT,
            max(ATST_FLOOR, math.ceil((max(taken) * ATST_MARGIN + ATST_SLACK_S) / ATST_UNIT_S)),
        )
        self.exchange(b"ATAT1")  # adaptive timing on; a clone's "?" changes nothing we rely on
        if units >= ATST_DEFAULT:
            self._learn(timeout_tuning=True, timeout_units=ATST_DEFAULT)
            return  # a slow car: the default is all it gets
        if not self._set_timeout(units):
            log.info("the adapter at %s does not take ATST: its default wait stays", self.port)
            self._learn(timeout_tuning=False, timeout_units=None)
            return
        for _ in range(TIMING_SAMPLES):
            _, answer = self.ask(request)
            if not answer.data:
                self._set_timeout(ATST_DEFAULT)
                log.warning(
                    "the ECU did not answer within ATST %02X (%d ms): the adapter's default wait"
                    " stays",
                    units,
                    units * 4,
                )
                self._learn(timeout_tuning=False, timeout_units=None)
                return
        self.timeout_units = units
        self._learn(timeout_tuning=True, timeout_units=units)

    def _set_timeout(self, units: int) -> bool:
        lines = self.exchange(f"ATST{units:02X}".encode())
        return any("OK" in line.upper() for line in lines)

    # ---- listening to the bus ------------------------------------------------------------
    @property
    def can_monitor(self) -> bool:
        """Can this adapter's bus be listened to (CAN, and ``ATMA`` not refused)?"""
        return self.protocol_id in CAN_PROTOCOL_IDS and self.traits.monitor is not False

    def bus_traffic(self, listen_s: float) -> bool:
        """``ATMA`` for ``listen_s``: does anything talk on the CAN bus (the car woke)?

        A car's ECUs fall silent on the bus when it sleeps and talk as soon as it wakes, well
        before the engine turns; listening costs the car nothing. ``?`` (a clone without monitor
        mode) is remembered and the caller falls back to the voltage and RPM probes.
        """
        port = self._port()
        try:
            port.reset_input_buffer()
            port.write(b"ATMA\r")
            port.flush()
            buffer = _read_until(port, ELM_PROMPT, listen_s)
            if ELM_PROMPT not in buffer:
                port.write(MONITOR_STOP)
                port.flush()
                rest = _read_prompt(port, self.timeout_s)
                buffer = bytearray() if rest is None else buffer + rest
        except Exception as exc:  # pyserial raises many kinds when the link goes away
            self.close()
            raise AdapterLostError(f"adapter at {self.port} went away: {exc}") from exc
        if ELM_PROMPT not in buffer:
            raise AdapterTimeoutError(
                f"adapter at {self.port} did not stop monitoring within {self.timeout_s:g} s: "
                "link stalled?"
            )
        text = bytes(buffer).replace(b"\x00", b"").decode("ascii", "replace")
        lines = [" ".join(x.split()).upper() for x in text.replace("\n", "\r").split("\r")]
        lines = [x.strip(">").strip() for x in lines]
        lines = [x for x in lines if x and x != "ATMA"]
        if "?" in lines:
            log.info("the adapter at %s cannot monitor the bus (ATMA): voltage only", self.port)
            self._learn(monitor=False)
            return False
        if self.traits.monitor is None:
            self._learn(monitor=True)
        return any(_is_frame(x) or x == "BUFFER FULL" for x in lines)

    # ---- reading values -----------------------------------------------------------------
    def read_pids(self, names: Sequence[str]) -> dict[str, float]:
        """Read mode-01 PIDs in one request (≤ 6, CAN only); ``{}`` on ``NO DATA``."""
        commands = {}
        for name in names:
            command = mode01_command(name)
            if command is not None:
                commands[command.pid] = command
        if not commands:
            return {}
        if len(commands) > MAX_PIDS_PER_REQUEST or (len(commands) > 1 and not self.multi_pid):
            raise ValueError("more PIDs than one request can carry")
        request = b"01" + b"".join(f"{pid:02X}".encode() for pid in commands)
        messages = self._send_counted(request, multi=len(commands) > 1)
        return split_mode01(messages, commands)

    def voltage(self) -> float | None:
        """The supply voltage; silence counts as a timeout, not as "no reading"."""
        lines = self.exchange(b"ATRV")
        for line in lines:
            text = line.strip().upper().rstrip("V")
            try:
                return float(text)
            except ValueError:
                continue
        return None

    def _send_optional(self, request: bytes) -> list[Message]:
        """A request some adapters or ECUs do not know (mode 09, 0A on an old ELM clone): ``?``
        or no ECU answer is "nothing", not a stuck adapter; the polling requests catch that."""
        try:
            return self.send(request)
        except NoEcuError:
            return []
        except AdapterStuckError as exc:
            if exc.condition is not Condition.UNKNOWN_COMMAND:
                raise
            return []

    def read_vin(self) -> str | None:
        return decode_vin(self._send_optional(b"0902"))

    def read_dtcs(self) -> DtcSnapshot:
        snapshot = DtcSnapshot(
            stored=decode_dtcs(self.send(b"03")),
            pending=decode_dtcs(self._send_optional(b"07")),
            permanent=decode_dtcs(self._send_optional(b"0A")),
        )
        if snapshot.stored:
            freeze = decode_dtcs_single(self._send_optional(b"020200"))
            snapshot.freeze_dtc = freeze
            if freeze is not None:
                for name in FREEZE_FRAME_PIDS:
                    command = mode01_command(name)
                    if command is None or name not in self.supported:
                        continue
                    value = decode_freeze_value(
                        self._send_optional(f"02{command.pid:02X}00".encode()), command
                    )
                    if value is not None:
                        snapshot.freeze_frame[name] = value
        return snapshot

    def clear_dtcs(self) -> None:
        messages = self.send(b"04")
        if not any(bytes(m.data[:1]) == b"\x44" for m in messages):
            raise AdapterError("the ECU refused to clear the trouble codes")


def _read_prompt(port: Any, limit_s: float) -> bytearray | None:
    """Bytes up to the ELM's prompt, or ``None`` if it did not come within ``limit_s``."""
    buffer = bytearray()
    deadline = time.monotonic() + limit_s
    while ELM_PROMPT not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        port.timeout = min(left, 0.5)
        buffer += port.read(port.in_waiting or 1)
    return buffer


def _read_until(port: Any, marker: bytes, limit_s: float) -> bytearray:
    """Whatever comes within ``limit_s``, or less if ``marker`` came."""
    buffer = bytearray()
    deadline = time.monotonic() + limit_s
    while marker not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        port.timeout = min(left, 0.5)
        buffer += port.read(port.in_waiting or 1)
    return buffer


def _is_frame(line: str) -> bool:
    """A monitored CAN frame: hex bytes (an ID, a length, data)."""
    parts = line.split()
    return len(parts) >= 2 and all(
        len(p) <= 8 and all(c in "0123456789ABCDEF" for c in p) for p in parts
    )


def probe(port: str, baudrate: int, limit_s: float) -> None:
    """Does anything answer ``ATI`` at ``port`` within ``limit_s``? python-OBD's own connect
    would wait minutes on a frozen link (fixed 10 s reads, retried)."""
    try:
        link = serial.serial_for_url(port, baudrate=baudrate, timeout=limit_s)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise NoAdapterError(f"no adapter at {port}: {exc}") from exc
    try:
        link.write(b"ATI\r")
        link.flush()
        answered = _read_prompt(link, limit_s)
    except (serial.SerialException, OSError) as exc:
        raise NoAdapterError(f"no adapter at {port}: {exc}") from exc
    finally:
        link.close()
    if answered is None:
        raise AdapterTimeoutError(
            f"adapter at {port} is there but did not answer ATI within {limit_s:g} s: link stalled?"
        )


def decode_dtcs_single(messages: Sequence[Message]) -> str | None:
    for message in messages:
        data = bytes(message.data)
        if len(data) >= 5 and data[0] == 0x42 and data[1] == 0x02 and data[3:5] != b"\x00\x00":
            return str(obd.decoders.parse_dtc((data[3], data[4]))[0])
    return None
