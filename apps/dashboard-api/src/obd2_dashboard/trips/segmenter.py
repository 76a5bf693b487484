"""Cuts a vehicle's samples into trips and summarises each one, in one pass in time order.

A sample shows the car in use when it is RPM > 0 or SPEED > 0. A trip runs from the first such
sample to the last; a stretch longer than the join gap with none of them ends it, so a short stop
(a fuel stop with the engine off) stays inside one trip and a park splits two. Other samples
belong to a trip when they fall between its first and last "in use" sample.

The summary is kept as running totals plus the last reading of each integrated PID
(``TripState``), so a trip can be resumed from its stored state when newer samples arrive and
the result is the same as reading the whole drive again.

Formulas:

- distance: the ODOMETER delta when the trip has two or more ODOMETER samples, else SPEED (km/h)
  integrated over time with the trapezoid rule between consecutive SPEED samples at most
  ``STALE_MS`` apart (a longer silence is unknown, not interpolated).
- moving time: time during which the latest SPEED sample is > 0; idle time: the latest SPEED is
  0 (or absent) and the latest RPM is > 0. A reading older than ``STALE_MS`` counts as unknown,
  so an engine-off stop with no samples adds neither.
- fuel: FUEL_RATE (L/h) integrated like SPEED. Without FUEL_RATE, MAF (g/s of air) integrated to
  grams of air; read-time conversion: fuel g = air g / AFR (14.7 petrol, 14.5 diesel) and
  litres = fuel g / density (745 g/L petrol, 832 g/L diesel). Stoichiometric AFR is what a
  closed-loop engine runs at cruise, so this slightly overestimates lean-burn diesels.
"""

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from obd2_dashboard.models import ROLLUP_BUCKET_MS, FuelType

# The PIDs a trip is made of; samples of other PIDs never change a trip.
TRIP_PIDS = (
    "COOLANT_TEMP",
    "FUEL_RATE",
    "GPS_LAT",
    "GPS_LON",
    "MAF",
    "ODOMETER",
    "RPM",
    "SPEED",
)
# Readings further apart than this leave the time between them unknown: no distance, fuel or
# moving/idle time is credited for it (an engine-off stop, or the adapter dropping out).
STALE_MS = 15_000
# A GPS_LAT and a GPS_LON at most this far apart are one fix.
GPS_PAIR_MS = 1_000
STATE_VERSION = 1
MS_PER_HOUR = 3_600_000

AIR_FUEL_RATIO = {FuelType.petrol: 14.7, FuelType.diesel: 14.5}
FUEL_DENSITY_G_PER_L = {FuelType.petrol: 745.0, FuelType.diesel: 832.0}


def fuel_litres_from_air(air_g: float, fuel_type: FuelType) -> float:
    return air_g / AIR_FUEL_RATIO[fuel_type] / FUEL_DENSITY_G_PER_L[fuel_type]


def is_running(pid: str, value: float) -> bool:
    return value > 0 and pid in {"RPM", "SPEED"}


Reading = tuple[int, float]  # (ts ms, value)


def _trapezoid(last: Reading | None, ts: int, value: float) -> float:
    """Area under the line from the last reading to this one, in value-hours."""
    if last is None or ts - last[0] > STALE_MS:
        return 0.0
    return (last[1] + value) / 2 * (ts - last[0]) / MS_PER_HOUR


def _fresh_positive(reading: Reading | None, ts: int) -> bool:
    return reading is not None and reading[1] > 0 and ts - reading[0] <= STALE_MS


def _max(current: float | None, value: float) -> float:
    return value if current is None or value > current else current


