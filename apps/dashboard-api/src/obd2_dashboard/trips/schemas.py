from typing import Annotated, Literal

from pydantic import BaseModel, Field

from obd2_dashboard.models import FuelType, Trip
from obd2_dashboard.trips.service import Chart, TripTotalsFigures, fuel_used, litres_per_100km


class TripRead(BaseModel):
    id: int
    start_ts: Annotated[int, Field(description="epoch ms of the first sample of the car in use")]
    end_ts: Annotated[int, Field(description="epoch ms of the last sample of the car in use")]
    duration_s: float
    distance_km: float
    distance_source: Annotated[
        Literal["odometer", "speed"],
        Field(description="ODOMETER delta, or SPEED integrated over time"),
    ]
    moving_s: Annotated[float, Field(description="time with SPEED > 0")]
    idle_s: Annotated[float, Field(description="time with the engine running and SPEED 0")]
    max_speed_kmh: float | None
    avg_speed_kmh: Annotated[float | None, Field(description="distance / moving time")]
    max_rpm: float | None
    max_coolant_c: float | None
    fuel_used_l: float | None
    fuel_source: Annotated[
        Literal["FUEL_RATE", "TORQUE_FUEL_FLOW", "MAF"] | None,
        Field(
            description="where fuel_used_l comes from, the first the car sent: FUEL_RATE (PID "
            "5E) integrated, Torque's fuel flow (TORQUE_FF125D, L/h) integrated, or MAF with "
            "the vehicle's fuel type's air-fuel ratio and density; null without any"
        ),
    ]
    economy_l_per_100km: float | None
    track_points: Annotated[int, Field(description="GPS fixes; GPX export when > 0")]
    finished: Annotated[
        bool,
        Field(
            description="false while the car may still be in use: the join gap has not passed "
            "since end_ts (late samples may still change a finished trip's figures)"
        ),
    ]
    in_progress: Annotated[
        bool,
        Field(
            description="the trip is being driven now: its vehicle is live (the vehicle's "
            "state), and the trip is not finished and ended less than TRIP_JOIN_GAP_S ago; an "
            "unfinished trip of a stale or offline vehicle is not in progress (its end_ts is "
            "its newest sample so far)"
        ),
    ] = False

    @classmethod
    def of(cls, trip: Trip, fuel_type: FuelType, in_progress: bool = False) -> "TripRead":
        fuel = fuel_used(trip, fuel_type)
        avg = trip.distance_km / (trip.moving_s / 3600) if trip.moving_s > 0 else None
        return cls(
            id=trip.id,
            start_ts=trip.start_ts,
            end_ts=trip.end_ts,
            duration_s=(trip.end_ts - trip.start_ts) / 1000,
            distance_km=trip.distance_km,
            distance_source="odometer" if trip.distance_source == "odometer" else "speed",
            moving_s=trip.moving_s,
            idle_s=trip.idle_s,
            max_speed_kmh=trip.max_speed_kmh,
            avg_speed_kmh=avg,
            max_rpm=trip.max_rpm,
            max_coolant_c=trip.max_coolant_c,
            fuel_used_l=fuel.litres,
            fuel_source=fuel.source,
            economy_l_per_100km=litres_per_100km(fuel.litres, trip.distance_km),
            track_points=trip.track_points,
            finished=trip.finished_at is not None,
            in_progress=in_progress,
        )


class TripCharts(BaseModel):
    bucket_ms: Annotated[int, Field(description="width of each time bucket")]
    series: Annotated[
        dict[str, list[tuple[int, float]]],
        Field(description='per PID ("SPEED", "RPM"): [bucket start ms, average] in time order'),
    ]

    @classmethod
    def of(cls, chart: Chart) -> "TripCharts":
        return cls(
            bucket_ms=chart.bucket_ms,
            series={pid: [(b.ts, b.avg) for b in buckets] for pid, buckets in chart.series.items()},
        )


class TripDetail(TripRead):
    charts: TripCharts


class TripTrack(BaseModel):
    points: Annotated[
        list[tuple[int, float, float]],
        Field(
            description="GPS fixes as [epoch ms, latitude, longitude] in time order; a long "
            "track is thinned evenly to at most 2000, first and last kept"
        ),
    ]


class TripTotals(BaseModel):
    from_ts: Annotated[int, Field(description="epoch ms, inclusive (trips by start time)")]
    to_ts: Annotated[int, Field(description="epoch ms, exclusive")]
    trips: int
    distance_km: float
    driving_s: Annotated[float, Field(description="start to end of each trip, added up")]
    fuel_used_l: Annotated[
        float | None,
        Field(description="the fuel of the trips whose car tells it; null when none does"),
    ]

    @classmethod
    def of(cls, totals: TripTotalsFigures, start: int, end: int) -> "TripTotals":
        return cls(
            from_ts=start,
            to_ts=end,
            trips=totals.trips,
            distance_km=totals.distance_km,
            driving_s=totals.driving_s,
            fuel_used_l=totals.fuel_used_l,
        )
