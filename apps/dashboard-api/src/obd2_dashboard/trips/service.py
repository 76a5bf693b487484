import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from xml.etree import ElementTree as ET

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.kit.version import VERSION
from obd2_dashboard.models import ROLLUP_BUCKET_MS, FuelType, Trip, User, Vehicle
from obd2_dashboard.pids.definitions import TORQUE_SESSION
from obd2_dashboard.telemetry.service import raw_buckets, rollup_buckets
from obd2_dashboard.telemetry.values import Bucket
from obd2_dashboard.trips.repository import TripRepository
from obd2_dashboard.trips.segmenter import (
    GPS_PIDS,
    TRIP_PIDS,
    Segmenter,
    Totals,
    TripBuilder,
    TripState,
    fuel_litres_from_air,
    recounts,
)
from obd2_dashboard.vehicles.service import get_vehicle

log = logging.getLogger("obd2_dashboard.trips")

RECOMPUTED = Counter("obd2_trip_windows_total", "Trip windows recomputed", ["path"])
RECOMPUTE_SECONDS = Histogram("obd2_trip_recompute_seconds", "Time to recompute a trip window")

CHART_PIDS = ("SPEED", "RPM")
CHART_MAX_POINTS = 500
# Below this distance an economy figure is noise.
MIN_ECONOMY_KM = 0.1
_CURSOR = re.compile(r"^(\d{1,16})_(\d{1,19})$")
GPX_NS = "http://www.topografix.com/GPX/1/1"


class TripNotFoundError(Exception):
    def __init__(self, trip_id: int) -> None:
        super().__init__(f"trip {trip_id} not found")


class InvalidCursorError(Exception):
    pass


# The worker's side: keep the stored trips equal to a segmentation of all samples.


def windows(minutes: Iterable[int], join_gap_ms: int) -> list[tuple[int, int]]:
    """Touched minutes grouped into [start, end) spans that no trip can join across."""
    spans: list[tuple[int, int]] = []
    for minute in sorted(set(minutes)):
        end = minute + ROLLUP_BUCKET_MS
        if spans and minute - spans[-1][1] <= join_gap_ms:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((minute, end))
    return spans


@dataclass(frozen=True, slots=True)
class TripChange:
    """What a consumer of trip events hears about: ``kind`` is ``trip.started``,
    ``trip.updated``, ``trip.finished`` or ``trip.merged`` (then ``into`` is the trip that
    absorbed it, when one did)."""

    kind: str
    trip_id: int
    into: int | None = None


async def recompute_vehicle(
    session: AsyncSession, vehicle_id: int, buckets: Iterable[tuple[str, int]], join_gap_ms: int
) -> list[TripChange]:
    """Brings the vehicle's trips up to date with new samples in the given (PID, minute) buckets;
    returns what changed that is worth an event."""
    touched = [(pid, minute) for pid, minute in buckets if pid in TRIP_PIDS]
    spans = windows((minute for _, minute in touched), join_gap_ms)
    if not spans:
        return []
    markers = {minute for pid, minute in touched if pid == TORQUE_SESSION}
    repo = TripRepository(session)
    await repo.lock_vehicle(vehicle_id)
    changes: list[TripChange] = []
    for start, end in spans:
        # A session marker may end a trip: the minute recount cannot tell, a full pass can.
        recount = not any(start <= minute < end for minute in markers)
        with RECOMPUTE_SECONDS.time():
            path = await _recompute_span(
                repo, vehicle_id, start, end, join_gap_ms, changes, recount=recount
            )
        RECOMPUTED.labels(path).inc()
    return changes


async def finish_idle_trips(session: AsyncSession, now_ms: int, join_gap_ms: int) -> list[Trip]:
    """Declares finished the trips with no sample of the car in use for the join gap after their
    end (by the clock: the car's samples carry its time), each once; returns them."""
    repo = TripRepository(session)
    finished: list[Trip] = []
    cutoff = now_ms - join_gap_ms
    for vehicle_id in await repo.vehicles_with_unfinished(cutoff):
        # The vehicle's lock: a recomputation never rewrites a trip while it is declared finished.
        await repo.lock_vehicle(vehicle_id)
        finished += await repo.mark_finished(vehicle_id, cutoff, utcnow())
    return finished


