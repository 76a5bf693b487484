"""The demo car: a petrol hatchback that drives like a real one, the same every time for a seed.

The server's demo history (``obd2-dashboard demo`` seeds a month of it) and the agent's
simulated car (``obd2-bridge simulate --realistic``) both drive this model, so the month in the
charts and the car on the live page behave alike. It is pure Python and deterministic: a seed
and a time give the same readings on any machine, so tests can assert on it.

What it does:

- **The route**: a fixed polyline of roads north of Munich, from a residential street through
  town (30 and 50 km/h, traffic lights) onto the A9 motorway and into a business park. Places
  on it: home, a supermarket, work. A drive goes from one place to another along it; its GPS
  position is the route interpolated at the distance driven, so the track and the integrated
  speed agree.
- **The driver** accelerates and brakes at comfortable rates, keeps near the limit, slows before
  a lower limit, stops at red lights (each light has its own cycle) and at the destination.
- **The engine**: gear from speed and demand; power from mass, rolling resistance and drag;
  fuel rate from power plus friction (cut on the overrun, richer when cold); air flow, load,
  throttle and manifold pressure from the fuel rate; coolant and oil warm with the fuel burnt
  and cool while parked; battery charging while running.
- **A day**: parked with the engine off, then a few drives at plausible hours (the commute on
  weekdays, errands and an outing at weekends). A tank running low is filled at a stop inside
  a drive with the engine off for three minutes.
- **A trouble code**: a catalyst code (P0420) first pending on one drive, confirmed a drive later.
"""

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise

# ---- the route -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waypoint:
    lat: float
    lon: float
    # The limit of the leg from this point to the next one.
    limit_kmh: float
    # A traffic light at this point.
    light: bool = False


# North of Munich: a side street in Schwabing, north along Leopoldstraße, east on the Frankfurter
# Ring, the A9 towards Nuremberg, off at Garching and into a business park.
ROUTE_WAYPOINTS: tuple[Waypoint, ...] = (
    Waypoint(48.15950, 11.58420, 30),
    Waypoint(48.16010, 11.58560, 30),
    Waypoint(48.16030, 11.58690, 50, light=True),
    Waypoint(48.16420, 11.58730, 50, light=True),
    Waypoint(48.16800, 11.58770, 50, light=True),
    Waypoint(48.17190, 11.58820, 50, light=True),
    Waypoint(48.17560, 11.58860, 50, light=True),
    Waypoint(48.17830, 11.58900, 60, light=True),
    Waypoint(48.17870, 11.59400, 60, light=True),
    Waypoint(48.17900, 11.59900, 80),
    Waypoint(48.18150, 11.60250, 120),
    Waypoint(48.19000, 11.60900, 120),
    Waypoint(48.20000, 11.61600, 120),
    Waypoint(48.21000, 11.62150, 120),
    Waypoint(48.22000, 11.62550, 120),
    Waypoint(48.23000, 11.62900, 120),
    Waypoint(48.24000, 11.63250, 60),
    Waypoint(48.24350, 11.63550, 70, light=True),
    Waypoint(48.24700, 11.64200, 70),
    Waypoint(48.25100, 11.64900, 50, light=True),
    Waypoint(48.25350, 11.65500, 30, light=True),
    Waypoint(48.25550, 11.66000, 30),
    Waypoint(48.25600, 11.66200, 30),
)

EARTH_RADIUS_M = 6_371_000.0


def _rng(seed: int) -> random.Random:
    """The model's choices: reproducible from the seed, which is the point (never a secret)."""
    return random.Random(seed)  # noqa: S311


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