@dataclass(slots=True)
class TripState:
    start_ts: int
    end_ts: int
    count: int = 0
    # Samples consumed per minute start: lets the worker check cheaply that no older sample
    # arrived inside the trip since it was stored.
    minutes: dict[int, int] = field(default_factory=dict)
    speed_km: float = 0.0
    moving_ms: int = 0
    idle_ms: int = 0
    max_speed: float | None = None
    max_rpm: float | None = None
    max_coolant: float | None = None
    odo_first: float | None = None
    odo_last: float | None = None
    odo_count: int = 0
    fuel_l: float = 0.0
    fuel_count: int = 0
    air_g: float = 0.0
    maf_count: int = 0
    last_speed: Reading | None = None
    last_rpm: Reading | None = None
    last_fuel: Reading | None = None
    last_maf: Reading | None = None
    clock_ts: int | None = None
    last_lat: Reading | None = None
    last_lon: Reading | None = None
    last_point_ts: int | None = None
    points: int = 0

    def to_json(self) -> str:
        data = asdict(self)
        data["minutes"] = {str(minute): n for minute, n in self.minutes.items()}
        return json.dumps({"v": STATE_VERSION, **data}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "TripState | None":
        """The stored state, or None when it is of another version (then recompute)."""
        data: dict[str, Any] = json.loads(text)
        if data.pop("v", None) != STATE_VERSION:
            return None
        data["minutes"] = {int(minute): n for minute, n in data["minutes"].items()}
        for name in ("last_speed", "last_rpm", "last_fuel", "last_maf", "last_lat", "last_lon"):
            if data[name] is not None:
                data[name] = (int(data[name][0]), float(data[name][1]))
        return cls(**data)

    # What the trips table stores, derived from the totals.

    @property
    def distance_source(self) -> str:
        return "odometer" if self.odo_count >= 2 else "speed"

    @property
    def distance_km(self) -> float:
        if self.odo_first is not None and self.odo_last is not None and self.odo_count >= 2:
            return max(0.0, self.odo_last - self.odo_first)
        return self.speed_km

    @property
    def fuel_rate_l(self) -> float | None:
        return self.fuel_l if self.fuel_count else None

    @property
    def maf_air_g(self) -> float | None:
        return self.air_g if self.maf_count else None


class TripBuilder:
    """One trip being summarised; samples must be added in time order."""

    def __init__(self, state: TripState, *, resumed: bool = False) -> None:
        self.state = state
        self.resumed = resumed
        self.new_points: list[tuple[int, float, float]] = []

    @classmethod
    def starting_at(cls, ts: int) -> "TripBuilder":
        return cls(TripState(start_ts=ts, end_ts=ts))

    def add(self, ts: int, pid: str, value: float) -> None:
        st = self.state
        st.count += 1
        minutes = st.minutes
        minute = ts - ts % ROLLUP_BUCKET_MS
        minutes[minute] = minutes.get(minute, 0) + 1
        if pid in {"SPEED", "RPM"}:
            if value > 0:
                st.end_ts = ts
            self._advance_clock(ts)
        if pid == "SPEED":
            st.speed_km += _trapezoid(st.last_speed, ts, value)
            st.last_speed = (ts, value)
            st.max_speed = _max(st.max_speed, value)
        elif pid == "RPM":
            st.last_rpm = (ts, value)
            st.max_rpm = _max(st.max_rpm, value)
        elif pid == "COOLANT_TEMP":
            st.max_coolant = _max(st.max_coolant, value)
        elif pid == "ODOMETER":
            if st.odo_first is None:
                st.odo_first = value
            st.odo_last = value
            st.odo_count += 1
        elif pid == "FUEL_RATE":
            st.fuel_l += _trapezoid(st.last_fuel, ts, value)
            st.last_fuel = (ts, value)
            st.fuel_count += 1
        elif pid == "MAF":
            # g/s integrated over hours: 3600 of them make grams.
            st.air_g += _trapezoid(st.last_maf, ts, value) * 3600
            st.last_maf = (ts, value)
            st.maf_count += 1
        elif pid == "GPS_LAT":
            st.last_lat = (ts, value)
            self._pair_gps()
        elif pid == "GPS_LON":
            st.last_lon = (ts, value)
            self._pair_gps()

    def _advance_clock(self, ts: int) -> None:
        """Credits the time since the last RPM/SPEED reading to moving or idle."""
        st = self.state
        if st.clock_ts is not None:
            elapsed = ts - st.clock_ts
            if 0 < elapsed <= STALE_MS:
                moving = _fresh_positive(st.last_speed, ts)
                running = _fresh_positive(st.last_rpm, ts)
                if moving:
                    st.moving_ms += elapsed
                elif running:
                    st.idle_ms += elapsed
        st.clock_ts = ts

    def _pair_gps(self) -> None:
        st = self.state
        if st.last_lat is None or st.last_lon is None:
            return
        ts = max(st.last_lat[0], st.last_lon[0])
        if abs(st.last_lat[0] - st.last_lon[0]) > GPS_PAIR_MS:
            return
        if st.last_point_ts is not None and ts <= st.last_point_ts:
            return
        st.last_point_ts = ts
        st.points += 1
        self.new_points.append((ts, st.last_lat[1], st.last_lon[1]))
        # Each reading makes at most one fix.
        st.last_lat = st.last_lon = None


class Segmenter:
    """Feeds samples in time order to the trip they belong to; ``finish`` returns the trips."""

    def __init__(self, join_gap_ms: int, resume: TripBuilder | None = None) -> None:
        self.join_gap_ms = join_gap_ms
        self.trips: list[TripBuilder] = []
        self.current = resume
        # Samples after the current trip's last "in use" one: part of it only if the car is in
        # use again within the join gap.
        self.pending: list[tuple[int, str, float]] = []
        # Samples of the latest instant while no trip is open: part of a trip that starts at
        # that same instant (they sort before its first RPM or SPEED sample).
        self.lead: list[tuple[int, str, float]] = []

    def feed(self, samples: Iterable[tuple[int, str, float]]) -> None:
        for ts, pid, value in samples:
            self.add(ts, pid, value)

    def add(self, ts: int, pid: str, value: float) -> None:
        current = self.current
        joins = current is not None and ts - current.state.end_ts <= self.join_gap_ms
        if is_running(pid, value):
            if current is not None and joins:
                for sample in self.pending:
                    current.add(*sample)
            else:
                if current is not None:
                    self._close(current)
                current = self.current = TripBuilder.starting_at(ts)
                for sample in self.lead:
                    if sample[0] == ts:
                        current.add(*sample)
            self.pending.clear()
            self.lead.clear()
            current.add(ts, pid, value)
        elif joins:
            self.pending.append((ts, pid, value))
        else:
            if self.lead and self.lead[0][0] != ts:
                self.lead.clear()
            self.lead.append((ts, pid, value))

    def _close(self, trip: TripBuilder) -> None:
        # Samples of the very instant the trip ended belong to it.
        for sample in self.pending:
            if sample[0] == trip.state.end_ts:
                trip.add(*sample)
        self.trips.append(trip)

    def finish(self) -> list[TripBuilder]:
        if self.current is not None:
            self._close(self.current)
            self.current = None
        self.pending.clear()
        return self.trips
