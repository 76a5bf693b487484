"""Cuts a vehicle's samples into trips and summarises each one, in one pass in time order.

A sample shows the car in use when it is RPM > 0 or SPEED > 0. A trip runs from the first such
sample to the last; a stretch longer than the join gap with none of them ends it, so a short stop
(a fuel stop with the engine off) stays inside one trip and a park splits two. Other samples
belong to a trip when they fall between its first and last "in use" sample.

The summary is kept as totals per minute plus the last reading of each integrated PID
(``TripState``), so a trip can be resumed from its stored state when newer samples arrive, and
late samples inside a trip recompute only their minute and the next (a reading reaches at most
``STALE_MS`` forward); either way the result is the same, to the bit, as reading the whole
drive again, because the trip's figures are always the per-minute totals summed in minute order.

Formulas:

- distance: the ODOMETER delta when the trip has two or more ODOMETER samples, else SPEED (km/h)
  integrated over time with the trapezoid rule between consecutive SPEED samples at most
  ``STALE_MS`` apart (a longer silence is unknown, not interpolated).
- moving time: time during which the latest SPEED sample is > 0; idle time: the latest SPEED is
  0 (or absent) and the latest RPM is > 0. A reading older than ``STALE_MS`` counts as unknown,
  so an engine-off stop with no samples adds neither.
- fuel: FUEL_RATE (L/h) integrated like SPEED; Torque's fuel flow (TORQUE_FF125D, L/h) the same
  way into a total of its own; MAF (g/s of air) integrated to grams of air. The trip's fuel is
  the first of them the car sent (read-time choice, see trips.service.fuel_used); from air:
  fuel g = air g / AFR (14.7 petrol, 14.5 diesel) and litres = fuel g / density (745 g/L
  petrol, 832 g/L diesel). Stoichiometric AFR is what a closed-loop engine runs at cruise, so
  this slightly overestimates lean-burn diesels.

Torque's session (TORQUE_SESSION, one marker per upload) is a hint, never the only rule: a
marker of a new session after the car has been out of use for ``SESSION_MIN_GAP_MS`` ends the
trip even within the join gap (the phone began a new drive); a session change while driving
ends nothing, and one session never holds a trip together past the join gap. Samples are taken
an instant at a time so that a marker counts before the running samples of its own instant.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from obd2_dashboard.models import ROLLUP_BUCKET_MS, FuelType
from obd2_dashboard.pids.definitions import TORQUE_FUEL_FLOW, TORQUE_SESSION

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
    TORQUE_FUEL_FLOW,
    TORQUE_SESSION,
)
# Readings further apart than this leave the time between them unknown: no distance, fuel or
# moving/idle time is credited for it (an engine-off stop, or the adapter dropping out).
STALE_MS = 15_000
# A GPS_LAT and a GPS_LON at most this far apart are one fix.
GPS_PAIR_MS = 1_000
GPS_PIDS = ("GPS_LAT", "GPS_LON")
# A new Torque session this long after the car was last in use ends the trip.
SESSION_MIN_GAP_MS = 60_000
STATE_VERSION = 3
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


_TOTALS_FIELDS = (
    "count",
    "gps",
    "speed_km",
    "moving_ms",
    "idle_ms",
    "max_speed",
    "max_rpm",
    "max_coolant",
    "odo_first",
    "odo_last",
    "odo_count",
    "fuel_l",
    "fuel_count",
    "air_g",
    "maf_count",
    "flow_l",
    "flow_count",
)


def _max_of(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if b > a else a


@dataclass(slots=True)
class Totals:
    """What a stretch of a trip adds up to: one minute's samples, or (merged in order) the trip.

    An integral's term belongs to the minute of the later of its two readings, and moving or idle
    time to the minute of the RPM/SPEED reading that ends it; so a minute's totals depend only
    on the trip's samples in that minute and in the ``STALE_MS`` before it.
    """

    count: int = 0
    gps: int = 0
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
    flow_l: float = 0.0
    flow_count: int = 0

    def merge(self, later: "Totals") -> None:
        self.count += later.count
        self.gps += later.gps
        self.speed_km += later.speed_km
        self.moving_ms += later.moving_ms
        self.idle_ms += later.idle_ms
        self.max_speed = _max_of(self.max_speed, later.max_speed)
        self.max_rpm = _max_of(self.max_rpm, later.max_rpm)
        self.max_coolant = _max_of(self.max_coolant, later.max_coolant)
        if self.odo_first is None:
            self.odo_first = later.odo_first
        if later.odo_last is not None:
            self.odo_last = later.odo_last
        self.odo_count += later.odo_count
        self.fuel_l += later.fuel_l
        self.fuel_count += later.fuel_count
        self.air_g += later.air_g
        self.maf_count += later.maf_count
        self.flow_l += later.flow_l
        self.flow_count += later.flow_count

    def to_list(self) -> list[float | None]:
        return [getattr(self, name) for name in _TOTALS_FIELDS]

    @classmethod
    def from_list(cls, values: list[Any]) -> "Totals":
        return cls(*values)

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

    @property
    def fuel_flow_l(self) -> float | None:
        return self.flow_l if self.flow_count else None


def _newer(a: Reading | None, b: Reading | None) -> Reading | None:
    """The later of two readings in sample order (time, then value)."""
    if a is None:
        return b
    if b is None:
        return a
    return b if b > a else a


def _recent(reading: Reading | None, since: int) -> Reading | None:
    return reading if reading is not None and reading[0] >= since else None


@dataclass(slots=True)
class TripState:
    start_ts: int
    end_ts: int
    # Totals per minute start. Summed in minute order they make the trip's figures, so
    # recomputing a few minutes (late samples inside a long trip) gives the same figures, to
    # the bit, as a pass over the whole trip. Their counts also let the worker check cheaply
    # which minutes gained samples since the trip was stored.
    minutes: dict[int, Totals] = field(default_factory=dict)
    last_speed: Reading | None = None
    last_rpm: Reading | None = None
    last_fuel: Reading | None = None
    last_maf: Reading | None = None
    last_flow: Reading | None = None
    clock_ts: int | None = None
    last_lat: Reading | None = None
    last_lon: Reading | None = None
    last_point_ts: int | None = None
    points: int = 0
    # The newest Torque session marker of the trip.
    last_session: Reading | None = None

    def totals(self) -> Totals:
        whole = Totals()
        for minute in sorted(self.minutes):
            whole.merge(self.minutes[minute])
        return whole

    def to_json(self) -> str:
        # A reading older than STALE_MS before the end can never count again (later samples
        # are after the end): left out, so the state depends only on the trip's samples and not
        # on the order in which they were summarised.
        since = self.end_ts - STALE_MS
        data = {
            "v": STATE_VERSION,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "minutes": {str(m): self.minutes[m].to_list() for m in sorted(self.minutes)},
            "last_speed": _recent(self.last_speed, since),
            "last_rpm": _recent(self.last_rpm, since),
            "last_fuel": _recent(self.last_fuel, since),
            "last_maf": _recent(self.last_maf, since),
            "last_flow": _recent(self.last_flow, since),
            "clock_ts": self.clock_ts
            if self.clock_ts is not None and self.clock_ts >= since
            else None,
            "last_lat": self.last_lat,
            "last_lon": self.last_lon,
            "last_point_ts": self.last_point_ts,
            "points": self.points,
            "last_session": self.last_session,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "TripState | None":
        """The stored state, or None when it is of another version (then recompute)."""
        data: dict[str, Any] = json.loads(text)
        if data.pop("v", None) != STATE_VERSION:
            return None
        data["minutes"] = {int(m): Totals.from_list(v) for m, v in data["minutes"].items()}
        for name in (
            "last_speed",
            "last_rpm",
            "last_fuel",
            "last_maf",
            "last_flow",
            "last_lat",
            "last_lon",
            "last_session",
        ):
            if data[name] is not None:
                data[name] = (int(data[name][0]), float(data[name][1]))
        return cls(**data)

    def blank(self) -> "TripState":
        """A state of the same bounds with nothing summed yet."""
        return TripState(start_ts=self.start_ts, end_ts=self.end_ts)

    def take_minutes(self, fresh: "TripState", minutes: Iterable[int]) -> None:
        """Replaces the totals of ``minutes`` (contiguous) with those of ``fresh``.

        ``fresh`` summed the trip's samples in time order from ``STALE_MS`` before the first of
        ``minutes`` (or from the trip's start) to the end of the last (or the trip's end). The
        trip's bounds stay: the caller knows no sample that could move them is new.
        """
        for minute in minutes:
            totals = fresh.minutes.get(minute)
            if totals is None:
                self.minutes.pop(minute, None)
            else:
                self.minutes[minute] = totals
        self.last_speed = _newer(self.last_speed, fresh.last_speed)
        self.last_rpm = _newer(self.last_rpm, fresh.last_rpm)
        self.last_fuel = _newer(self.last_fuel, fresh.last_fuel)
        self.last_maf = _newer(self.last_maf, fresh.last_maf)
        self.last_flow = _newer(self.last_flow, fresh.last_flow)
        self.last_session = _newer(self.last_session, fresh.last_session)
        if fresh.clock_ts is not None and (self.clock_ts is None or fresh.clock_ts > self.clock_ts):
            self.clock_ts = fresh.clock_ts

    def take_track(self, fresh: "TripState") -> None:
        """Takes the GPS pairing of ``fresh``, which was fed all the trip's GPS samples."""
        self.last_lat, self.last_lon = fresh.last_lat, fresh.last_lon
        self.last_point_ts, self.points = fresh.last_point_ts, fresh.points


