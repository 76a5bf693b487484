"""Torque Pro's keys: what each ``k…`` id of a web upload (and each column of its CSV log) is.

Torque names a value by ``k`` and an id in lower-case hex: a mode-01 PID without leading zeros
(``kc`` is 0x0C, RPM) or one of Torque's own ids (``kff1005`` GPS longitude, ``kff125d`` fuel
flow per hour, …); names and units come in uploads of their own, keyed by the same id with
leading zeros (``userFullName0c``, ``defaultUnit0c``). Uploaded values are in Torque's default
(metric) units whatever the user displays; the CSV log is in the user's units, named in each
column's header (``Engine Coolant Temperature(°F)``).

Ids that are PIDs of our table keep our names (``RPM``); any other id is stored under a name
made from it, ``TORQUE_`` and its hex in capitals (``TORQUE_FF125D``), so that a key is always
stored under the same name. ``KEYS`` lists what Torque publishes about its ids: the name and
short name Torque gives them and the unit of the uploaded value, in our unit vocabulary.

Source of the list (MIT licence): the key list of the open-source Torque receiver econpy/torque
(``web/data/torque_keys.csv``) with the names, short names and default units of a real upload
of Torque Pro kept in the same repository (``debug-apache-access-logs.txt``, commit e9ac7b08e7),
names spelled as in the CSV log exported by the app (``debug-sample-app-export.csv``).
"""

import re
from dataclasses import dataclass

from obd2_protocol import PIDS

# A key's id: at most 8 hex digits, so that a derived name stays short (``TORQUE_`` + 8).
MAX_KEY_HEX = 8
DERIVED_PREFIX = "TORQUE_"
_KEY = re.compile(r"^[0-9a-fA-F]{1,8}$")
_DERIVED = re.compile(r"^TORQUE_([0-9A-F]{1,8})$")

# Mode-01 PIDs of our table (``obd2_protocol.PIDS``), by PID number.
MODE01: dict[int, str] = {
    0x04: "ENGINE_LOAD",
    0x05: "COOLANT_TEMP",
    0x06: "SHORT_FUEL_TRIM_1",
    0x07: "LONG_FUEL_TRIM_1",
    0x08: "SHORT_FUEL_TRIM_2",
    0x09: "LONG_FUEL_TRIM_2",
    0x0A: "FUEL_PRESSURE",
    0x0B: "INTAKE_PRESSURE",
    0x0C: "RPM",
    0x0D: "SPEED",
    0x0E: "TIMING_ADVANCE",
    0x0F: "INTAKE_TEMP",
    0x10: "MAF",
    0x11: "THROTTLE_POS",
    0x1F: "RUN_TIME",
    0x21: "DISTANCE_W_MIL",
    0x22: "FUEL_RAIL_PRESSURE_VAC",
    0x23: "FUEL_RAIL_PRESSURE_DIRECT",
    0x2C: "COMMANDED_EGR",
    0x2D: "EGR_ERROR",
    0x2E: "EVAPORATIVE_PURGE",
    0x2F: "FUEL_LEVEL",
    0x30: "WARMUPS_SINCE_DTC_CLEAR",
    0x31: "DISTANCE_SINCE_DTC_CLEAR",
    0x32: "EVAP_VAPOR_PRESSURE",
    0x33: "BAROMETRIC_PRESSURE",
    0x3C: "CATALYST_TEMP_B1S1",
    0x3D: "CATALYST_TEMP_B2S1",
    0x3E: "CATALYST_TEMP_B1S2",
    0x3F: "CATALYST_TEMP_B2S2",
    0x42: "CONTROL_MODULE_VOLTAGE",
    0x43: "ABSOLUTE_LOAD",
    0x44: "COMMANDED_EQUIV_RATIO",
    0x45: "RELATIVE_THROTTLE_POS",
    0x46: "AMBIANT_AIR_TEMP",
    0x47: "THROTTLE_POS_B",
    0x48: "THROTTLE_POS_C",
    0x49: "ACCELERATOR_POS_D",
    0x4A: "ACCELERATOR_POS_E",
    0x4B: "ACCELERATOR_POS_F",
    0x4C: "THROTTLE_ACTUATOR",
    0x4D: "RUN_TIME_MIL",
    0x4E: "TIME_SINCE_DTC_CLEARED",
    0x52: "ETHANOL_PERCENT",
    0x53: "EVAP_VAPOR_PRESSURE_ABS",
    0x54: "EVAP_VAPOR_PRESSURE_ALT",
    0x55: "SHORT_O2_TRIM_B1",
    0x56: "LONG_O2_TRIM_B1",
    0x57: "SHORT_O2_TRIM_B2",
    0x58: "LONG_O2_TRIM_B2",
    0x59: "FUEL_RAIL_PRESSURE_ABS",
    0x5A: "RELATIVE_ACCEL_POS",
    0x5B: "HYBRID_BATTERY_REMAINING",
    0x5C: "OIL_TEMP",
    0x5D: "FUEL_INJECT_TIMING",
    # Torque labels its 5E "L/m"; the value is taken as the standard's L/h.
    0x5E: "FUEL_RATE",
    0xA6: "ODOMETER",
}
# Torque's own ids that are values of our table.
TORQUE_STANDARD: dict[int, str] = {
    0xFF1001: "GPS_SPEED",
    0xFF1005: "GPS_LON",
    0xFF1006: "GPS_LAT",
    0xFF1007: "GPS_BEARING",
    0xFF1010: "GPS_ALT",
    0xFF1238: "ELM_VOLTAGE",
    0xFF1239: "GPS_ACCURACY",
}
STANDARD: dict[int, str] = {**MODE01, **TORQUE_STANDARD}
assert all(name in PIDS for name in STANDARD.values())