class Route:
    """The polyline with the distance of each waypoint from the first."""

    def __init__(self, waypoints: Sequence[Waypoint] = ROUTE_WAYPOINTS) -> None:
        if len(waypoints) < 2:
            raise ValueError("a route needs at least two waypoints")
        self.waypoints = tuple(waypoints)
        distances = [0.0]
        for a, b in pairwise(self.waypoints):
            distances.append(distances[-1] + haversine_m(a.lat, a.lon, b.lat, b.lon))
        self.distances = tuple(distances)
        self.length_m = distances[-1]

    def _leg(self, s: float) -> int:
        """Index of the waypoint starting the leg that holds ``s``."""
        s = min(max(s, 0.0), self.length_m)
        lo, hi = 0, len(self.distances) - 2
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.distances[mid] <= s:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def position(self, s: float) -> tuple[float, float]:
        """Latitude and longitude ``s`` metres from the first waypoint."""
        i = self._leg(s)
        a, b = self.waypoints[i], self.waypoints[i + 1]
        span = self.distances[i + 1] - self.distances[i]
        f = 0.0 if span <= 0 else (min(max(s, 0.0), self.length_m) - self.distances[i]) / span
        return a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f

    def limit(self, s: float) -> float:
        return self.waypoints[self._leg(s)].limit_kmh

    def lights(self) -> list[tuple[int, float]]:
        """(light number, distance) of every traffic light."""
        return [(i, self.distances[i]) for i, w in enumerate(self.waypoints) if w.light]


ROUTE = Route()

# Places, as distances along the route.
HOME = "home"
SHOP = "shop"
WORK = "work"
PLACES: dict[str, float] = {
    HOME: 0.0,
    # The supermarket on the Frankfurter Ring, 250 m past the junction with the A9 slip road.
    SHOP: ROUTE.distances[8] + 250.0,
    WORK: ROUTE.length_m,
}


class Path:
    """A drive's way along the route, from one distance to another (either direction)."""

    def __init__(self, route: Route, start_s: float, end_s: float) -> None:
        self.route = route
        self.start_s = start_s
        self.end_s = end_s
        self.direction = 1.0 if end_s >= start_s else -1.0
        self.length_m = abs(end_s - start_s)
        # Limits change at waypoints: the limit at x is the one of the leg being driven.
        self.lights = sorted(
            (self.to_x(s), number)
            for number, s in route.lights()
            if 0.0 < self.to_x(s) < self.length_m - 1.0
        )
        changes: list[tuple[float, float]] = []
        for s in route.distances:
            x = self.to_x(s)
            if 0.0 < x < self.length_m:
                changes.append((x, self.limit(x + 0.5)))
        self.limit_changes = sorted(changes)

    def to_x(self, s: float) -> float:
        return (s - self.start_s) * self.direction

    def route_s(self, x: float) -> float:
        return self.start_s + self.direction * min(max(x, 0.0), self.length_m)

    def position(self, x: float) -> tuple[float, float]:
        return self.route.position(self.route_s(x))

    def limit(self, x: float) -> float:
        s = self.route_s(x)
        if self.direction < 0:
            # Driving back, the leg being driven ends at s: take the limit just behind it.
            s = max(0.0, s - 0.01)
        return self.route.limit(s)


# ---- the car -----------------------------------------------------------------------------------

STEP_S = 0.5  # the physics' time step
IDLE_RPM = 760.0
COLD_IDLE_RPM = 1150.0
MASS_KG = 1330.0
DRAG_AREA_M2 = 0.62  # drag coefficient times frontal area
ROLLING = 0.011
AIR_DENSITY = 1.2
G = 9.81
DRIVETRAIN_EFFICIENCY = 0.9
ENGINE_EFFICIENCY = 0.31
PETROL_MJ_PER_L = 34.2
PETROL_DENSITY_G_PER_L = 745.0
STOICHIOMETRIC_AFR = 14.7
DISPLACEMENT_L = 1.6
BARO_KPA = 101.0
TANK_L = 50.0
# km/h per 1000 rpm in each gear of the six-speed gearbox.
GEARS = (7.8, 14.0, 21.0, 28.5, 36.0, 42.0)
COMFORT_BRAKE = 1.8  # m/s²: what the driver plans with
MAX_BRAKE = 3.5
THERMOSTAT_C = 90.0
# The driver fills up at a quarter of a tank, on the way, with the engine off for three minutes:
# shorter than the server's trip join gap (5 minutes), so the stop stays inside the trip.
REFUEL_BELOW_PCT = 25.0
REFUEL_STOP_S = 180.0
REFUEL_TO_PCT = 95.0
DTC_CODE = "P0420"


