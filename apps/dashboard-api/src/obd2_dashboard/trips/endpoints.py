from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import StreamingResponse

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import SessionDep, SettingsDep, StateDep
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.kit.schemas import IdPath, error_responses
from obd2_dashboard.models import FuelType, Trip, Vehicle
from obd2_dashboard.pids import service as pids
from obd2_dashboard.presence import service as presence
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.export import CsvLayout, download_name, samples_csv_response
from obd2_dashboard.telemetry.service import pids_with_samples
from obd2_dashboard.trips import service
from obd2_dashboard.trips.schemas import TripCharts, TripDetail, TripRead, TripTotals, TripTrack
from obd2_dashboard.units.schemas import UnitsQuery
from obd2_dashboard.units.service import unit_system_of
from obd2_dashboard.vehicles.service import VehicleNotFoundError
from obd2_protocol import PIDS

router = APIRouter(prefix="/vehicles/{vehicle_id}/trips", tags=["trips"])

MAX_PAGE = 500
MAX_TRACK_POINTS = 2000
MAX_TOTALS_SPAN_MS = 400 * 24 * 3600 * 1000
NEXT_CURSOR_HEADER = "X-Next-Cursor"


def trip_file(vehicle: Vehicle, trip: Trip, extension: str, *, long: bool = False) -> str:
    """``demo-car-2026-12-07-trip-12.gpx``; ``…-trip-12-long.csv`` for a row per sample"""
    what = f"trip-{trip.id}-long" if long else f"trip-{trip.id}"
    return download_name(vehicle.name, vehicle.id, trip.start_ts, what, extension)


def _in_progress(vehicle: Vehicle, settings: Settings) -> Callable[[Trip], bool]:
    """Whether a trip is being driven now: its vehicle is live, and the trip is not finished
    and ended less than the join gap ago (by the clock, as the sweep that finishes it reads
    it), so an older unfinished trip the sweep has not reached yet is not "in progress"."""
    now = utcnow()
    live = presence.of_vehicle(vehicle, now, presence.thresholds(settings)).state == "live"
    recent = int(now.timestamp() * 1000) - settings.TRIP_JOIN_GAP_S * 1000

    def in_progress(trip: Trip) -> bool:
        return live and trip.finished_at is None and trip.end_ts >= recent

    return in_progress