FUEL_FLOW_ID = 0xFF125D  # "Fuel flow rate/hour", litres per hour
TRIP_AVERAGE_L_PER_100KM_ID = 0xFF1208  # "Trip average Litres/100 KM"
FUEL_USED_TRIP_ID = 0xFF1271  # "Fuel used (trip)", litres
TRIP_DISTANCE_ID = 0xFF1204  # "Trip Distance", km


@dataclass(frozen=True, slots=True)
class TorqueKey:
    """One id of Torque's, as we store its values."""

    key_id: int
    # Our PID name: a name of our table, or ``TORQUE_<HEX>``.
    name: str
    # The names Torque gives the id ("Fuel flow rate/hour", "Fuel Flow").
    display_name: str
    short_name: str
    # The unit of an uploaded value, in our vocabulary ("liters_per_hour"); "" for a count.
    unit: str


# (id, Torque's name, short name, unit of the uploaded value).
_TABLE: tuple[tuple[int, str, str, str], ...] = (
    (0x3, "Fuel Status", "Fuel Status", ""),
    (0x4, "Engine Load", "Load", "percent"),
    (0x5, "Engine Coolant Temperature", "Coolant", "degC"),
    (0x6, "Fuel Trim Bank 1 Short Term", "STFT1", "percent"),
    (0x7, "Fuel Trim Bank 1 Long Term", "LTFT1", "percent"),
    (0x8, "Fuel Trim Bank 2 Short Term", "STFT2", "percent"),
    (0x9, "Fuel Trim Bank 2 Long Term", "LTFT2", "percent"),
    (0xA, "Fuel pressure", "Fuel Pres", "kPa"),
    (0xB, "Intake Manifold Pressure", "Intake", "kPa"),
    (0xC, "Engine RPM", "Revs", "rpm"),
    (0xD, "Speed (OBD)", "Speed", "kph"),
    (0xE, "Timing Advance", "Timing Adv", "degree"),
    (0xF, "Intake Air Temperature", "Intake", "degC"),
    (0x10, "Mass Air Flow Rate", "MAF", "gps"),
    (0x11, "Throttle Position(Manifold)", "Throttle", "percent"),
    (0x12, "Air Status", "Air Status", ""),
    (0x14, "Fuel trim bank 1 sensor 1", "F T 1x1", "percent"),
    (0x15, "Fuel trim bank 1 sensor 2", "F T 1x2", "percent"),
    (0x16, "Fuel trim bank 1 sensor 3", "F T 1x3", "percent"),
    (0x17, "Fuel trim bank 1 sensor 4", "F T 1x4", "percent"),
    (0x18, "Fuel trim bank 2 sensor 1", "F T 2x1", "percent"),
    (0x19, "Fuel trim bank 2 sensor 2", "F T 2x2", "percent"),
    (0x1A, "Fuel trim bank 2 sensor 3", "F T 2x3", "percent"),
    (0x1B, "Fuel trim bank 2 sensor 4", "F T 2x4", "percent"),
    (0x1F, "Run time since engine start", "RunTime", "second"),
    (0x21, "Distance travelled with MIL/CEL lit", "MIL On", "km"),
    (0x22, "Fuel Rail Pressure (relative to manifold vacuum)", "Fuel Rail", "kPa"),
    (0x23, "Fuel Rail Pressure", "Fuel Rail", "kPa"),
    (0x24, "O2 Sensor1 Equivalence Ratio", "O2S1Eq", "ratio"),
    (0x25, "O2 Sensor2 Equivalence Ratio", "O2S2Eq", "ratio"),
    (0x26, "O2 Sensor3 Equivalence Ratio", "O2S3Eq", "ratio"),
    (0x27, "O2 Sensor4 Equivalence Ratio", "O2S4Eq", "ratio"),
    (0x28, "O2 Sensor5 Equivalence Ratio", "O2S5Eq", "ratio"),
    (0x29, "O2 Sensor6 Equivalence Ratio", "O2S6Eq", "ratio"),
    (0x2A, "O2 Sensor7 Equivalence Ratio", "O2S7Eq", "ratio"),
    (0x2B, "O2 Sensor8 Equivalence Ratio", "O2S8Eq", "ratio"),
    (0x2C, "EGR Commanded", "EGR", "percent"),
    (0x2D, "EGR Error", "EGR Err", "percent"),
    (0x2F, "Fuel Level (From Engine ECU)", "Fuel", "percent"),
    (0x31, "Distance travelled since codes cleared", "MIL Off", "km"),
    (0x32, "Evap System Vapour Pressure", "EvapP", "Pa"),
    (0x33, "Barometric pressure (from vehicle)", "Baro", "kPa"),
    (0x34, "O2 Sensor1 Equivalence Ratio(alternate)", "O2S1Eq", "ratio"),
    (0x3C, "Catalyst Temperature (Bank 1 Sensor 1)", "Cat B1S1", "degC"),
    (0x3D, "Catalyst Temperature (Bank 2 Sensor 1)", "Cat B2S1", "degC"),
    (0x3E, "Catalyst Temperature (Bank 1 Sensor 2)", "Cat B1S2", "degC"),
    (0x3F, "Catalyst Temperature (Bank 2 Sensor 2)", "Cat B2S2", "degC"),
    (0x42, "Voltage (Control Module)", "Volts(CM)", "volt"),
    (0x43, "Engine Load(Absolute)", "Abs Load", "percent"),
    (0x44, "Commanded Equivalence Ratio(lambda)", "COMEQR", "ratio"),
    (0x45, "Relative Throttle Position", "R THR", "percent"),
    (0x46, "Ambient air temp", "Air temp", "degC"),
    (0x47, "Absolute Throttle Position B", "A THR2", "percent"),
    (0x49, "Accelerator PedalPosition D", "PedalD", "percent"),
    (0x4A, "Accelerator PedalPosition E", "PedalE", "percent"),
    (0x4B, "Accelerator PedalPosition F", "PedalF", "percent"),
    (0x52, "Ethanol Fuel %", "Ethanol", "percent"),
    (0x5A, "Relative Accelerator Pedal Position", "R ACC", "percent"),
    (0x5B, "Hybrid Battery Charge (%)", "HBATT", "percent"),
    (0x5C, "Engine Oil Temperature", "Oil Temp", "degC"),
    (0x5E, "Fuel Rate (direct from ECU)", "FuelRate", "liters_per_hour"),
    (0x61, "Drivers demand engine % torque", "DmTorq", "percent"),
    (0x62, "Actual engine % torque", "ActTorq", "percent"),
    (0x63, "Engine reference torque", "RefTorq", "Nm"),
    (0x78, "Exhaust Gas Temperature 1", "EGT1", "degC"),
    (0x79, "Exhaust Gas Temperature 2", "EGT2", "degC"),
    (0x7C, "DPF Temperature", "DPFTemp", "degC"),
    (0xB4, "Transmission Temperature(Method 2)", "Trans", "degC"),
    (0xFE1805, "Transmission Temperature(Method 1)", "Trans", "degC"),
    (0xFF1001, "Speed (GPS)", "GPS Spd", "kph"),
    (0xFF1005, "GPS Longitude", "GPSLon", "degree"),
    (0xFF1006, "GPS Latitude", "GPSLat", "degree"),
    (0xFF1007, "GPS Bearing", "Bearing", "degree"),
    (0xFF1010, "GPS Altitude", "GPS Height", "meter"),
    (0xFF1201, "Miles Per Gallon(Instant)", "MPG", "mpg"),
    (0xFF1202, "Turbo Boost & Vacuum Gauge", "Boost", "psi"),
    (0xFF1203, "Kilometers Per Litre(Instant)", "KPL", "kpl"),
    (0xFF1204, "Trip Distance", "Trip", "km"),
    (0xFF1205, "Trip average MPG", "Trip MPG", "mpg"),
    (0xFF1206, "Trip average KPL", "Trip KPL", "kpl"),
    (0xFF1207, "Litres Per 100 Kilometer(Instant)", "LPK", "liters_per_100km"),
    (0xFF1208, "Trip average Litres/100 KM", "Trip LPK", "liters_per_100km"),
    (0xFF120C, "Trip distance (stored in vehicle profile)", "Odo", "km"),
    (0xFF1214, "O2 Volts Bank 1 sensor 1", "O2 1x1", "volt"),
    (0xFF1215, "O2 Volts Bank 1 sensor 2", "O2 1x2", "volt"),
    (0xFF1216, "O2 Volts Bank 1 sensor 3", "O2 1x3", "volt"),
    (0xFF1217, "O2 Volts Bank 1 sensor 4", "O2 1x4", "volt"),
    (0xFF1218, "O2 Volts Bank 2 sensor 1", "O2 2x1", "volt"),
    (0xFF1219, "O2 Volts Bank 2 sensor 2", "O2 2x2", "volt"),
    (0xFF121A, "O2 Volts Bank 2 sensor 3", "O2 2x3", "volt"),
    (0xFF121B, "O2 Volts Bank 2 sensor 4", "O2 2x4", "volt"),
    (0xFF1220, "Acceleration Sensor(X axis)", "Accel(x)", "g"),
    (0xFF1221, "Acceleration Sensor(Y axis)", "Accel(y)", "g"),
    (0xFF1222, "Acceleration Sensor(Z axis)", "Accel(z)", "g"),
    (0xFF1223, "Acceleration Sensor(Total)", "Accel", "g"),
    (0xFF1225, "Torque", "Torque", "ft-lb"),
    (0xFF1226, "Horsepower (At the wheels)", "HP", "hp"),
    (0xFF122D, "0-60mph Time", "0-60mph", "second"),
    (0xFF122E, "0-100kph Time", "0-100kph", "second"),
    (0xFF122F, "1/4 mile time", "1/4m time", "second"),
    (0xFF1230, "1/8 mile time", "1/8m time", "second"),
    (0xFF1237, "GPS vs OBD Speed difference", "Spd Diff", "kph"),
    (0xFF1238, "Voltage (OBD Adapter)", "Volts(Ad)", "volt"),
    (0xFF1239, "GPS Accuracy", "GPS Acc", "meter"),
    (0xFF123A, "GPS Satellites", "GPS Sat", ""),
    (0xFF123B, "GPS Bearing", "GPS Brng", "degree"),
    (0xFF1240, "O2 Sensor1 wide-range Voltage", "O2S1LV", "volt"),
    (0xFF1241, "O2 Sensor2 wide-range Voltage", "O2S2LV", "volt"),
    (0xFF1242, "O2 Sensor3 wide-range Voltage", "O2S3LV", "volt"),
    (0xFF1243, "O2 Sensor4 wide-range Voltage", "O2S4LV", "volt"),
    (0xFF1244, "O2 Sensor5 wide-range Voltage", "O2S5LV", "volt"),
    (0xFF1245, "O2 Sensor6 wide-range Voltage", "O2S6LV", "volt"),
    (0xFF1246, "O2 Sensor7 wide-range Voltage", "O2S7LV", "volt"),
    (0xFF1247, "O2 Sensor8 wide-range Voltage", "O2S8LV", "volt"),
    (0xFF1249, "Air Fuel Ratio(Measured)", "AFR(m)", ":1"),
    (0xFF124A, "Tilt(x)", "Tilt(x)", "degree"),
    (0xFF124B, "Tilt(y)", "Tilt(y)", "degree"),
    (0xFF124C, "Tilt(z)", "Tilt(z)", "degree"),
    (0xFF124D, "Air Fuel Ratio(Commanded)", "AFR(c)", ":1"),
    (0xFF124F, "0-200kph Time", "0-200kph", "second"),
    (0xFF1257, "CO₂ in g/km (Instantaneous)", "CO₂", "g/km"),
    (0xFF1258, "CO₂ in g/km (Average)", "Av.CO₂", "g/km"),
    (0xFF125A, "Fuel flow rate/minute", "Fuel Flow", "cc/min"),
    (0xFF125C, "Fuel cost (trip)", "Fuel Cost", ""),
    (0xFF125D, "Fuel flow rate/hour", "Fuel Flow", "liters_per_hour"),
    (0xFF125E, "60-120mph Time", "60-120mph", "second"),
    (0xFF125F, "60-80mph Time", "60-80mph", "second"),
    (0xFF1260, "40-60mph Time", "40-60mph", "second"),
    (0xFF1261, "80-100mph Time", "80-100mph", "second"),
    (0xFF1263, "Average trip speed(whilst moving only)", "TripMSpeed", "kph"),
    (0xFF1264, "100-0kph Time", "100-0kph", "second"),
    (0xFF1265, "60-0mph Time", "60-0mph", "second"),
    (0xFF1266, "Trip Time(Since journey start)", "TripTime", "second"),
    (0xFF1267, "Trip time(whilst stationary)", "Stopped", "second"),
    (0xFF1268, "Trip time(whilst moving)", "Moving", "second"),
    (0xFF1269, "Volumetric Efficiency (Calculated)", "Vol.Eff.", "percent"),
    (0xFF126A, "Distance to empty (Estimated)", "Dist Empt.", "km"),
    (0xFF126B, "Fuel Remaining (Calculated from vehicle profile)", "Fuel Rem", "percent"),
    (0xFF126D, "Cost per mile/km (Instant)", "Cost/dist", ""),
    (0xFF126E, "Cost per mile/km (Trip)", "Trip cost/dist", ""),
    (0xFF1270, "Barometer (on Android device)", "Baro", "mbar"),
    (0xFF1271, "Fuel used (trip)", "Fuel Used", "liter"),
    (0xFF1272, "Average trip speed(whilst stopped or moving)", "Trip Speed", "kph"),
    (0xFF1273, "Engine kW (At the wheels)", "Power", "kW"),
    (0xFF1275, "80-120kph Time", "80-120kph", "second"),
    (0xFF1276, "60-130mph Time", "60-130mph", "second"),
    (0xFF1277, "0-30mph Time", "0-30mph", "second"),
    (0xFF1278, "0-100mph Time", "0-100mph", "second"),
    (0xFF5201, "Miles Per Gallon(Long Term Average)", "MPG(avg)", "mpg"),
    (0xFF5202, "Kilometers Per Litre(Long Term Average)", "KPL(avg)", "kpl"),
    (0xFF5203, "Litres Per 100 Kilometer(Long Term Average)", "LPK(avg)", "liters_per_100km"),
)