@dataclass(frozen=True, slots=True)
class Reading:
    """What the car reports at one instant, in the units of the PID table."""

    ts_ms: int
    engine_on: bool
    speed_kmh: float
    rpm: float
    throttle_pct: float
    load_pct: float
    map_kpa: float
    maf_gps: float
    fuel_rate_lph: float
    coolant_c: float
    oil_c: float
    intake_c: float
    ambient_c: float
    fuel_pct: float
    battery_v: float
    run_time_s: float
    lat: float
    lon: float
    # Distance driven since the drive began (the model's own integral of its speed), in metres.
    distance_m: float

    @classmethod
    def engine_off(
        cls,
        ts_ms: int,
        *,
        coolant_c: float,
        oil_c: float,
        intake_c: float,
        ambient_c: float,
        fuel_pct: float,
        battery_v: float,
        lat: float,
        lon: float,
        distance_m: float,
    ) -> "Reading":
        """A parked car: nothing turns, the manifold is at the air's pressure."""
        return cls(
            ts_ms=ts_ms, engine_on=False, speed_kmh=0.0, rpm=0.0, throttle_pct=0.0,
            load_pct=0.0, map_kpa=BARO_KPA, maf_gps=0.0, fuel_rate_lph=0.0,
            coolant_c=coolant_c, oil_c=oil_c, intake_c=intake_c, ambient_c=ambient_c,
            fuel_pct=fuel_pct, battery_v=battery_v, run_time_s=0.0, lat=lat, lon=lon,
            distance_m=distance_m,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CarCondition:
    """What carries over from one drive to the next: temperatures, fuel, battery, place."""

    coolant_c: float
    oil_c: float
    fuel_pct: float
    ts_ms: int
    battery_v: float = 12.6
    place: str = HOME

    def parked_until(self, ts_ms: int, outside_c: float) -> "CarCondition":
        """The condition after standing with the engine off until ``ts_ms``."""
        hours = max(0.0, (ts_ms - self.ts_ms) / 3_600_000)
        coolant = outside_c + (self.coolant_c - outside_c) * math.exp(-hours / 1.3)
        oil = outside_c + (self.oil_c - outside_c) * math.exp(-hours / 1.8)
        # The surface charge fades within the hour, then the sleeping modules drain it slowly.
        battery = 12.55 + (self.battery_v - 12.55) * math.exp(-hours * 3) - 0.004 * hours
        return replace(
            self, coolant_c=coolant, oil_c=oil, battery_v=max(12.1, battery), ts_ms=ts_ms
        )


@lru_cache(maxsize=64)
def _weather(seed: int) -> tuple[float, float]:
    rng = _rng(seed * 7919 + 17)
    return rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)


def ambient_c(seed: int, ts_ms: int) -> float:
    """Outside temperature: a daily swing (warmest mid-afternoon) on a slowly wandering base."""
    a, b = _weather(seed)
    days = ts_ms / 86_400_000
    base = 9.0 + 3.0 * math.sin(days / 5.3 + a) + 1.5 * math.sin(days / 1.9 + b)
    hour = (ts_ms / 3_600_000) % 24
    return base + 5.0 * math.sin((hour - 9.0) / 24 * 2 * math.pi)


@lru_cache(maxsize=1024)
def _light_timing(seed: int, number: int) -> tuple[float, float, float]:
    """(cycle, red, offset) of a traffic light, in seconds."""
    rng = _rng(seed * 31 + number)
    cycle = rng.uniform(70.0, 100.0)
    return cycle, cycle * rng.uniform(0.4, 0.55), rng.uniform(0.0, cycle)


def light_is_red(seed: int, number: int, epoch_s: float) -> bool:
    cycle, red, offset = _light_timing(seed, number)
    return (epoch_s + offset) % cycle < red


@dataclass(frozen=True, slots=True)
class DrivePlan:
    start_ms: int
    origin: str
    destination: str
    # Seed of this drive's own choices: how briskly it is driven, how its speed wanders.
    seed: int
    refuel: bool = False


def _engine_rpm(speed_kmh: float, demand: float, warm: float, moving_off: bool) -> float:
    idle = COLD_IDLE_RPM + (IDLE_RPM - COLD_IDLE_RPM) * warm
    if speed_kmh < 0.5:
        return idle
    # The driver changes up later when asking for more power.
    shift_rpm = 1500.0 + 1700.0 * demand
    rpm = speed_kmh / GEARS[0] * 1000.0
    for ratio in GEARS[1:]:
        candidate = speed_kmh / ratio * 1000.0
        if candidate >= shift_rpm:
            rpm = candidate
    if moving_off and speed_kmh < 12.0:
        rpm = max(rpm, idle + 500.0)  # the clutch slips while the car moves off
    return max(idle, rpm)


