"""Torque's keys: the published list, names from ids, and the columns of its CSV log."""

import pytest

from obd2_dashboard.torque import keys
from obd2_protocol import PIDS
from tests.torque.uploads import FIXTURES, real_uploads

CSV_HEADER = FIXTURES / "econpy-torque" / "debug-sample-app-export-header.csv"


def test_ids_of_the_pid_table_keep_its_names_and_others_get_their_own() -> None:
    assert keys.pid_name(0x0C) == "RPM"
    assert keys.pid_name(0xFF1006) == "GPS_LAT"
    assert keys.pid_name(0xFF125D) == keys.FUEL_FLOW_PID == "TORQUE_FF125D"
    assert keys.pid_name(0x78) == "TORQUE_78"
    assert keys.derived_key_id("TORQUE_FF125D") == 0xFF125D
    assert keys.derived_key_id("RPM") is None
    assert keys.key_id_of("0c") == keys.key_id_of("C") == 0x0C
    assert keys.key_id_of("ff12 5d") is None
    assert keys.key_id_of("123456789") is None  # more than 8 hex digits: no id
    assert all(name in PIDS for name in keys.STANDARD.values())


def test_every_sensor_a_real_upload_names_is_in_the_list() -> None:
    named: set[int] = set()
    for upload in real_uploads():
        for key, _ in upload:
            if key.startswith("userFullName"):
                key_id = keys.key_id_of(key.removeprefix("userFullName"))
                assert key_id is not None, key
                named.add(key_id)
    assert len(named) == 143
    assert named <= set(keys.KEYS)


def test_the_list_gives_the_unit_values_are_uploaded_in() -> None:
    flow = keys.KEYS[keys.FUEL_FLOW_ID]
    assert (flow.display_name, flow.short_name, flow.unit) == (
        "Fuel flow rate/hour",
        "Fuel Flow",
        "liters_per_hour",
    )
    assert keys.KEYS[keys.TRIP_AVERAGE_L_PER_100KM_ID].unit == "liters_per_100km"
    assert keys.describe(0xABCDEF).display_name == "Torque sensor ABCDEF"
    assert keys.describe(0x0C).name == "RPM"


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("km/h", "kph"),
        ("km h", "kph"),  # "/" sent as a space, as older versions of the app do
        ("°C", "degC"),
        (" ", "percent"),  # "%" sent unescaped reaches us as a space
        ("l hr", "liters_per_hour"),
        ("L/100km", "liters_per_100km"),
        ("psi", "psi"),
        ("furlongs", "furlongs"),
        ("x" * 40, "x" * 32),
    ],
)
def test_torques_unit_texts_in_our_vocabulary(text: str, unit: str) -> None:
    assert keys.canonical_unit(text) == unit


def test_the_columns_of_a_real_csv_log() -> None:
    header = CSV_HEADER.read_text(encoding="utf-8").strip().split(",")
    assert len(header) == 154
    found = {column: keys.by_csv_column(column) for column in header}
    # The phone's time and sensor columns that are no value of Torque's list.
    missing = sorted(column.strip() for column, match in found.items() if match is None)
    assert missing == [
        "Device Time",
        "GPS Speed(km/h)",
        "GPS Time",
        "Gravity X(G)",
        "Gravity Y(G)",
        "Gravity Z(G)",
        "Horizontal Dilution of Precision",
    ]
    coolant = found["Engine Coolant Temperature(°F)"]
    assert coolant is not None
    assert (coolant.key.name, coolant.unit_text) == ("COOLANT_TEMP", "°F")
    speed = found["Speed (OBD)(km/h)"]
    assert speed is not None
    assert (speed.key.name, speed.unit_text) == ("SPEED", "km/h")
    flow = found["Fuel flow rate/hour(l/hr)"]
    assert flow is not None
    assert (flow.key.name, flow.unit_text) == ("TORQUE_FF125D", "l/hr")
    satellites = found["GPS Satellites"]
    assert satellites is not None
    assert (satellites.key.name, satellites.unit_text) == ("TORQUE_FF123A", None)
    latitude = found[" Latitude"]
    assert latitude is not None
    assert latitude.key.name == "GPS_LAT"
    # Only the phone's own GPS columns ("Latitude") name the same values as Torque's ("GPS
    # Latitude(°)"): an importer takes one of each.
    names = [match.key.name for match in found.values() if match is not None]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert duplicates == ["GPS_ALT", "GPS_LAT", "GPS_LON"]
