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

    def discovery_config(self, vehicle: VehicleInfo, pid: str) -> dict[str, Any]:
        info = PIDS.get(pid)
        unit, device_class = _UNITS.get(info.unit if info else "", (None, None))
        device: dict[str, Any] = {
            "identifiers": [f"obd2_{vehicle.id}"],
            "name": vehicle.name,
            "manufacturer": "obd2-dashboard",
            "model": "OBD-II vehicle",
        }
        if vehicle.vin:
            device["serial_number"] = vehicle.vin
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


def state_payload(value: float) -> str:
    return format(value, ".10g")


def event_payload(event_type: str, vehicle_id: int, data: dict[str, Any]) -> str:
    return json.dumps(
        {"type": event_type, "vehicle_id": vehicle_id, **data}, separators=(",", ":"), default=str
    )
