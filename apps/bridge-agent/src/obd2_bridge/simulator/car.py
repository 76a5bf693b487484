# SPDX-License-Identifier: GPL-2.0-or-later
"""The car's physics and the mode-01 values it produces.

Two cars: the default one repeats a short drive cycle of about 40 s (tests and benchmarks want a
car that is always doing something); the realistic one drives the demo car of
``obd2_protocol.demo_car`` (parked with the engine off, town and motorway, red lights, fuel
stops, a trouble code pending on one drive and confirmed on the next).
"""

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from obd2_protocol import demo_car


@dataclass(frozen=True, slots=True)
class DriveCycle:
    """Seconds spent in each phase; ``engine_off_s = 0`` keeps the engine running for good."""

    idle_s: float = 6.0
    accelerate_s: float = 8.0
    cruise_s: float = 10.0
    brake_s: float = 5.0
    stop_s: float = 3.0
    engine_off_s: float = 8.0
    cruise_kmh: float = 90.0

    def phases(self) -> list[tuple[str, float]]:
        phases = [
            ("idle", self.idle_s),
            ("accelerate", self.accelerate_s),
            ("cruise", self.cruise_s),
            ("brake", self.brake_s),
            ("stop", self.stop_s),
        ]
        if self.engine_off_s > 0:
            phases.append(("engine_off", self.engine_off_s))
        return [(name, seconds) for name, seconds in phases if seconds > 0]


# Gear ratios expressed as km/h per 1000 rpm, as a five-speed petrol hatchback.
_GEARS = (7.5, 13.0, 19.5, 26.0, 33.0)
_IDLE_RPM = 780.0


@dataclass(slots=True)
class CarState:
    phase: str = "idle"
    engine_on: bool = True
    speed_kmh: float = 0.0
    rpm: float = _IDLE_RPM
    throttle_pct: float = 14.0
    load_pct: float = 22.0
    coolant_c: float = 40.0
    intake_c: float = 22.0
    oil_c: float = 38.0
    fuel_pct: float = 63.0
    run_time_s: float = 0.0
    battery_v: float = 14.1
    maf_gps: float = 3.0
    map_kpa: float = 33.0
    fuel_rate_lph: float = 0.9
    ambient_c: float = 18.0
    stored_dtcs: list[str] = field(default_factory=list)
    pending_dtcs: list[str] = field(default_factory=list)
    permanent_dtcs: list[str] = field(default_factory=list)
    freeze_frame: dict[int, float] | None = None
    freeze_dtc: str | None = None


def _gear_for(speed_kmh: float) -> float:
    for ratio in _GEARS:
        if speed_kmh / ratio * 1000.0 < 3000.0:
            return ratio
    return _GEARS[-1]