@dataclass(slots=True)
class _Motion:
    """The drive's state between two steps."""

    t: float = 0.0
    x: float = 0.0
    v: float = 0.0
    phase: str = "warmup"  # warmup, driving, refuelling, arriving
    phase_until: float = 0.0
    engine_on: bool = True
    moving_off: bool = True
    light: int = 0  # index of the next light ahead
    stopping: bool = False  # for that light, which is red
    change: int = 0  # index of the next speed limit change ahead
    refuel_done: bool = False
    run_time: float = 0.0
    coolant: float = 0.0
    oil: float = 0.0
    fuel_l: float = 0.0


class Drive:
    """One drive, from the engine starting to it stopping, stepped every ``STEP_S`` seconds."""

    def __init__(
        self, plan: DrivePlan, condition: CarCondition, *, seed: int, route: Route = ROUTE
    ) -> None:
        self.plan = plan
        self.seed = seed
        self.condition = condition
        self.path = Path(route, PLACES[plan.origin], PLACES[plan.destination])
        rng = _rng(plan.seed)
        self.briskness = rng.uniform(0.93, 1.04)
        self.accel = rng.uniform(1.3, 1.9)
        self.wobble = tuple((rng.uniform(0, 2 * math.pi), rng.uniform(25, 60)) for _ in range(3))
        self.warmup_s = rng.uniform(5.0, 25.0)
        self.arrive_s = rng.uniform(3.0, 10.0)
        self.refuel_x = self.path.length_m * rng.uniform(0.35, 0.6) if plan.refuel else None
        self._lights = self.path.lights
        self._changes = self.path.limit_changes

    def run(self) -> list[Reading]:
        """Every step; the last reading is the engine switched off at the destination."""
        m = _Motion(
            phase_until=self.warmup_s,
            coolant=self.condition.coolant_c,
            oil=self.condition.oil_c,
            fuel_l=self.condition.fuel_pct / 100.0 * TANK_L,
        )
        readings: list[Reading] = []
        while True:
            ts_ms = self.plan.start_ms + round(m.t * 1000)
            outside = ambient_c(self.seed, ts_ms)
            self._phase(m)
            a = self._accelerate(m) if m.phase == "driving" else 0.0
            v_new = max(0.0, m.v + a * STEP_S)
            x_new = m.x + (m.v + v_new) / 2 * STEP_S
            hard = self._hard_stop(m)
            if x_new >= hard:
                x_new, v_new = max(m.x, hard), 0.0
                a = (v_new - m.v) / STEP_S
            readings.append(self._engine_step(m, a, ts_ms, outside))
            if not m.engine_on and m.phase == "arriving":
                return readings
            if m.phase == "driving" and v_new == 0.0 and m.v > 0.0:
                m.moving_off = True
            elif v_new > 4.0:
                m.moving_off = False
            m.x, m.v = x_new, v_new
            m.t += STEP_S
            if m.phase == "driving" and v_new == 0.0:
                if self.refuel_x is not None and not m.refuel_done and m.x >= self.refuel_x - 0.5:
                    m.phase, m.phase_until = "refuelling", m.t + REFUEL_STOP_S
                    m.engine_on = False
                elif m.x >= self.path.length_m - 0.5:
                    m.phase, m.phase_until = "arriving", m.t + self.arrive_s

    def _phase(self, m: _Motion) -> None:
        if m.phase == "warmup" and m.t >= m.phase_until:
            m.phase = "driving"
        elif m.phase == "refuelling" and m.t >= m.phase_until:
            m.phase, m.engine_on, m.moving_off = "driving", True, True
            m.refuel_done, m.run_time = True, 0.0
            m.fuel_l = TANK_L * REFUEL_TO_PCT / 100.0
        elif m.phase == "arriving" and m.t >= m.phase_until:
            m.engine_on = False

    def _red(self, number: int, t: float) -> bool:
        return light_is_red(self.seed, number, self.plan.start_ms / 1000.0 + t)

    def _watch_lights(self, m: _Motion) -> float | None:
        """The stop line of the red light ahead the driver is stopping for, if any."""
        while m.light < len(self._lights) and self._lights[m.light][0] - 1.0 <= m.x + 0.01:
            if m.stopping:
                break  # waiting at the line
            m.light += 1
        if m.light >= len(self._lights):
            return None
        light_x, number = self._lights[m.light]
        red = self._red(number, m.t)
        if m.stopping and not red:
            m.stopping = False
            m.light += 1  # green: the car goes through
            return None
        if not m.stopping and red and light_x - 1.0 - m.x > m.v * m.v / (2 * MAX_BRAKE):
            m.stopping = True
        return light_x - 1.0 if m.stopping else None

    def _hard_stop(self, m: _Motion) -> float:
        """Where the car must be stationary: the stop line, the pump, the destination."""
        end = self.path.length_m
        if self.refuel_x is not None and not m.refuel_done:
            end = min(end, self.refuel_x)
        if m.stopping and m.light < len(self._lights):
            end = min(end, self._lights[m.light][0] - 1.0)
        return end

    def _wanted(self, m: _Motion) -> float:
        """The speed the driver would like here, in m/s."""
        while m.change < len(self._changes) and self._changes[m.change][0] <= m.x:
            m.change += 1
        limit = self._changes[m.change - 1][1] if m.change else self.path.limit(0.0)
        wobble = sum(math.sin(m.t / period + phase) for phase, period in self.wobble)
        kmh = limit * self.briskness + (1.2 if limit >= 80 else 0.6) * wobble
        return max(0.0, min(kmh, limit + 6.0)) / 3.6

    def _accelerate(self, m: _Motion) -> float:
        """Towards the wanted speed, braking in time for what lies ahead."""
        target = self._wanted(m)
        ahead = [self._hard_stop(m)]
        line = self._watch_lights(m)
        if line is not None:
            ahead.append(line)
        for x in ahead:
            target = min(target, math.sqrt(2 * COMFORT_BRAKE * max(0.0, x - m.x - 0.5)))
        for change_x, limit in self._changes[m.change : m.change + 3]:
            if change_x - m.x < 600.0:
                slow = limit * self.briskness / 3.6
                gap = max(0.0, change_x - m.x)
                target = min(target, math.sqrt(slow * slow + 2 * COMFORT_BRAKE * gap))
        if target > m.v:
            return min(self.accel * max(0.25, 1.0 - m.v / 45.0), (target - m.v) / 1.5)
        return max(-MAX_BRAKE, (target - m.v) / 1.0)

    def _engine_step(self, m: _Motion, a: float, ts_ms: int, outside: float) -> Reading:
        """The reading at this step; then the engine's heat and fuel move on by one step."""
        v = m.v
        speed_kmh = v * 3.6
        lat, lon = self.path.position(m.x)
        if not m.engine_on:
            m.coolant = outside + (m.coolant - outside) * math.exp(-STEP_S / 4700.0)
            m.oil = outside + (m.oil - outside) * math.exp(-STEP_S / 6500.0)
            return Reading.engine_off(
                ts_ms,
                coolant_c=m.coolant,
                oil_c=m.oil,
                intake_c=outside + 6.0,
                ambient_c=outside,
                fuel_pct=m.fuel_l / TANK_L * 100.0,
                battery_v=12.7,
                lat=lat,
                lon=lon,
                distance_m=m.x,
            )
        warm = min(1.0, max(0.0, (m.coolant - outside) / max(1.0, THERMOSTAT_C - 10.0 - outside)))
        # Power at the wheels: inertia, drag and rolling resistance.
        force = MASS_KG * a + 0.5 * AIR_DENSITY * DRAG_AREA_M2 * v * v + ROLLING * MASS_KG * G
        wheel_kw = force * v / 1000.0
        demand = min(1.0, max(0.0, wheel_kw / 50.0))
        rpm = _engine_rpm(speed_kmh, demand, warm, m.moving_off and a > 0)
        # Friction grows with engine speed; a cold engine runs rich.
        friction_lph = (0.3 + 0.4 * rpm / IDLE_RPM) * (1.0 + 0.5 * (1.0 - warm))
        if wheel_kw < 0 and speed_kmh > 20.0 and rpm > 1200.0:
            fuel_lph = 0.0  # fuel cut on the overrun
        elif wheel_kw > 0:
            engine_kw = wheel_kw / DRIVETRAIN_EFFICIENCY
            fuel_lph = friction_lph + engine_kw * 3.6 / (ENGINE_EFFICIENCY * PETROL_MJ_PER_L)
        else:
            fuel_lph = friction_lph
        # Air at the stoichiometric ratio; on the overrun the engine still pumps some.
        air_lph = fuel_lph if fuel_lph > 0 else 0.45 * rpm / IDLE_RPM
        maf = air_lph * PETROL_DENSITY_G_PER_L * STOICHIOMETRIC_AFR / 3600.0
        maf_max = DISPLACEMENT_L * rpm / 120.0 * 1.19 * 0.88
        load = min(100.0, 100.0 * maf / maf_max)
        throttle = 12.0 if fuel_lph == 0 else min(100.0, 13.0 + 0.8 * max(0.0, load - 20.0))
        map_kpa = min(BARO_KPA, BARO_KPA * (0.16 + 0.84 * load / 100.0))
        battery = 14.35 - 0.25 * (1.0 - warm) + 0.03 * math.sin(m.t / 7.0)
        intake = outside + 2.0 + 14.0 * math.exp(-speed_kmh / 25.0)
        # The sender in the tank sloshes by a per cent or so while the car moves.
        slosh = 1.2 * math.sin(m.t / 3.1) * min(1.0, speed_kmh / 30.0)
        reading = Reading(
            ts_ms=ts_ms,
            engine_on=True,
            speed_kmh=speed_kmh,
            rpm=rpm,
            throttle_pct=throttle,
            load_pct=load,
            map_kpa=map_kpa,
            maf_gps=maf,
            fuel_rate_lph=fuel_lph,
            coolant_c=m.coolant,
            oil_c=m.oil,
            intake_c=intake,
            ambient_c=outside,
            fuel_pct=min(100.0, max(0.0, m.fuel_l / TANK_L * 100.0 + slosh)),
            battery_v=battery,
            run_time_s=m.run_time,
            lat=lat,
            lon=lon,
            distance_m=m.x,
        )
        # The engine's heat goes into the coolant until the thermostat opens; oil follows.
        if m.coolant < THERMOSTAT_C:
            m.coolant += (0.045 * fuel_lph + 0.02) * STEP_S
        else:
            m.coolant += (THERMOSTAT_C + 2.0 - m.coolant) * 0.01 * STEP_S
        m.oil += (m.coolant + 6.0 - m.oil) / 700.0 * STEP_S
        m.fuel_l = max(0.0, m.fuel_l - fuel_lph * STEP_S / 3600.0)
        m.run_time += STEP_S
        return reading


