"""The web UI's API types (apps/web/src/api/types.ts, written by hand) agree with the OpenAPI
document on the shapes the PID catalogue brought, and the UI keeps no copy of the PID table:
its names, labels and units come from the server."""

import re
from typing import Any

from obd2_dashboard.web.endpoints import REPO_WEB
from obd2_protocol import PIDS
from tests.test_app import DOCUMENT

TYPES = (REPO_WEB / "src" / "api" / "types.ts").read_text()
_INTERFACE = re.compile(
    r"^export interface (?P<name>\w+)(?: extends (?P<base>\w+))? \{\n(?P<body>.*?)^\}", re.M | re.S
)
_FIELD = re.compile(r"^  (?P<name>\w+)(?P<optional>\?)?: (?P<type>[^;]+);$", re.M)
_ALIAS = re.compile(r"^export type (?P<name>\w+) = (?P<type>[^;]+);$", re.M)

# TypeScript interface → the OpenAPI schema it mirrors.
MIRRORS = {
    "PidEntry": "PidRead",
    "VehiclePid": "VehiclePidRead",
    "VehicleEvent": "VehicleEventRead",
    "TripTrack": "TripTrack",
    "TripTotals": "TripTotals",
    "MapTiles": "MapTiles",
}


def _fields(interface: str) -> dict[str, tuple[bool, str]]:
    """name → (optional, type) of an interface, its base's included."""
    found = {m.group("name"): m for m in _INTERFACE.finditer(TYPES)}
    match = found[interface]
    fields = _fields(match.group("base")) if match.group("base") else {}
    for field in _FIELD.finditer(match.group("body")):
        fields[field.group("name")] = (bool(field.group("optional")), field.group("type"))
    return fields


def _literals(ts_type: str) -> set[str]:
    aliases = {m.group("name"): m.group("type") for m in _ALIAS.finditer(TYPES)}
    expanded = " | ".join(aliases.get(part.strip(), part.strip()) for part in ts_type.split("|"))
    return set(re.findall(r'"([^"]*)"', expanded))


def _enum(schema: dict[str, Any]) -> set[str]:
    options = schema.get("anyOf", [schema])
    values: set[str] = set()
    for option in options:
        named = option
        if "$ref" in option:
            named = DOCUMENT["components"]["schemas"][option["$ref"].rsplit("/", 1)[1]]
        values.update(named.get("enum", []))
        if "const" in named:
            values.add(named["const"])
    return values


def test_the_catalogue_types_mirror_the_api() -> None:
    for interface, component in MIRRORS.items():
        schema = DOCUMENT["components"]["schemas"][component]
        fields = _fields(interface)
        assert set(fields) == set(schema["properties"]), interface
        required = {name for name, (optional, _) in fields.items() if not optional}
        assert required == set(schema.get("required", [])), interface
        for name, (_, ts_type) in fields.items():
            values = _enum(schema["properties"][name])
            if values:
                assert _literals(ts_type) == values, (interface, name)


def test_a_trips_fuel_source_is_one_the_api_sends() -> None:
    schema = DOCUMENT["components"]["schemas"]["TripRead"]["properties"]["fuel_source"]
    _, ts_type = _fields("Trip")["fuel_source"]
    assert _literals(ts_type) == _enum(schema) == {"FUEL_RATE", "TORQUE_FUEL_FLOW", "MAF"}


def test_the_web_ui_keeps_no_copy_of_the_pid_table() -> None:
    sources = "\n".join(
        path.read_text() for path in (REPO_WEB / "src").rglob("*.ts") if ".test." not in path.name
    )
    # A gauge's own short label is how the page shows it ("Engine speed" for RPM), not a copy.
    gauge_labels = set(re.findall(r'label: "([^"]+)"', (REPO_WEB / "src" / "pids.ts").read_text()))
    copied = [
        info.description
        for info in PIDS.values()
        if info.description in sources and info.description not in gauge_labels
    ]
    assert copied == [], "the UI takes PID names from GET /api/v1/pids"
    rows = [name for name, info in PIDS.items() if f'"{name}", "{info.unit}"' in sources]
    assert rows == [], "the UI takes PID units from GET /api/v1/pids"