class SimulatedCar:
    """Thread-safe; ``state()`` advances the physics to the current time of ``clock``.

    With ``realistic`` (a seed), the demo car's drive model sets the state instead of the cycle,
    from ``start_ms`` on.
    """

    def __init__(
        self,
        cycle: DriveCycle | None = None,
        *,
        vin: str = "1HGCM82633A004352",
        clock: Callable[[], float] = time.monotonic,
        realistic: int | None = None,
        start_ms: int | None = None,
    ) -> None:
        self.cycle = cycle or DriveCycle()
        self.vin = vin
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CarState()
        self._phases = self.cycle.phases()
        self._period = sum(seconds for _, seconds in self._phases)
        self._start = clock()
        self._last = self._start
        # The realistic car's schedule runs from ``start_ms`` (now by default): another process
        # driving the same model from the same moment sees the same car (the demo's phone GPS).
        now_ms = int(time.time() * 1000)
        begins = now_ms if start_ms is None else start_ms
        self._live = None if realistic is None else demo_car.LiveCar(realistic, begins)
        self._since_start_s = (now_ms - begins) / 1000
        # The trouble code's story: 0 not begun, 1 pending (on drive ``_pending_on``), 2 told.
        self._story = 0
        self._pending_on = 0

    def _phase_at(self, elapsed: float) -> tuple[str, float, float]:
        t = elapsed % self._period
        for name, seconds in self._phases:
            if t < seconds:
                return name, t, seconds
            t -= seconds
        name, seconds = self._phases[-1]
        return name, seconds, seconds

    def state(self) -> CarState:
        with self._lock:
            now = self._clock()
            if self._live is not None:
                self._follow_model(now - self._start + self._since_start_s)
                return CarState(**{name: getattr(self._state, name) for name in CarState.__slots__})
            # Integrate in small steps so a slow caller still sees smooth temperatures.
            while self._last < now:
                step = min(0.1, now - self._last)
                self._last += step
                self._advance(self._last - self._start, step)
            return CarState(**{name: getattr(self._state, name) for name in CarState.__slots__})

    def _follow_model(self, elapsed: float) -> None:
        assert self._live is not None
        r = self._live.at(elapsed)
        s = self._state
        s.engine_on = r.engine_on
        s.phase = "engine_off" if not r.engine_on else ("drive" if r.speed_kmh > 0 else "idle")
        s.speed_kmh = r.speed_kmh
        s.rpm = r.rpm
        s.throttle_pct = r.throttle_pct
        s.load_pct = r.load_pct
        s.coolant_c = r.coolant_c
        s.intake_c = r.intake_c
        s.oil_c = r.oil_c
        s.fuel_pct = r.fuel_pct
        s.run_time_s = r.run_time_s
        s.battery_v = r.battery_v
        s.maf_gps = r.maf_gps
        s.map_kpa = r.map_kpa
        s.fuel_rate_lph = r.fuel_rate_lph
        s.ambient_c = r.ambient_c
        if not r.engine_on:
            return
        drive = self._live.drives_begun(elapsed)
        code = demo_car.DTC_CODE
        if self._story == 0 and drive >= 2 and r.speed_kmh > 90:
            # The catalyst monitor ran on the motorway and failed once: pending.
            self._story, self._pending_on = 1, drive
            if code not in s.pending_dtcs:
                s.pending_dtcs = [*s.pending_dtcs, code]
        elif self._story == 1 and drive > self._pending_on and r.speed_kmh > 40:
            # Failed again on the next drive: confirmed, the check-engine light on.
            self._story = 2
            s.pending_dtcs = [c for c in s.pending_dtcs if c != code]
            if code not in s.stored_dtcs:
                s.stored_dtcs = [code, *s.stored_dtcs]
            s.freeze_dtc = code
            s.freeze_frame = {0x05: r.coolant_c, 0x0C: r.rpm, 0x0D: r.speed_kmh, 0x04: r.load_pct}

    def _advance(self, elapsed: float, dt: float) -> None:
        s = self._state
        phase, t, length = self._phase_at(elapsed)
        s.phase = phase
        target_speed = s.speed_kmh
        if phase == "engine_off":
            s.engine_on = False
            s.speed_kmh = 0.0
            s.rpm = 0.0
            s.throttle_pct = 0.0
            s.load_pct = 0.0
            s.run_time_s = 0.0
            s.battery_v = 12.4
            s.maf_gps = 0.0
            s.fuel_rate_lph = 0.0
            s.map_kpa = 101.0
            s.coolant_c = max(20.0, s.coolant_c - 0.05 * dt)
            return
        if not s.engine_on:
            s.engine_on = True
        s.battery_v = 14.1 + 0.05 * math.sin(elapsed)
        s.run_time_s += dt
        if phase in ("idle", "stop"):
            target_speed = 0.0
            s.throttle_pct = 14.0
        elif phase == "accelerate":
            target_speed = self.cycle.cruise_kmh * min(1.0, (t + dt) / length)
            s.throttle_pct = 55.0 + 20.0 * math.sin(t)
        elif phase == "cruise":
            target_speed = self.cycle.cruise_kmh + 3.0 * math.sin(t / 2.0)
            s.throttle_pct = 24.0 + 3.0 * math.sin(t / 2.0)
        elif phase == "brake":
            target_speed = self.cycle.cruise_kmh * max(0.0, 1.0 - (t + dt) / length)
            s.throttle_pct = 0.0
        s.speed_kmh = max(0.0, target_speed)
        if s.speed_kmh < 1.0:
            s.rpm = _IDLE_RPM + 25.0 * math.sin(elapsed * 3.0)
        else:
            s.rpm = max(_IDLE_RPM, s.speed_kmh / _gear_for(s.speed_kmh) * 1000.0)
        s.load_pct = min(100.0, 18.0 + s.throttle_pct * 0.9)
        s.map_kpa = 30.0 + s.load_pct * 0.7
        s.maf_gps = s.rpm * s.load_pct / 12000.0
        s.coolant_c = min(90.0, s.coolant_c + 0.4 * dt)
        s.oil_c = min(98.0, s.oil_c + 0.3 * dt)
        s.intake_c = 22.0 + s.load_pct / 20.0
        s.fuel_rate_lph = s.maf_gps * 3600.0 / 14.7 / 745.0
        s.fuel_pct = max(5.0, s.fuel_pct - s.maf_gps * dt / 2000.0)

    def set_dtcs(
        self, stored: Sequence[str], pending: Sequence[str] = (), permanent: Sequence[str] = ()
    ) -> None:
        now = self.state()
        with self._lock:
            if demo_car.DTC_CODE in stored:
                self._story = 2  # the code's story is over before it began
            self._state.stored_dtcs = list(stored)
            self._state.pending_dtcs = list(pending)
            self._state.permanent_dtcs = list(permanent)
            if stored:
                self._state.freeze_dtc = stored[0]
                self._state.freeze_frame = {
                    0x05: now.coolant_c,
                    0x0C: now.rpm,
                    0x0D: now.speed_kmh,
                    0x04: now.load_pct,
                }
                if self._live is not None and not now.engine_on:
                    # A code stored before: the car kept a moment of driving, not of standing.
                    r = self._live.cruising()
                    self._state.freeze_frame = {
                        0x05: r.coolant_c,
                        0x0C: r.rpm,
                        0x0D: r.speed_kmh,
                        0x04: r.load_pct,
                    }

    def clear_dtcs(self) -> None:
        with self._lock:
            self._state.stored_dtcs = []
            self._state.pending_dtcs = []
            self._state.freeze_dtc = None
            self._state.freeze_frame = None