async def _trip(
    session: SessionDep, user: CurrentUser, vehicle_id: int, trip_id: int
) -> tuple[Vehicle, Trip]:
    try:
        return await service.get_trip(session, user, vehicle_id, trip_id)
    except (VehicleNotFoundError, service.TripNotFoundError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.get(
    "",
    response_model=list[TripRead],
    responses={
        200: {
            "description": "Trips, newest first (by start_ts, then id)",
            "headers": {
                NEXT_CURSOR_HEADER: {
                    "description": "pass as `cursor` for the next page; absent on the last page",
                    "schema": {"type": "string"},
                },
                "Link": {
                    "description": 'the next page\'s URL with rel="next"',
                    "schema": {"type": "string"},
                },
            },
        },
        **error_responses(401, 404, 422),
    },
    summary="A vehicle's trips, newest first, a page at a time",
    description=(
        "Pagination: at most `limit` trips; when more exist the answer carries an "
        f'`{NEXT_CURSOR_HEADER}` header (and a `Link: <…>; rel="next"`): send its value as '
        "`cursor` to get the next page. Pages are stable while trips are added. "
        "`from`/`to` keep the trips that start in [from, to)."
    ),
)
async def list_trips(
    vehicle_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    from_: Annotated[
        int | None, Query(alias="from", ge=0, le=2**53, description="epoch ms, inclusive")
    ] = None,
    to: Annotated[int | None, Query(ge=0, le=2**53, description="epoch ms, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=40, description="from the previous page's X-Next-Cursor")
    ] = None,
) -> list[TripRead]:
    if from_ is not None and to is not None and from_ >= to:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from must be earlier than to")
    try:
        page = await service.list_trips(
            session, user, vehicle_id, start_from=from_, start_to=to, cursor=cursor, limit=limit
        )
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except service.InvalidCursorError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if page.next_cursor is not None:
        response.headers[NEXT_CURSOR_HEADER] = page.next_cursor
        query = f"limit={limit}&cursor={page.next_cursor}"
        if from_ is not None:
            query += f"&from={from_}"
        if to is not None:
            query += f"&to={to}"
        response.headers["Link"] = f'</api/v1/vehicles/{page.vehicle.id}/trips?{query}>; rel="next"'
    fuel_type = FuelType(page.vehicle.fuel_type)
    in_progress = _in_progress(page.vehicle, settings)
    return [TripRead.of(trip, fuel_type, in_progress(trip)) for trip in page.trips]


@router.get(
    "/totals",
    response_model=TripTotals,
    responses=error_responses(401, 404, 422),
    summary="What the trips that started in [from, to) add up to: count, distance, time, fuel",
    description="The vehicle card's week: the web UI asks from the start of the person's week "
    f"(Monday 00:00, their clock) to now. At most {MAX_TOTALS_SPAN_MS // 86_400_000} days.",
)
async def trip_totals(
    vehicle_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    from_: Annotated[int, Query(alias="from", ge=0, le=2**53, description="epoch ms, inclusive")],
    to: Annotated[int, Query(ge=0, le=2**53, description="epoch ms, exclusive")],
) -> TripTotals:
    if from_ >= to:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from must be earlier than to")
    if to - from_ > MAX_TOTALS_SPAN_MS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"from and to are more than {MAX_TOTALS_SPAN_MS // 86_400_000} days apart",
        )
    try:
        totals = await service.trip_totals(session, user, vehicle_id, from_, to)
    except VehicleNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return TripTotals.of(totals, from_, to)


@router.get(
    "/{trip_id}/track",
    response_model=TripTrack,
    responses=error_responses(401, 404, 422),
    summary="The trip's GPS track for its map (empty when the car reported no GPS)",
)
async def trip_track(
    vehicle_id: IdPath, trip_id: IdPath, user: CurrentUser, session: SessionDep
) -> TripTrack:
    _, trip = await _trip(session, user, vehicle_id, trip_id)
    points = await service.track(session, trip)
    if len(points) > MAX_TRACK_POINTS:
        step = (len(points) - 1) / (MAX_TRACK_POINTS - 1)
        points = [points[round(i * step)] for i in range(MAX_TRACK_POINTS)]
    return TripTrack(points=points)


@router.get(
    "/{trip_id}.gpx",
    response_class=Response,
    responses={
        200: {
            "content": {"application/gpx+xml": {"schema": {"type": "string"}}},
            "description": "GPX 1.1 track",
        },
        **error_responses(401, 404, 422),
    },
    summary="The trip's GPS track as GPX 1.1 (404 when the car reported no GPS)",
)
async def trip_gpx(
    vehicle_id: IdPath, trip_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    vehicle, trip = await _trip(session, user, vehicle_id, trip_id)
    if trip.track_points == 0:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"trip {trip.id} has no GPS track")
    return Response(
        await service.trip_gpx(session, vehicle, trip),
        media_type="application/gpx+xml",
        headers={
            "Content-Disposition": f'attachment; filename="{trip_file(vehicle, trip, "gpx")}"'
        },
    )


@router.get(
    "/{trip_id}.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "a row per sample time, a column per PID the trip has samples of, "
            "named with its unit: ts,time,RPM (rpm),SPEED (mph)",
        },
        **error_responses(401, 404, 422),
    },
    summary="Every raw sample of the trip as CSV in the user's units (or ?units=), streamed",
)
async def trip_csv(
    vehicle_id: IdPath,
    trip_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    units: UnitsQuery = None,
    layout: Annotated[
        CsvLayout,
        Query(description="wide: a column per PID (the default); long: a row per sample"),
    ] = "wide",
) -> StreamingResponse:
    vehicle, trip = await _trip(session, user, vehicle_id, trip_id)
    start, end = trip.start_ts, trip.end_ts + 1
    known = sorted(set(PIDS) | set(await pids.vehicle_pid_names(session, trip.vehicle_id)))
    names = await pids_with_samples(session, trip.vehicle_id, known, start, end)

    return samples_csv_response(
        state.sessionmaker,
        trip.vehicle_id,
        names,
        start,
        end,
        trip_file(vehicle, trip, "csv", long=layout == "long"),
        units or unit_system_of(user),
        layout,
    )


@router.get(
    "/{trip_id}",
    response_model=TripDetail,
    responses=error_responses(401, 404, 422),
    summary="One trip with its SPEED and RPM charts (downsampled)",
)
async def trip_detail(
    vehicle_id: IdPath,
    trip_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> TripDetail:
    vehicle, trip = await _trip(session, user, vehicle_id, trip_id)
    in_progress = _in_progress(vehicle, settings)(trip)
    summary = TripRead.of(trip, FuelType(vehicle.fuel_type), in_progress)
    charts = TripCharts.of(await service.trip_charts(session, trip))
    return TripDetail(**summary.model_dump(), charts=charts)
