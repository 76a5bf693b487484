"""Topic names and Home Assistant discovery payloads (pure: no connection here)."""

import json
from dataclasses import dataclass
from typing import Any

from obd2_dashboard.kit.version import VERSION
from obd2_protocol import PIDS

# python-OBD unit → (Home Assistant unit_of_measurement, device_class or None).
_UNITS: dict[str, tuple[str | None, str | None]] = {
    "degC": ("°C", "temperature"),
    "kph": ("km/h", "speed"),
    "volt": ("V", "voltage"),
    "kPa": ("kPa", "pressure"),
    "Pa": ("Pa", "pressure"),
    "km": ("km", "distance"),
    "meter": ("m", "distance"),
    "second": ("s", "duration"),
    "minute": ("min", "duration"),
    "percent": ("%", None),
    "rpm": ("rpm", None),
    "gps": ("g/s", None),
    "degree": ("°", None),
    "liters_per_hour": ("L/h", None),
    "count": (None, None),
    "ratio": (None, None),
}
# Counters that only grow: Home Assistant keeps long-term statistics of them as totals.
_TOTALS = frozenset({"ODOMETER", "DISTANCE_W_MIL", "DISTANCE_SINCE_DTC_CLEAR"})


@dataclass(frozen=True, slots=True)
class TripSensor:
    key: str  # a field of the trip summary (the API's trip)
    name: str
    unit: str
    device_class: str | None


# The vehicle's last finished trip, each a sensor reading one field of the retained summary.
LAST_TRIP_SENSORS = (
    TripSensor("distance_km", "Last trip distance", "km", "distance"),
    TripSensor("duration_s", "Last trip duration", "s", "duration"),
    TripSensor("avg_speed_kmh", "Last trip average speed", "km/h", "speed"),
    TripSensor("fuel_used_l", "Last trip fuel used", "L", "volume"),
    TripSensor("economy_l_per_100km", "Last trip fuel economy", "L/100km", None),
)


@dataclass(frozen=True, slots=True)
class VehicleInfo:
    id: int
    name: str
    vin: str | None


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = "obd2"
    discovery_prefix: str = "homeassistant"

    @property
    def status(self) -> str:
        """The publisher's availability: ``online`` retained, ``offline`` as its last will."""
        return f"{self.prefix}/status"

    def state(self, vehicle_id: int, pid: str) -> str:
        return f"{self.prefix}/{vehicle_id}/{pid}"

    def events(self, vehicle_id: int) -> str:
        return f"{self.prefix}/{vehicle_id}/events"

    @property
    def discovery_status(self) -> str:
        """Where Home Assistant announces its own restarts (then configs are sent again)."""
        return f"{self.discovery_prefix}/status"

    def discovery(self, vehicle_id: int, pid: str) -> str:
        return f"{self.discovery_prefix}/sensor/obd2_{vehicle_id}_{pid}/config"

    def last_trip(self, vehicle_id: int) -> str:
        """The vehicle's last finished trip as JSON (retained)."""
        return f"{self.prefix}/{vehicle_id}/last_trip"

    def last_trip_discovery(self, vehicle_id: int, sensor: TripSensor) -> str:
        return f"{self.discovery_prefix}/sensor/obd2_{vehicle_id}_last_trip_{sensor.key}/config"

    def last_trip_config(self, vehicle: VehicleInfo, sensor: TripSensor) -> dict[str, Any]:
        config: dict[str, Any] = {
            "name": sensor.name,
            "unique_id": f"obd2_{vehicle.id}_last_trip_{sensor.key}",
            "object_id": f"obd2_{vehicle.id}_last_trip_{sensor.key}",
            "state_topic": self.last_trip(vehicle.id),
            # A figure the trip lacks (no fuel PID) is JSON null: rendered None, HA's "unknown".
            "value_template": f"{{{{ value_json.{sensor.key} }}}}",
            "unit_of_measurement": sensor.unit,
            "availability_topic": self.status,
            "payload_available": "online",
            "payload_not_available": "offline",
            "state_class": "measurement",
            "device": _device(vehicle),
            "origin": {"name": "obd2-dashboard", "sw_version": VERSION},
        }
        if sensor.device_class is not None:
            config["device_class"] = sensor.device_class
        if sensor.key == "distance_km":
            # The whole summary (times, maxima, fuel source…) as the distance sensor's attributes.
            config["json_attributes_topic"] = self.last_trip(vehicle.id)
        return config

    def discovery_config(self, vehicle: VehicleInfo, pid: str) -> dict[str, Any]:
        info = PIDS.get(pid)
        unit, device_class = _UNITS.get(info.unit if info else "", (None, None))
        device = _device(vehicle)
        config: dict[str, Any] = {
            "name": info.description if info else pid,
            "unique_id": f"obd2_{vehicle.id}_{pid}",
            "object_id": f"obd2_{vehicle.id}_{pid.lower()}",
            "state_topic": self.state(vehicle.id, pid),
            "availability_topic": self.status,
            "payload_available": "online",
            "payload_not_available": "offline",
            "state_class": "total_increasing" if pid in _TOTALS else "measurement",
            "device": device,
            "origin": {"name": "obd2-dashboard", "sw_version": VERSION},
        }
        if unit is not None:
            config["unit_of_measurement"] = unit
        if device_class is not None:
            config["device_class"] = device_class
        return config


def _device(vehicle: VehicleInfo) -> dict[str, Any]:
    device: dict[str, Any] = {
        "identifiers": [f"obd2_{vehicle.id}"],
        "name": vehicle.name,
        "manufacturer": "obd2-dashboard",
        "model": "OBD-II vehicle",
    }
    if vehicle.vin:
        device["serial_number"] = vehicle.vin
    return device


def state_payload(value: float) -> str:
    return format(value, ".10g")


def event_payload(event_type: str, vehicle_id: int, data: dict[str, Any]) -> str:
    return json.dumps(
        {"type": event_type, "vehicle_id": vehicle_id, **data}, separators=(",", ":"), default=str
    )
