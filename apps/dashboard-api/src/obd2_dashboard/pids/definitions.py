"""What the server itself knows of PID names: the PID table (``obd2_protocol.PIDS``) and Torque's
published key list. Pure: no database."""

import re
from dataclasses import dataclass
from typing import Literal

from obd2_dashboard.torque import keys as torque_keys
from obd2_protocol import PIDS

Source = Literal["obd", "torque", "agent", "import"]
SOURCES: tuple[Source, ...] = ("obd", "torque", "agent", "import")

# A PID name as stored (samples.pid is VARCHAR(64)): capitals, digits and underscores.
NAME_PATTERN = r"^[A-Z0-9_]{1,64}$"
_NAME = re.compile(NAME_PATTERN)
MAX_DISPLAY_NAME = 100
MAX_SHORT_NAME = 32
MAX_UNIT = 32

# Values of our table that no mode-01 PID carries: the adapter's voltage and the phone's GPS.
DEVICE_VALUES = frozenset(
    {"ELM_VOLTAGE", "GPS_LAT", "GPS_LON", "GPS_ALT", "GPS_SPEED", "GPS_BEARING", "GPS_ACCURACY"}
)
# A marker the Torque upload stores with each upload: its session, a hint to the trip
# segmenter (see trips.segmenter).
TORQUE_SESSION = "TORQUE_SESSION"


@dataclass(frozen=True, slots=True)
class PidDefinition:
    name: str
    display_name: str
    short_name: str | None
    # The canonical unit of stored values ("kph", "degC", "liters_per_hour"); "" for a count.
    unit: str
    source: Source


@dataclass(frozen=True, slots=True)
class PidNames:
    """What a device or an import says of a name: each of its fields that is None is left as
    it was recorded (Torque sends units and names in uploads of their own)."""

    name: str
    source: Source
    display_name: str | None = None
    short_name: str | None = None
    unit: str | None = None


def is_pid_name(name: str) -> bool:
    return _NAME.match(name) is not None


def source_of(name: str, sender: Source) -> Source:
    """Who defines a PID the ``sender`` stores values of: mode-01 PIDs are OBD's whoever
    relays them; the rest belong to the sender (a Torque id, an agent's value, an import)."""
    if name in PIDS and name not in DEVICE_VALUES:
        return "obd"
    key_id = torque_keys.derived_key_id(name)
    if key_id is not None and key_id <= 0xFF:
        return "obd"  # a mode-01 PID our table lacks, named by its Torque key
    if key_id is not None or name == TORQUE_SESSION:
        return "torque"
    return sender


def builtin(name: str) -> PidDefinition | None:
    """The server's own definition of a name, when it has one."""
    info = PIDS.get(name)
    if info is not None:
        source: Source = "agent" if name in DEVICE_VALUES else "obd"
        return PidDefinition(name, info.description, None, info.unit, source)
    if name == TORQUE_SESSION:
        return PidDefinition(name, "Torque session (start, epoch s)", "Session", "second", "torque")
    key_id = torque_keys.derived_key_id(name)
    if key_id is None:
        return None
    key = torque_keys.KEYS.get(key_id)
    if key is None:
        return None
    return PidDefinition(
        name, key.display_name, key.short_name, key.unit, "obd" if key_id <= 0xFF else "torque"
    )


def builtin_catalogue() -> list[PidDefinition]:
    """Every name the server defines: the PID table, then Torque's ids it stores under names
    of their own."""
    names = list(PIDS)
    names += sorted(
        {key.name for key in torque_keys.KEYS.values() if key.name not in PIDS} | {TORQUE_SESSION}
    )
    return [definition for name in names if (definition := builtin(name)) is not None]


def as_source(text: str) -> Source:
    """A stored source; anything unexpected reads as the agent's."""
    for source in SOURCES:
        if source == text:
            return source
    return "agent"


# Torque's fuel flow per hour (L/h): a trip's fuel when the car sends no FUEL_RATE.
TORQUE_FUEL_FLOW = torque_keys.FUEL_FLOW_PID