async def finish_backfilled_trips(
    session: AsyncSession, changes: Sequence[TripChange], now_ms: int, join_gap_ms: int
) -> None:
    """Declares finished, with no event, the trips past data built or changed that are over:
    nobody is to be told about a drive of last month as if it had just ended."""
    ids = sorted({c.trip_id for c in changes if c.kind != "trip.merged"})
    await TripRepository(session).mark_finished_ids(ids, now_ms - join_gap_ms, utcnow())


# (start_ts, end_ts, the other stored figures): what a trip event would tell.
Figures = tuple[int, int, tuple[object, ...]]


def _figures(trip: Trip) -> Figures:
    return (
        trip.start_ts,
        trip.end_ts,
        (
            trip.distance_km,
            trip.distance_source,
            trip.moving_s,
            trip.idle_s,
            trip.max_speed_kmh,
            trip.max_rpm,
            trip.max_coolant_c,
            trip.fuel_rate_l,
            trip.fuel_flow_l,
            trip.air_g,
            trip.sample_count,
            trip.track_points,
        ),
    )


def _worth_telling(before: Figures, trip: Trip) -> bool:
    """A changed summary, except that a trip the car is still extending is told once per minute
    of driving (each batch of live samples extends it)."""
    if _figures(trip) == before:
        return False
    start, end, _ = before
    extended = trip.start_ts == start and trip.end_ts > end
    return not (extended and trip.end_ts // ROLLUP_BUCKET_MS == end // ROLLUP_BUCKET_MS)


async def _recompute_span(
    repo: TripRepository,
    vehicle_id: int,
    start: int,
    end: int,
    join_gap_ms: int,
    changes: list[TripChange],
    *,
    recount: bool = True,
) -> str:
    # Every stored trip a sample in [start, end) could extend, merge with or split.
    near = await repo.near(vehicle_id, start - join_gap_ms, end + join_gap_ms)
    if len(near) == 1:
        trip = near[0]
        state = TripState.from_json(trip.state)
        if state is not None:
            bounds = (trip.start_ts, trip.end_ts)
            if recount and not await repo.running_outside(vehicle_id, start, end - 1, bounds):
                # Nothing new can move the trip's bounds (late samples inside it).
                path = await _patch_inside(repo, vehicle_id, trip, state, start, end - 1, changes)
                if path is not None:
                    return path
            elif start > trip.start_ts and await _unchanged_since(repo, vehicle_id, state, start):
                # Only samples after the trip's end are new (the live-driving case): resume it.
                segmenter = Segmenter(join_gap_ms, resume=TripBuilder(state, resumed=True))
                async for chunk in repo.stream_samples(vehicle_id, state.end_ts + 1, end - 1):
                    segmenter.feed(chunk)
                changes += await _store(repo, vehicle_id, near, segmenter.finish())
                return "append"
    for trip in near:
        if await repo.count_samples(vehicle_id, trip.start_ts, trip.end_ts) < trip.sample_count:
            # Raw samples of this trip were deleted (retention): its stored summary is all that
            # is left of it, and recomputing would lose it.
            log.warning(
                "trip kept as stored: its samples were pruned",
                extra={"trip": trip.id, "vehicle": vehicle_id},
            )
            return "kept"
    lo = min([start, *(t.start_ts for t in near)])
    hi = max([end - 1, *(t.end_ts for t in near)])
    segmenter = Segmenter(join_gap_ms)
    async for chunk in repo.stream_samples(vehicle_id, lo, hi):
        segmenter.feed(chunk)
    changes += await _store(repo, vehicle_id, near, segmenter.finish())
    return "full"


async def _unchanged_since(
    repo: TripRepository, vehicle_id: int, state: TripState, start: int
) -> bool:
    """True when the trip's samples from ``start`` (a minute) on are exactly those it consumed."""
    consumed = sum(t.count for minute, t in state.minutes.items() if minute >= start)
    return await repo.count_samples(vehicle_id, start, state.end_ts) == consumed


async def _patch_inside(
    repo: TripRepository,
    vehicle_id: int,
    trip: Trip,
    state: TripState,
    start: int,
    end: int,
    changes: list[TripChange],
) -> str | None:
    """Late samples in [start, end] inside a stored trip, none of them the car in use outside
    its bounds: recomputes only the minutes that gained samples and the minute after each
    (their readings reach ``STALE_MS`` forward).

    None when the full path must decide: samples of the trip went missing (retention), or most
    of the trip changed.
    """
    lo, hi = max(start, trip.start_ts), min(end, trip.end_ts)
    if lo > hi:
        return "unchanged"  # only samples outside any trip (the engine off)
    counts = await repo.minute_counts(vehicle_id, lo, hi)
    changed: list[int] = []
    retrack = False
    for minute in range(lo - lo % ROLLUP_BUCKET_MS, hi + 1, ROLLUP_BUCKET_MS):
        count, gps = counts.get(minute, (0, 0))
        stored = state.minutes.get(minute) or Totals()
        if count < stored.count or gps < stored.gps:
            return None
        if count != stored.count:
            changed.append(minute)
            retrack = retrack or gps != stored.gps
    if not changed:
        return "unchanged"
    plan = recounts(state, changed)
    span = (trip.end_ts - trip.end_ts % ROLLUP_BUCKET_MS) - (
        trip.start_ts - trip.start_ts % ROLLUP_BUCKET_MS
    )
    if 2 * sum(len(r.minutes) for r in plan) > span // ROLLUP_BUCKET_MS + 1:
        return None  # most of the trip: one pass over it is cheaper
    for recount in plan:
        fresh = TripBuilder(state.blank())
        async for chunk in repo.stream_samples(vehicle_id, recount.since, recount.until):
            for ts, pid, value in chunk:
                fresh.add(ts, pid, value)
        state.take_minutes(fresh.state, recount.minutes)
    points: list[tuple[int, float, float]] | None = None
    if retrack:
        fresh = TripBuilder(state.blank())
        async for chunk in repo.stream_samples(vehicle_id, trip.start_ts, trip.end_ts, GPS_PIDS):
            for ts, pid, value in chunk:
                fresh.add_gps(ts, pid, value)
        state.take_track(fresh.state)
        points = fresh.new_points
    before = _figures(trip)
    _summarise(trip, state)
    await repo.save(trip)
    if _worth_telling(before, trip):
        changes.append(TripChange("trip.updated", trip.id))
    if points is not None:
        await repo.clear_points(trip.id)
        await repo.add_points(trip.id, points)
    return "patch"


def _summarise(trip: Trip, st: TripState) -> None:
    """The stored columns from the segmenter's state."""
    totals = st.totals()
    trip.start_ts = st.start_ts
    trip.end_ts = st.end_ts
    trip.distance_km = totals.distance_km
    trip.distance_source = totals.distance_source
    trip.moving_s = totals.moving_ms / 1000
    trip.idle_s = totals.idle_ms / 1000
    trip.max_speed_kmh = totals.max_speed
    trip.max_rpm = totals.max_rpm
    trip.max_coolant_c = totals.max_coolant
    trip.fuel_rate_l = totals.fuel_rate_l
    trip.fuel_flow_l = totals.fuel_flow_l
    trip.air_g = totals.maf_air_g
    trip.sample_count = totals.count
    trip.track_points = st.points
    trip.state = st.to_json()


async def _store(
    repo: TripRepository, vehicle_id: int, old: Sequence[Trip], built: Sequence[TripBuilder]
) -> list[TripChange]:
    """Writes the new segmentation over the old trips, keeping ids where they overlap."""
    changes: list[TripChange] = []
    unused = {trip.id: trip for trip in old}
    absorbed_by: dict[int, int] = {}
    for builder in built:
        st = builder.state
        trip: Trip | None = None
        if builder.resumed:
            trip = unused.pop(old[-1].id)
        else:
            overlapping = [
                c for c in unused.values() if c.start_ts <= st.end_ts and c.end_ts >= st.start_ts
            ]
            if overlapping:
                trip = unused.pop(overlapping[0].id)
                await repo.clear_points(trip.id)
                # Trips joined by late samples: finished when the last of them was.
                trip.finished_at = max(overlapping, key=lambda c: c.end_ts).finished_at
        if trip is None:
            trip = Trip(vehicle_id=vehicle_id)
            _summarise(trip, st)
            await repo.save(trip)
            changes.append(TripChange("trip.started", trip.id))
        else:
            before = _figures(trip)
            _summarise(trip, st)
            await repo.save(trip)
            if _worth_telling(before, trip):
                changes.append(TripChange("trip.updated", trip.id))
        for other in unused.values():
            if other.start_ts <= st.end_ts and other.end_ts >= st.start_ts:
                absorbed_by.setdefault(other.id, trip.id)
        await repo.add_points(trip.id, builder.new_points)
    await repo.delete_many(sorted(unused))
    changes += [TripChange("trip.merged", gone, absorbed_by.get(gone)) for gone in sorted(unused)]
    return changes


# The API's side: reads of stored summaries.


FuelSource = Literal["FUEL_RATE", "TORQUE_FUEL_FLOW", "MAF"]


@dataclass(frozen=True, slots=True)
class Fuel:
    litres: float | None
    source: FuelSource | None


def fuel_used(trip: Trip, fuel_type: FuelType) -> Fuel:
    """The trip's fuel from the best figure the car gave: what the engine's computer reports
    (FUEL_RATE), then Torque's own fuel flow, then the air the engine took in (MAF) with the
    vehicle's fuel type."""
    if trip.fuel_rate_l is not None:
        return Fuel(trip.fuel_rate_l, "FUEL_RATE")
    if trip.fuel_flow_l is not None:
        return Fuel(trip.fuel_flow_l, "TORQUE_FUEL_FLOW")
    if trip.air_g is not None:
        return Fuel(fuel_litres_from_air(trip.air_g, fuel_type), "MAF")
    return Fuel(None, None)


def litres_per_100km(litres: float | None, distance_km: float) -> float | None:
    if litres is None or distance_km < MIN_ECONOMY_KM:
        return None
    return litres / distance_km * 100


def encode_cursor(trip: Trip) -> str:
    return f"{trip.start_ts}_{trip.id}"


def decode_cursor(cursor: str) -> tuple[int, int]:
    match = _CURSOR.match(cursor)
    if match is None:
        raise InvalidCursorError("cursor: not a cursor this API returned")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True, slots=True)