def pid_name(key_id: int) -> str:
    """The PID name values of a Torque id are stored under."""
    return STANDARD.get(key_id) or f"{DERIVED_PREFIX}{key_id:X}"


def key_id_of(key: str) -> int | None:
    """The id of a key's hex part (``"ff125d"``, ``"0c"``, ``"C"``); None if it is not one."""
    if not _KEY.match(key):
        return None
    return int(key, 16)


def derived_key_id(name: str) -> int | None:
    """The Torque id a derived name stands for (``TORQUE_FF125D`` → 0xFF125D)."""
    match = _DERIVED.match(name)
    return int(match.group(1), 16) if match else None


KEYS: dict[int, TorqueKey] = {
    key_id: TorqueKey(key_id, pid_name(key_id), name, short, unit)
    for key_id, name, short, unit in _TABLE
}
FUEL_FLOW_PID = pid_name(FUEL_FLOW_ID)


def describe(key_id: int) -> TorqueKey:
    """What is known of an id: its entry in Torque's list, else only its name."""
    known = KEYS.get(key_id)
    if known is not None:
        return known
    name = pid_name(key_id)
    info = PIDS.get(name)
    if info is not None:
        return TorqueKey(key_id, name, info.description, info.description, info.unit)
    return TorqueKey(key_id, name, f"Torque sensor {key_id:X}", f"{key_id:X}", "")