@dataclass(frozen=True, slots=True)
class Recount:
    """Contiguous minutes of a trip to sum again, from the samples in [since, until]."""

    minutes: list[int]
    since: int
    until: int


def recounts(state: TripState, changed: Iterable[int]) -> list[Recount]:
    """What to read again when samples arrived inside a trip in the ``changed`` minutes: each
    of them and the minute after (a reading counts up to ``STALE_MS`` later), read from
    ``STALE_MS`` before (the readings a minute's first terms start from)."""
    first = state.start_ts - state.start_ts % ROLLUP_BUCKET_MS
    last = state.end_ts - state.end_ts % ROLLUP_BUCKET_MS
    redo = sorted({m for c in changed for m in (c, c + ROLLUP_BUCKET_MS) if first <= m <= last})
    runs: list[list[int]] = []
    for minute in redo:
        if runs and minute - runs[-1][-1] == ROLLUP_BUCKET_MS:
            runs[-1].append(minute)
        else:
            runs.append([minute])
    return [
        Recount(
            run,
            max(state.start_ts, run[0] - STALE_MS),
            min(state.end_ts, run[-1] + ROLLUP_BUCKET_MS - 1),
        )
        for run in runs
    ]


class TripBuilder:
    """One trip being summarised; samples must be added in time order."""

    def __init__(self, state: TripState, *, resumed: bool = False) -> None:
        self.state = state
        self.resumed = resumed
        self.new_points: list[tuple[int, float, float]] = []
        self._minute = -1
        self._totals = Totals()

    @classmethod
    def starting_at(cls, ts: int) -> "TripBuilder":
        return cls(TripState(start_ts=ts, end_ts=ts))

    def add(self, ts: int, pid: str, value: float) -> None:
        st = self.state
        minute = ts - ts % ROLLUP_BUCKET_MS
        part = self._totals
        if minute != self._minute:
            found = st.minutes.get(minute)
            if found is None:
                found = st.minutes[minute] = Totals()
            part = self._totals = found
            self._minute = minute
        part.count += 1
        if pid == "SPEED":
            if value > 0:
                st.end_ts = ts
            self._advance_clock(ts, part)
            part.speed_km += _trapezoid(st.last_speed, ts, value)
            st.last_speed = (ts, value)
            part.max_speed = _max(part.max_speed, value)
        elif pid == "RPM":
            if value > 0:
                st.end_ts = ts
            self._advance_clock(ts, part)
            st.last_rpm = (ts, value)
            part.max_rpm = _max(part.max_rpm, value)
        elif pid == "COOLANT_TEMP":
            part.max_coolant = _max(part.max_coolant, value)
        elif pid == "ODOMETER":
            if part.odo_first is None:
                part.odo_first = value
            part.odo_last = value
            part.odo_count += 1
        elif pid == "FUEL_RATE":
            part.fuel_l += _trapezoid(st.last_fuel, ts, value)
            st.last_fuel = (ts, value)
            part.fuel_count += 1
        elif pid == "MAF":
            # g/s integrated over hours: 3600 of them make grams.
            part.air_g += _trapezoid(st.last_maf, ts, value) * 3600
            st.last_maf = (ts, value)
            part.maf_count += 1
        elif pid == TORQUE_FUEL_FLOW:
            part.flow_l += _trapezoid(st.last_flow, ts, value)
            st.last_flow = (ts, value)
            part.flow_count += 1
        elif pid == TORQUE_SESSION:
            st.last_session = _newer(st.last_session, (ts, value))
        elif pid in {"GPS_LAT", "GPS_LON"}:
            part.gps += 1
            self.add_gps(ts, pid, value)

    def _advance_clock(self, ts: int, part: Totals) -> None:
        """Credits the time since the last RPM/SPEED reading to moving or idle."""
        st = self.state
        if st.clock_ts is not None:
            elapsed = ts - st.clock_ts
            if 0 < elapsed <= STALE_MS:
                moving = _fresh_positive(st.last_speed, ts)
                running = _fresh_positive(st.last_rpm, ts)
                if moving:
                    part.moving_ms += elapsed
                elif running:
                    part.idle_ms += elapsed
        st.clock_ts = ts

    def add_gps(self, ts: int, pid: str, value: float) -> None:
        st = self.state
        if pid == "GPS_LAT":
            st.last_lat = (ts, value)
        else:
            st.last_lon = (ts, value)
        if st.last_lat is None or st.last_lon is None:
            return
        fix_ts = max(st.last_lat[0], st.last_lon[0])
        if abs(st.last_lat[0] - st.last_lon[0]) > GPS_PAIR_MS:
            return
        if st.last_point_ts is not None and fix_ts <= st.last_point_ts:
            return
        st.last_point_ts = fix_ts
        st.points += 1
        self.new_points.append((fix_ts, st.last_lat[1], st.last_lon[1]))
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
        # The samples of the instant being read, taken together once it is complete.
        self.instant: list[tuple[int, str, float]] = []
        # A new Torque session began after the current trip's last use (see the module).
        self.new_session = False

    def feed(self, samples: Iterable[tuple[int, str, float]]) -> None:
        for ts, pid, value in samples:
            self.add(ts, pid, value)

    def add(self, ts: int, pid: str, value: float) -> None:
        if self.instant and self.instant[0][0] != ts:
            self._take_instant()
        self.instant.append((ts, pid, value))

    def _take_instant(self) -> None:
        instant, self.instant = self.instant, []
        for ts, pid, value in instant:
            if pid == TORQUE_SESSION:
                self._session_marker(ts, value)
        for ts, pid, value in instant:
            self._take(ts, pid, value)

    def _session_marker(self, ts: int, value: float) -> None:
        current = self.current
        if current is None:
            return
        last = current.state.last_session
        if (
            last is not None
            and last[1] != value
            and ts - current.state.end_ts >= SESSION_MIN_GAP_MS
        ):
            self.new_session = True

    def _take(self, ts: int, pid: str, value: float) -> None:
        current = self.current
        joins = (
            current is not None
            and ts - current.state.end_ts <= self.join_gap_ms
            and not self.new_session
        )
        if is_running(pid, value):
            if current is not None and joins:
                for sample in self.pending:
                    current.add(*sample)
            else:
                if current is not None:
                    self._close(current)
                current = self.current = TripBuilder.starting_at(ts)
                self.new_session = False
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
        self._take_instant()
        if self.current is not None:
            self._close(self.current)
            self.current = None
        self.pending.clear()
        self.new_session = False
        return self.trips
