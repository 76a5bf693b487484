# SPDX-License-Identifier: GPL-2.0-or-later
"""An ELM327 v1.5 on ISO 15765-4 (CAN 11/500) or ISO 9141-2 (K-line) in front of a
``SimulatedCar``, served over TCP.

It speaks what python-OBD and real tools send: AT commands (echo, headers, spaces, linefeeds,
protocol, voltage, low power), mode 01 with up to six PIDs per request and the ELM's trailing
response-count digit, 02 (freeze frame), 03/07/0A (trouble codes), 04 (clear), 09 (VIN), ISO-TP
multi-frame answers with headers on or off. Faults can be injected for tests, the way a cheap
clone and an old car misbehave: a silent ECU (``NO DATA``), an ignition that is off (``UNABLE TO
CONNECT``), dropped sockets, ``BUS INIT: ...OK`` before the data on K-line bus re-inits, an answer
stuck on ``STOPPED`` / ``BUFFER FULL`` / ``?`` / ``CAN ERROR`` until ``ATZ`` or ``ATWS``, a frozen
link (bytes in, nothing out), echo that ``ATE0`` does not turn off, PIDs the ECU stopped
answering, the ELM's wait for more responses when a request carries no response count (its
``ATST`` timeout), an ECU slower than that timeout (``NO DATA``), a clone that knows neither
``ATST`` nor ``ATMA``.

Timing as the ELM327 datasheet gives it: ``ATST hh`` sets how long the ELM waits for an answer,
and for more answers when the request gives no response count, to hh times 4 ms (default 0x32, 200
ms; ``ATST 00`` restores it). ``ATAT0/1/2`` (adaptive timing) answer ``OK`` but are not modelled:
a real ELM with adaptive timing may shorten its wait below ``ATST``, ours always waits ``ATST``,
which is what an agent that sets ``ATST`` itself must cope with anyway. ``ATMA`` (monitor all)
prints the bus traffic while the car's ECUs are awake (the ignition on) and stops at the next
byte received, printing ``STOPPED``: on a quiet bus nothing comes before it.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from obd2_bridge.simulator.car import CarState, SimulatedCar

log = logging.getLogger(__name__)

ELM_VERSION = "ELM327 v1.5"
ECU_RESPONSE_HEADER = "7E8"
PROTOCOL_NAME = "ISO 15765-4 (CAN 11/500)"
# K-line (ISO 9141-2): header priority 48, target 6B, the engine ECU's address 10.
KLINE_HEADER = bytes([0x48, 0x6B, 0x10])
PROTOCOL_NAMES = {"6": PROTOCOL_NAME, "3": "ISO 9141-2"}
STUCK_ANSWERS = ("STOPPED", "BUFFER FULL", "?", "CAN ERROR")
# ATST's default, in units of 4 ms: 200 ms.
DEFAULT_TIMEOUT_UNITS = 0x32
TIMEOUT_UNIT_S = 0.004
# What ATMA shows of a woken car's CAN bus: a few broadcast frames (11-bit IDs), one every
# MONITOR_FRAME_S.
MONITOR_FRAMES = (("0C9", "000C300000000000"), ("3E9", "000000001F400000"))
MONITOR_FRAME_S = 0.02


def _u8(value: float) -> bytes:
    return bytes([max(0, min(255, round(value)))])


def _u16(value: float) -> bytes:
    v = max(0, min(65535, round(value)))
    return bytes([v >> 8, v & 0xFF])


def _percent(value: float) -> bytes:
    return _u8(value * 255.0 / 100.0)


def _temperature(value: float) -> bytes:
    return _u8(value + 40.0)


def _monitor_status(s: CarState) -> bytes:
    count = min(127, len(s.stored_dtcs))
    mil = 0x80 if s.stored_dtcs else 0
    return bytes([mil | count, 0x07, 0xE5, 0x00])


# Mode 01 PID → encoder of the car's state into the PID's data bytes (inverse of SAE J1979).
MODE01: dict[int, Callable[[CarState], bytes]] = {
    0x01: _monitor_status,
    0x04: lambda s: _percent(s.load_pct),
    0x05: lambda s: _temperature(s.coolant_c),
    0x0B: lambda s: _u8(s.map_kpa),
    0x0C: lambda s: _u16(s.rpm * 4.0),
    0x0D: lambda s: _u8(s.speed_kmh),
    0x0F: lambda s: _temperature(s.intake_c),
    0x10: lambda s: _u16(s.maf_gps * 100.0),
    0x11: lambda s: _percent(s.throttle_pct),
    0x1F: lambda s: _u16(s.run_time_s),
    0x2F: lambda s: _percent(s.fuel_pct),
    0x33: lambda s: _u8(101.0),
    0x42: lambda s: _u16(s.battery_v * 1000.0),
    0x46: lambda s: _temperature(s.ambient_c),
    0x5C: lambda s: _temperature(s.oil_c),
    0x5E: lambda s: _u16(s.fuel_rate_lph * 20.0),
}


def _support_bitmap(base: int, supported: set[int]) -> bytes:
    bits = 0
    for offset in range(1, 33):
        pid = base + offset
        # The last bit says "the next range has PIDs": set it when anything above is supported.
        if pid in supported or (offset == 32 and any(p > pid for p in supported)):
            bits |= 1 << (32 - offset)
    return bits.to_bytes(4, "big")


def _dtc_bytes(code: str) -> bytes:
    letter = "PCBU".index(code[0])
    first = (letter << 6) | (int(code[1], 16) << 4) | int(code[2], 16)
    return bytes([first, int(code[3:5], 16)])


def _dtc_from_bytes(data: bytes) -> str:
    return "PCBU"[data[0] >> 6] + f"{(data[0] >> 4) & 3}{data[0] & 0xF:X}{data[1]:02X}"


@dataclass(slots=True)
class ElmSettings:
    echo: bool = True
    headers: bool = False
    spaces: bool = True
    linefeeds: bool = False
    protocol_open: bool = False
    low_power: bool = False
    wrong_protocol: str | None = None
    timeout_units: int = DEFAULT_TIMEOUT_UNITS
    adaptive_timing: int = 1

    def reset(self) -> None:
        self.echo, self.headers, self.spaces, self.linefeeds = True, False, True, False
        self.protocol_open = False
        self.low_power = False
        self.wrong_protocol = None
        self.timeout_units = DEFAULT_TIMEOUT_UNITS
        self.adaptive_timing = 1


class ElmSimulator:
    """The ELM327's behaviour, independent of transport; ``answer()`` is one request/response."""

    def __init__(
        self,
        car: SimulatedCar,
        *,
        request_delay_s: float = 0.0,
        protocol: str = "6",
        bus_init_every: int = 0,
        echo_stuck: bool = False,
        missing_pids: frozenset[int] = frozenset(),
        waits_without_count: bool = False,
        knows_timeout: bool = True,
        knows_monitor: bool = True,
        knows_counts: bool = True,
        timeout_unit_s: float = TIMEOUT_UNIT_S,
    ) -> None:
        if protocol not in PROTOCOL_NAMES:
            raise ValueError(f"protocol {protocol!r}: the simulator speaks 6 (CAN) or 3 (K-line)")
        self.car = car
        self.request_delay_s = request_delay_s
        self.protocol = protocol
        self.bus_init_every = bus_init_every
        self.echo_stuck = echo_stuck
        self.missing_pids = set(missing_pids)
        # A real ELM waits its ATST timeout for more ECUs after the last answer of a request
        # without a response count; off by default so that tests run fast.
        self.waits_without_count = waits_without_count
        # An old clone answers "?" to ATST / ATMA.
        self.knows_timeout = knows_timeout
        self.knows_monitor = knows_monitor
        # An old clone answers "?" to a request with the response-count digit.
        self.knows_counts = knows_counts
        # A clone whose ATST counts in other units than the datasheet's 4 ms.
        self.timeout_unit_s = timeout_unit_s
        self.stuck_answer: str | None = None
        # Modes this ELM does not know (an old clone): "?" as a real one answers.
        self.unknown_modes: set[int] = set()
        self._silent_until = 0.0
        self._ignition_off_until = 0.0
        self._frozen_until = 0.0
        self._since_init = 0
        self.requests = 0
        self.resets = 0
        self.bus_inits = 0
        self.monitors = 0
        self.timeouts_set: list[int] = []
        self.refusals = 0  # "?" answers to requests of the right form (counts, ATST, ATMA)

    @property
    def kline(self) -> bool:
        return self.protocol == "3"

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES[self.protocol]

    # ---- faults a test can inject -------------------------------------------------------
    def silence_ecu(self, seconds: float) -> None:
        """The ECU stops answering: ``NO DATA`` while the protocol stays open."""
        self._silent_until = time.monotonic() + seconds

    def ignition_off(self, seconds: float) -> None:
        """As if the ignition were off: no ECU on the bus, a protocol search fails."""
        self._ignition_off_until = time.monotonic() + seconds

    def stick(self, answer: str) -> None:
        """A clone lock-up: every OBD request answers ``answer`` until ``ATZ`` or ``ATWS``."""
        if answer not in STUCK_ANSWERS:
            raise ValueError(f"stuck answer {answer!r}: one of {', '.join(STUCK_ANSWERS)}")
        self.stuck_answer = answer

    def freeze(self, seconds: float) -> None:
        """A Bluetooth stall: the link stays open, requests go in, nothing comes back."""
        self._frozen_until = time.monotonic() + seconds

    def is_frozen(self) -> bool:
        return time.monotonic() < self._frozen_until

    def _ecu_present(self, state: CarState) -> bool:
        return state.engine_on and time.monotonic() >= self._ignition_off_until

    def bus_awake(self) -> bool:
        """Do the car's ECUs talk on the bus (what ``ATMA`` would show)? Only on CAN."""
        return not self.kline and self._ecu_present(self.car.state())

    # ---- the protocol ---------------------------------------------------------------------
    def answer(self, settings: ElmSettings, raw: str) -> list[str]:
        self.requests += 1
        command = "".join(raw.split()).upper()
        if not command:
            return []
        if command.startswith("AT"):
            return self._at(settings, command[2:])
        if not all(c in "0123456789ABCDEF" for c in command) or len(command) < 2:
            return ["?"]
        if self.stuck_answer is not None:
            return [self.stuck_answer]
        if int(command[:2], 16) in self.unknown_modes:
            return ["?"]
        counted = len(command) % 2 == 1
        if counted:
            if not self.knows_counts:
                self.refusals += 1
                return ["?"]
            command = command[:-1]  # the response-count digit: answer once that many came
        if settings.wrong_protocol is not None:
            # Told to speak a protocol the car does not: K-line wake-ups fail, CAN hears nothing.
            kline = settings.wrong_protocol in ("3", "4", "5")
            return ["BUS INIT: ...ERROR" if kline else "UNABLE TO CONNECT"]
        state = self.car.state()
        lines: list[str] = []
        if not settings.protocol_open:
            lines.append("SEARCHING...")
        wait_s = settings.timeout_units * self.timeout_unit_s
        if not self._ecu_present(state):
            settings.protocol_open = False
            if lines:
                return [*lines, "UNABLE TO CONNECT"]
            time.sleep(wait_s)  # the ELM waits its ATST time before it says NO DATA
            return ["NO DATA"]
        self._since_init += 1
        if self.kline and (
            not settings.protocol_open
            or (self.bus_init_every and self._since_init >= self.bus_init_every)
        ):
            # The K-line went idle or was never woken: the ELM re-initialises the bus first.
            self._since_init = 0
            self.bus_inits += 1
            lines.append("BUS INIT: ...OK")
        settings.protocol_open = True
        # Sleeps here run in a thread of the server (``asyncio.to_thread``).
        payload = None
        if time.monotonic() >= self._silent_until and self.request_delay_s <= wait_s:
            payload = self._obd(state, bytes.fromhex(command))
        if payload is None:
            # Silent, or an ECU slower than ATST allows: NO DATA once the wait is over.
            time.sleep(wait_s)
            return [*lines, "NO DATA"]
        time.sleep(self.request_delay_s)  # the ECU's (and the bus's) response time
        if not counted and self.waits_without_count:
            time.sleep(wait_s)  # waiting for more ECUs that never answer
        return lines + self._frames(settings, payload)

    def _at(self, settings: ElmSettings, cmd: str) -> list[str]:
        if cmd in ("Z", "WS"):
            settings.reset()
            self.stuck_answer = None
            self.resets += 1
            return ["", ELM_VERSION]
        if cmd == "D":
            settings.reset()
            return ["OK"]
        toggles = {"E": "echo", "H": "headers", "S": "spaces", "L": "linefeeds"}
        if len(cmd) == 2 and cmd[0] in toggles and cmd[1] in "01":
            if not (cmd == "E0" and self.echo_stuck):
                setattr(settings, toggles[cmd[0]], cmd[1] == "1")
            return ["OK"]
        if cmd == "I":
            return [ELM_VERSION]
        if cmd == "@1":
            return ["OBDII to RS232 Interpreter"]
        if cmd == "RV":
            return [f"{self.car.state().battery_v:.1f}V"]
        if cmd == "DP":
            return [f"AUTO, {self.protocol_name}" if settings.protocol_open else "AUTO"]
        if cmd == "DPN":
            if settings.wrong_protocol is not None:
                return [settings.wrong_protocol]
            return [f"A{self.protocol}" if settings.protocol_open else "A0"]
        if cmd.startswith(("SP", "TP")):
            wanted = cmd[2:].removeprefix("A")
            if wanted not in ("0", *"123456789ABC") or len(wanted) != 1:
                return ["?"]
            settings.protocol_open = False
            settings.wrong_protocol = None if wanted in ("0", self.protocol) else wanted
            return ["OK"]
        if cmd == "LP":
            settings.low_power = True
            return ["OK"]
        if cmd.startswith("ST") and len(cmd) == 4:
            if not self.knows_timeout:
                self.refusals += 1
                return ["?"]
            try:
                units = int(cmd[2:], 16)
            except ValueError:
                return ["?"]
            settings.timeout_units = units or DEFAULT_TIMEOUT_UNITS
            self.timeouts_set.append(settings.timeout_units)
            return ["OK"]
        if cmd in ("AT0", "AT1", "AT2"):
            settings.adaptive_timing = int(cmd[2])  # accepted, not modelled (module docstring)
            return ["OK"]
        if cmd == "MA":
            self.refusals += 1
            return ["?"]  # an ELM that monitors is served by ElmServer; this one does not
        if cmd.startswith(("SH", "ST", "AT", "CAF", "PC", "M", "AL", "CRA", "R", "AR")):
            return ["OK"]
        return ["?"]

    def _obd(self, state: CarState, request: bytes) -> bytes | None:
        mode, pids = request[0], request[1:]
        if mode == 0x01:
            return self._mode01(state, pids)
        if mode == 0x02 and len(pids) >= 1:
            return self._mode02(state, pids[0])
        if mode in (0x03, 0x07, 0x0A) and not pids:
            codes = {
                0x03: state.stored_dtcs,
                0x07: state.pending_dtcs,
                0x0A: state.permanent_dtcs,
            }[mode]
            return bytes([mode + 0x40, len(codes)]) + b"".join(_dtc_bytes(c) for c in codes)
        if mode == 0x04 and not pids:
            self.car.clear_dtcs()
            return b"\x44"
        if mode == 0x09 and len(pids) == 1:
            if pids[0] == 0x00:
                return b"\x49\x00\x54\x00\x00\x00"  # 02, 04, 06 supported
            if pids[0] == 0x02:
                return b"\x49\x02\x01" + self.car.vin.encode("ascii")
            if pids[0] == 0x01:
                return b"\x49\x01\x01"
        return None

    def _mode01(self, state: CarState, pids: bytes) -> bytes | None:
        if not 1 <= len(pids) <= 6:
            return None
        out = bytearray([0x41])
        supported = set(MODE01)
        for pid in pids:
            if pid in self.missing_pids:
                continue  # a PID the ECU stopped answering
            if pid % 0x20 == 0 and pid <= 0x40:
                out += bytes([pid]) + _support_bitmap(pid, supported)
            elif pid in MODE01:
                out += bytes([pid]) + MODE01[pid](state)
        return bytes(out) if len(out) > 1 else None

    def _mode02(self, state: CarState, pid: int) -> bytes | None:
        if state.freeze_frame is None:
            return None
        if pid == 0x00:
            return bytes([0x42, 0x00, 0x00]) + _support_bitmap(0, {0x02, *state.freeze_frame})
        if pid == 0x02 and state.freeze_dtc:
            return bytes([0x42, 0x02, 0x00]) + _dtc_bytes(state.freeze_dtc)
        if pid in state.freeze_frame and pid in MODE01:
            frozen = CarState(
                rpm=state.freeze_frame.get(0x0C, state.rpm),
                speed_kmh=state.freeze_frame.get(0x0D, state.speed_kmh),
                coolant_c=state.freeze_frame.get(0x05, state.coolant_c),
                load_pct=state.freeze_frame.get(0x04, state.load_pct),
            )
            return bytes([0x42, pid, 0x00]) + MODE01[pid](frozen)
        return None

    def _frames(self, settings: ElmSettings, payload: bytes) -> list[str]:
        """ISO-TP framing of one ECU answer, printed the way the ELM prints it."""

        def fmt(data: bytes) -> str:
            return (" " if settings.spaces else "").join(f"{b:02X}" for b in data)

        if self.kline:
            return [fmt(frame) for frame in self._kline_frames(settings, payload)]
        sep = " " if settings.spaces else ""
        if len(payload) <= 7:
            frame = bytes([len(payload)]) + payload
            frame += b"\x55" * (8 - len(frame))  # ECUs pad unused CAN bytes
            if settings.headers:
                return [f"{ECU_RESPONSE_HEADER}{sep}{fmt(frame)}"]
            return [fmt(payload)]
        frames = [bytes([0x10 | (len(payload) >> 8), len(payload) & 0xFF]) + payload[:6]]
        rest, index = payload[6:], 1
        while rest:
            chunk, rest = rest[:7], rest[7:]
            frames.append(bytes([0x20 | (index & 0xF)]) + chunk + b"\x00" * (7 - len(chunk)))
            index += 1
        if settings.headers:
            return [f"{ECU_RESPONSE_HEADER}{sep}{fmt(f)}" for f in frames]
        lines = [f"{len(payload):03X}"]
        lines += [f"{i}:{sep}{fmt(f[1:] if i else f[2:])}" for i, f in enumerate(frames)]
        return lines

    @staticmethod
    def _kline_frames(settings: ElmSettings, payload: bytes) -> list[bytes]:
        """ISO 9141-2 frames: header, at most 7 data bytes, checksum; long answers in parts."""
        mode = payload[0]
        if mode == 0x49 and len(payload) > 7:
            text = payload[3:]  # VIN: "49 02 NN" and four characters per frame
            text = b"\x00" * (-len(text) % 4) + text
            parts = [
                bytes([0x49, payload[1], n + 1]) + text[4 * n : 4 * n + 4]
                for n in range(len(text) // 4)
            ]
        elif mode == 0x43:
            codes = payload[2:]  # no count byte on the K-line: three codes a frame
            codes += b"\x00" * (-len(codes) % 6 or (6 if not codes else 0))
            parts = [bytes([0x43]) + codes[i : i + 6] for i in range(0, len(codes), 6)]
        else:
            parts = [payload]
        frames = []
        for part in parts:
            frame = KLINE_HEADER + part + b"\x00" * max(0, 2 - len(part))
            frame += bytes([sum(frame) & 0xFF])
            frames.append(frame if settings.headers else part)
        return frames


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.settings = ElmSettings()
        self.monitor: asyncio.Task[None] | None = None

    def monitoring(self) -> bool:
        return self.monitor is not None


class ElmServer:
    """Serves one ``ElmSimulator`` over TCP: each connection is its own ELM (own settings)."""

    def __init__(self, elm: ElmSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.elm = elm
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._refuse_until = 0.0
        self.refused = 0  # connections cut at once while refusing (an adapter that is off)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_connections(self, refuse_for_s: float = 0.0) -> None:
        """A dead socket: every open connection is cut; new ones too for ``refuse_for_s``."""
        self._refuse_until = time.monotonic() + refuse_for_s
        for session in list(self._sessions):
            session.writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            self.refused += 1
            writer.transport.abort()
            return
        session = _Session(reader, writer)
        self._sessions.add(session)
        buffer = b""
        try:
            while True:
                data = await reader.read(1024)
                if not data:
                    break
                if session.settings.low_power:
                    session.settings.low_power = False  # any byte wakes the ELM
                    writer.write(b"\r>")
                    buffer = b""
                    await writer.drain()
                    continue
                if session.monitoring():
                    await self._stop_monitor(session)  # the byte that stops it is discarded
                    buffer = b""
                    continue
                buffer += data
                while b"\r" in buffer:
                    line, buffer = buffer.split(b"\r", 1)
                    await self._handle(session, line.decode("ascii", "replace").strip())
                    if session.monitoring() and buffer:
                        await self._stop_monitor(session)  # bytes after ATMA stop it at once
                        buffer = b""
        except (ConnectionError, OSError):
            pass
        finally:
            if session.monitor is not None:
                session.monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                    await session.monitor
            self._sessions.discard(session)
            with contextlib.suppress(Exception):
                writer.close()

    async def _monitor(self, session: _Session, eol: str) -> None:
        """``ATMA``: print what the bus carries until a byte comes in (then ``STOPPED``)."""
        index = 0
        while True:
            if self.elm.bus_awake():
                can_id, data = MONITOR_FRAMES[index % len(MONITOR_FRAMES)]
                sep = " " if session.settings.spaces else ""
                frame = sep.join(data[i : i + 2] for i in range(0, len(data), 2))
                if session.settings.headers:
                    frame = can_id + sep + frame
                session.writer.write((frame + eol).encode("ascii"))
                await session.writer.drain()
                index += 1
            await asyncio.sleep(MONITOR_FRAME_S)

    async def _stop_monitor(self, session: _Session) -> None:
        monitor, session.monitor = session.monitor, None
        assert monitor is not None
        monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await monitor
        eol = "\r\n" if session.settings.linefeeds else "\r"
        session.writer.write(f"STOPPED{eol}{eol}>".encode("ascii"))
        await session.writer.drain()

    async def _handle(self, session: _Session, line: str) -> None:
        if self.elm.is_frozen():
            return  # a stalled link: the request is lost, nothing comes back
        if line.replace("\x7f", "").strip() == "" and line:
            session.writer.write(b"?\r\r>")
            await session.writer.drain()
            return
        echo = session.settings.echo
        eol = "\r\n" if session.settings.linefeeds else "\r"
        if "".join(line.split()).upper() == "ATMA" and self.elm.knows_monitor:
            self.elm.requests += 1
            self.elm.monitors += 1
            if echo:
                session.writer.write((line + eol).encode("ascii"))
            session.monitor = asyncio.create_task(self._monitor(session, eol))
            return
        lines = await asyncio.to_thread(self.elm.answer, session.settings, line)
        if self.elm.is_frozen():
            return
        out = (line + eol) if echo else ""
        out += "".join(item + eol for item in lines) + eol + ">"
        session.writer.write(out.encode("ascii"))
        await session.writer.drain()


class SimulatorThread:
    """Runs an ``ElmServer`` on its own event loop in a background thread (tests, benchmarks)."""

    def __init__(self, elm: ElmSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = ElmServer(elm, host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"socket://{self.server.host}:{self.server.port}"

    def start(self) -> "SimulatorThread":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self

    def drop_connections(self, refuse_for_s: float = 0.0) -> None:
        self._loop.call_soon_threadsafe(self.server.drop_connections, refuse_for_s)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> "SimulatorThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve_forever(elm: ElmSimulator, host: str, port: int) -> None:
    server = ElmServer(elm, host, port)
    bound = await server.start()
    print(f"obd2-bridge simulate: ELM327 on socket://{host}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