# Torque's unit texts (its "defaultUnit…" fields and CSV headers) in our vocabulary: spellings
# the unit table (units.table) knows where it has the unit, so that they are shown in each
# person's units; the others (mpg, psi, hp, bar, ft-lb, cc/min, an air-fuel ratio's ":1") are
# shown as Torque gives them. Older versions of the app send "/" and "%" as spaces ("km h", " ").
_UNITS: dict[str, str] = {
    "%": "percent",
    "": "",
    "°c": "degC",
    "°": "degree",
    "km/h": "kph",
    "km h": "kph",
    "kph": "kph",
    "g/s": "gps",
    "g s": "gps",
    "s": "second",
    "km": "km",
    "kpa": "kPa",
    "pa": "Pa",
    "v": "volt",
    "rpm": "rpm",
    "m": "meter",
    "l/hr": "liters_per_hour",
    "l hr": "liters_per_hour",
    "l/h": "liters_per_hour",
    "cc/min": "cc/min",
    "cc min": "cc/min",
    "l/100km": "liters_per_100km",
    "l 100km": "liters_per_100km",
    "kpl": "kpl",
    "mpg": "mpg",
    "g/km": "g/km",
    "g km": "g/km",
    "mb": "mbar",
    "kw": "kW",
    "hp": "hp",
    "nm": "Nm",
    "ft-lb": "ft-lb",
    "psi": "psi",
    "bar": "bar",
    "l": "liter",
    "g": "g",
    ":1": ":1",
    "lambda": "ratio",
    "cost": "",
}
MAX_UNIT_CHARS = 32