class TripPage:
    vehicle: Vehicle
    trips: Sequence[Trip]
    next_cursor: str | None


async def list_trips(
    session: AsyncSession,
    user: User,
    vehicle_id: int,
    *,
    start_from: int | None,
    start_to: int | None,
    cursor: str | None,
    limit: int,
) -> TripPage:
    vehicle = await get_vehicle(session, user, vehicle_id)
    before = decode_cursor(cursor) if cursor else None
    # One row more than asked tells whether a next page exists.
    rows = await TripRepository(session).page(
        vehicle.id, start_from=start_from, start_to=start_to, before=before, limit=limit + 1
    )
    trips = rows[:limit]
    next_cursor = encode_cursor(trips[-1]) if len(rows) > limit else None
    return TripPage(vehicle, trips, next_cursor)


async def get_trip(
    session: AsyncSession, user: User, vehicle_id: int, trip_id: int
) -> tuple[Vehicle, Trip]:
    vehicle = await get_vehicle(session, user, vehicle_id)
    trip = await TripRepository(session).get(vehicle.id, trip_id)
    if trip is None:
        raise TripNotFoundError(trip_id)
    return vehicle, trip


@dataclass(frozen=True, slots=True)
class TripTotalsFigures:
    trips: int
    distance_km: float
    driving_s: float
    fuel_used_l: float | None