def condition_after(last: Reading, place: str) -> CarCondition:
    """The car's condition as a drive leaves it (its last reading, engine off)."""
    return CarCondition(
        coolant_c=last.coolant_c,
        oil_c=last.oil_c,
        fuel_pct=last.fuel_pct,
        ts_ms=last.ts_ms,
        battery_v=12.8,
        place=place,
    )


# ---- days of driving ---------------------------------------------------------------------------


def _at(day: date, hour: float, tz: tzinfo | None) -> int:
    minutes = round(hour * 60)
    moment = datetime.combine(day, time(minutes // 60, minutes % 60))
    # Without a zone: the machine's local time, daylight saving included.
    moment = moment.replace(tzinfo=tz) if tz is not None else moment.astimezone()
    return int(moment.timestamp() * 1000)


def day_plan(seed: int, day: date, tz: tzinfo | None = None) -> list[DrivePlan]:
    """The drives of one day at plausible local hours; the same for the same seed and day."""
    rng = _rng(seed * 1_000_003 + day.toordinal())
    trips: list[tuple[float, str, str]] = []
    if day.weekday() < 5:
        trips.append((rng.uniform(7.2, 8.1), HOME, WORK))
        trips.append((rng.uniform(16.7, 18.3), WORK, HOME))
        if rng.random() < 0.45:
            out = rng.uniform(18.9, 20.0)
            trips += [(out, HOME, SHOP), (out + rng.uniform(0.3, 0.7), SHOP, HOME)]
    else:
        if rng.random() < 0.8:
            out = rng.uniform(9.3, 11.0)
            trips += [(out, HOME, SHOP), (out + rng.uniform(0.35, 0.9), SHOP, HOME)]
        if rng.random() < 0.6:
            out = rng.uniform(13.8, 15.5)
            trips += [(out, HOME, WORK), (out + rng.uniform(1.0, 3.0), WORK, HOME)]
    return [
        DrivePlan(_at(day, hour, tz), origin, destination, rng.randrange(1 << 30))
        for hour, origin, destination in trips
    ]


@dataclass(frozen=True, slots=True)
class DtcEvent:
    """The car's trouble codes from ``ts_ms`` on, as an agent reads them."""

    ts_ms: int
    stored: tuple[str, ...]
    pending: tuple[str, ...]
    # What the car kept when it stored the code: PID name → value.
    freeze_frame: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryDrive:
    plan: DrivePlan
    readings: list[Reading]
    dtc_events: list[DtcEvent]


# The tank a day begins with follows the date, so that a day's drives depend on nothing but the
# seed and the date (seeding a month twice gives the same samples): about 1.75 L a day, and a
# fill-up on the first drive of the day that begins below a quarter of a tank.
FUEL_PER_DAY_PCT = 3.5
FUEL_CYCLE_DAYS = 22


def fuel_at_dawn(seed: int, day: date) -> float:
    offset = _rng(seed).randrange(FUEL_CYCLE_DAYS)
    return REFUEL_TO_PCT - ((day.toordinal() + offset) % FUEL_CYCLE_DAYS) * FUEL_PER_DAY_PCT


def freeze_frame(reading: Reading) -> dict[str, float]:
    return {
        "RPM": float(round(reading.rpm)),
        "SPEED": float(round(reading.speed_kmh)),
        "COOLANT_TEMP": float(round(reading.coolant_c)),
        "ENGINE_LOAD": round(reading.load_pct, 1),
    }


def history(
    seed: int,
    start_ms: int,
    end_ms: int,
    *,
    tz: tzinfo | None = None,
    dtc_after_ms: int | None = None,
) -> Iterator[HistoryDrive]:
    """The drives that start at or after ``start_ms`` and are over by ``end_ms``, in order.

    Each day begins cold after the night with the fuel its date gives; within a day the car
    carries its temperatures and fuel from drive to drive. With ``dtc_after_ms``, the first
    drive on the motorway starting after it finds the catalyst code pending, and the next drive
    confirms it (stored, with a freeze frame).
    """
    day = datetime.fromtimestamp(start_ms / 1000, tz).date()
    last = datetime.fromtimestamp(end_ms / 1000, tz).date()
    stage = 0 if dtc_after_ms is not None else 2
    while day <= last:
        night = _at(day, 3.0, tz)
        condition = CarCondition(
            coolant_c=ambient_c(seed, night),
            oil_c=ambient_c(seed, night),
            fuel_pct=fuel_at_dawn(seed, day),
            ts_ms=night,
        )
        for number, planned in enumerate(day_plan(seed, day, tz)):
            condition = condition.parked_until(planned.start_ms, ambient_c(seed, planned.start_ms))
            refuel = number == 0 and condition.fuel_pct < REFUEL_BELOW_PCT
            plan = replace(planned, refuel=True) if refuel else planned
            readings = Drive(plan, condition, seed=seed).run()
            condition = condition_after(readings[-1], plan.destination)
            if plan.start_ms < start_ms or readings[-1].ts_ms > end_ms:
                continue
            events: list[DtcEvent] = []
            if stage == 0 and dtc_after_ms is not None and plan.start_ms >= dtc_after_ms:
                if WORK in (plan.origin, plan.destination):
                    # The catalyst monitor runs once the engine is warm on the motorway.
                    fast = next((r for r in readings if r.speed_kmh > 90), readings[-1])
                    events.append(DtcEvent(fast.ts_ms, (), (DTC_CODE,)))
                    stage = 1
            elif stage == 1:
                fast = next((r for r in readings if r.speed_kmh > 40), readings[-1])
                events.append(DtcEvent(fast.ts_ms, (DTC_CODE,), (), freeze_frame(fast)))
                stage = 2
            yield HistoryDrive(plan, readings, events)
        day += timedelta(days=1)


# ---- the live car ------------------------------------------------------------------------------

# Round and round: to work, home, to the shop, home.
LIVE_ROUND: tuple[tuple[str, str], ...] = ((HOME, WORK), (WORK, HOME), (HOME, SHOP), (SHOP, HOME))
# Parked long enough between drives for the trip to end (the server's join gap is 5 minutes).
LIVE_PARK_S = 330.0
LIVE_FIRST_PARK_S = 5.0


class LiveCar:
    """The car on the live page: parked a moment, then round the places for ever.

    ``at(t_s)`` is its state ``t_s`` seconds after it was made; calls in time order are cheap.
    """

    def __init__(self, seed: int, start_ms: int, *, fuel_pct: float = 62.0) -> None:
        self.seed = seed
        self.start_ms = start_ms
        outside = ambient_c(seed, start_ms)
        self._parked = CarCondition(
            coolant_c=outside + 4.0, oil_c=outside + 4.0, fuel_pct=fuel_pct, ts_ms=start_ms
        )
        self._index = 0
        self._drive_start_s = LIVE_FIRST_PARK_S
        self._plan, self._readings = self._drive(self._index, self._drive_start_s, self._parked)
        self._drive_end_s = self._drive_start_s + (len(self._readings) - 1) * STEP_S

    def _drive(
        self, index: int, start_s: float, parked: CarCondition
    ) -> tuple[DrivePlan, list[Reading]]:
        origin, destination = LIVE_ROUND[index % len(LIVE_ROUND)]
        start_ms = self.start_ms + round(start_s * 1000)
        condition = parked.parked_until(start_ms, ambient_c(self.seed, start_ms))
        plan = DrivePlan(
            start_ms,
            origin,
            destination,
            _rng(self.seed * 7_777 + index).randrange(1 << 30),
            refuel=condition.fuel_pct < REFUEL_BELOW_PCT,
        )
        return plan, Drive(plan, condition, seed=self.seed).run()

    def _next_drive(self) -> None:
        self._parked = condition_after(self._readings[-1], self._plan.destination)
        self._index += 1
        self._drive_start_s = self._drive_end_s + LIVE_PARK_S
        self._plan, self._readings = self._drive(self._index, self._drive_start_s, self._parked)
        self._drive_end_s = self._drive_start_s + (len(self._readings) - 1) * STEP_S

    def cruising(self) -> Reading:
        """A moment of the drive under way (or next) at speed: what a freeze frame keeps."""
        return next((r for r in self._readings if r.speed_kmh > 40), self._readings[-1])

    def drives_begun(self, t_s: float) -> int:
        """How many drives have begun by ``t_s`` (the one under way included)."""
        self._advance(t_s)
        return self._index + (1 if t_s >= self._drive_start_s else 0)

    def _advance(self, t_s: float) -> None:
        while t_s >= self._drive_end_s + LIVE_PARK_S:
            self._next_drive()

    def at(self, t_s: float) -> Reading:
        self._advance(t_s)
        if self._drive_start_s <= t_s <= self._drive_end_s:
            return self._readings[int((t_s - self._drive_start_s) / STEP_S)]
        ts_ms = self.start_ms + round(t_s * 1000)
        outside = ambient_c(self.seed, ts_ms)
        if t_s > self._drive_end_s:
            parked = condition_after(self._readings[-1], self._plan.destination)
            place = self._plan.destination
        else:
            parked, place = self._parked, self._plan.origin
        condition = parked.parked_until(ts_ms, outside)
        lat, lon = ROUTE.position(PLACES[place])
        return Reading.engine_off(
            ts_ms,
            coolant_c=condition.coolant_c,
            oil_c=condition.oil_c,
            intake_c=outside + 2.0,
            ambient_c=outside,
            fuel_pct=condition.fuel_pct,
            battery_v=condition.battery_v,
            lat=lat,
            lon=lon,
            distance_m=0.0,
        )