def canonical_unit(text: str) -> str:
    """A unit as Torque writes it ("km/h", "°C", "l hr") in our vocabulary ("kph", "degC",
    "liters_per_hour"); a unit we have no name for is kept as written (at most 32 characters)."""
    stripped = text.strip()
    if not stripped and text:
        return "percent"  # "%" sent unescaped reaches us as a space
    return _UNITS.get(stripped.lower(), stripped[:MAX_UNIT_CHARS])


_BY_NAME: dict[str, TorqueKey] = {key.display_name.lower(): key for key in KEYS.values()}
# The phone's own columns of a Torque CSV log that name values of Torque ids.
CSV_ALIASES: dict[str, int] = {
    "longitude": 0xFF1005,
    "latitude": 0xFF1006,
    "altitude": 0xFF1010,
    "bearing": 0xFF1007,
}
_HEADER = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^()]*)\)\s*$")


@dataclass(frozen=True, slots=True)
class CsvColumn:
    key: TorqueKey
    # The unit the column's values are in, as its header gives it (the user's: "°F", "mph");
    # None when the header names none.
    unit_text: str | None


def by_csv_column(header: str) -> CsvColumn | None:
    """The Torque id a column of Torque's CSV log holds (``Engine Coolant Temperature(°F)``,
    ``Speed (OBD)(km/h)``, ``GPS Satellites``), with the unit its header names; None for a
    column that is no value of Torque's list (``GPS Time``, ``Device Time``)."""
    text = header.strip()
    exact = _BY_NAME.get(text.lower())
    if exact is not None:
        return CsvColumn(exact, None)
    alias = CSV_ALIASES.get(text.lower())
    if alias is not None:
        return CsvColumn(KEYS[alias], None)
    match = _HEADER.match(text)
    if match is None:
        return None
    name = match.group("name").lower()
    key = _BY_NAME.get(name)
    if key is None and name in CSV_ALIASES:
        key = KEYS[CSV_ALIASES[name]]
    return None if key is None else CsvColumn(key, match.group("unit"))