async def trip_totals(
    session: AsyncSession, user: User, vehicle_id: int, start: int, end: int
) -> TripTotalsFigures:
    """What the vehicle's trips that started in [start, end) add up to (the vehicle card's
    week): distance, driving time (start to end of each trip) and the fuel of the trips whose
    car tells it (None when none does)."""
    vehicle = await get_vehicle(session, user, vehicle_id)
    trips = await TripRepository(session).started_between(vehicle.id, start, end)
    fuel_type = FuelType(vehicle.fuel_type)
    litres = [f for f in (fuel_used(trip, fuel_type).litres for trip in trips) if f is not None]
    return TripTotalsFigures(
        trips=len(trips),
        distance_km=sum(trip.distance_km for trip in trips),
        driving_s=sum((trip.end_ts - trip.start_ts) / 1000 for trip in trips),
        fuel_used_l=sum(litres) if litres else None,
    )


async def track(session: AsyncSession, trip: Trip) -> list[tuple[int, float, float]]:
    """The trip's GPS fixes as (ts, lat, lon), in time order."""
    return [(p.ts, p.lat, p.lon) for p in await TripRepository(session).points(trip.id)]


@dataclass(frozen=True, slots=True)
class Chart:
    bucket_ms: int
    series: dict[str, list[Bucket]]


async def trip_charts(session: AsyncSession, trip: Trip) -> Chart:
    """SPEED and RPM over the trip in at most CHART_MAX_POINTS time buckets.

    Raw rows while they exist; the per-minute rollups for long trips, or once retention has
    deleted the raw rows (rollups are kept).
    """
    start, end = trip.start_ts, trip.end_ts + 1
    width = max(1, math.ceil((end - start) / CHART_MAX_POINTS))
    series: dict[str, list[Bucket]] = {}
    rollup_width = max(1, math.ceil(width / ROLLUP_BUCKET_MS)) * ROLLUP_BUCKET_MS
    aligned = start - start % ROLLUP_BUCKET_MS
    use_rollups = width >= ROLLUP_BUCKET_MS
    for pid in CHART_PIDS:
        buckets: list[Bucket] = []
        if not use_rollups:
            buckets = await raw_buckets(session, trip.vehicle_id, pid, start, end, width)
        if not buckets:
            buckets = await rollup_buckets(
                session, trip.vehicle_id, pid, aligned, end, rollup_width
            )
            if buckets:
                use_rollups = True
        series[pid] = buckets
    return Chart(rollup_width if use_rollups else width, series)


def _iso(ts: int) -> str:
    return (
        datetime.fromtimestamp(ts / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


async def trip_gpx(session: AsyncSession, vehicle: Vehicle, trip: Trip) -> bytes:
    """The trip's track as a GPX 1.1 document."""
    points = await TripRepository(session).points(trip.id)
    ET.register_namespace("", GPX_NS)
    root = ET.Element(
        f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": f"obd2-dashboard {VERSION}"}
    )
    metadata = ET.SubElement(root, f"{{{GPX_NS}}}metadata")
    ET.SubElement(metadata, f"{{{GPX_NS}}}name").text = f"{vehicle.name} — trip {trip.id}"
    ET.SubElement(metadata, f"{{{GPX_NS}}}time").text = _iso(trip.start_ts)
    track = ET.SubElement(root, f"{{{GPX_NS}}}trk")
    ET.SubElement(track, f"{{{GPX_NS}}}name").text = f"Trip {trip.id}"
    segment = ET.SubElement(track, f"{{{GPX_NS}}}trkseg")
    for point in points:
        element = ET.SubElement(
            segment, f"{{{GPX_NS}}}trkpt", {"lat": f"{point.lat:.7f}", "lon": f"{point.lon:.7f}"}
        )
        ET.SubElement(element, f"{{{GPX_NS}}}time").text = _iso(point.ts)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body
