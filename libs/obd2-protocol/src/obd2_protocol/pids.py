from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PidInfo:
    name: str
    unit: str
    description: str


# Names as python-OBD names its mode-01 commands (plus the adapter voltage and GPS fields that
# Torque Pro and phone bridges report); units are the ones python-OBD decodes to.
_TABLE: tuple[tuple[str, str, str], ...] = (
    ("ENGINE_LOAD", "percent", "Calculated engine load"),
    ("COOLANT_TEMP", "degC", "Engine coolant temperature"),
    ("SHORT_FUEL_TRIM_1", "percent", "Short term fuel trim, bank 1"),
    ("LONG_FUEL_TRIM_1", "percent", "Long term fuel trim, bank 1"),
    ("SHORT_FUEL_TRIM_2", "percent", "Short term fuel trim, bank 2"),
    ("LONG_FUEL_TRIM_2", "percent", "Long term fuel trim, bank 2"),
    ("FUEL_PRESSURE", "kPa", "Fuel pressure"),
    ("INTAKE_PRESSURE", "kPa", "Intake manifold pressure"),
    ("RPM", "rpm", "Engine speed"),
    ("SPEED", "kph", "Vehicle speed"),
    ("TIMING_ADVANCE", "degree", "Timing advance"),
    ("INTAKE_TEMP", "degC", "Intake air temperature"),
    ("MAF", "gps", "Mass air flow rate"),
    ("THROTTLE_POS", "percent", "Throttle position"),
    ("O2_B1S1", "volt", "O2 sensor bank 1 sensor 1 voltage"),
    ("O2_B1S2", "volt", "O2 sensor bank 1 sensor 2 voltage"),
    ("O2_B2S1", "volt", "O2 sensor bank 2 sensor 1 voltage"),
    ("O2_B2S2", "volt", "O2 sensor bank 2 sensor 2 voltage"),
    ("RUN_TIME", "second", "Run time since engine start"),
    ("DISTANCE_W_MIL", "km", "Distance travelled with MIL on"),
    ("FUEL_RAIL_PRESSURE_VAC", "kPa", "Fuel rail pressure (relative to vacuum)"),
    ("FUEL_RAIL_PRESSURE_DIRECT", "kPa", "Fuel rail gauge pressure"),
    ("COMMANDED_EGR", "percent", "Commanded EGR"),
    ("EGR_ERROR", "percent", "EGR error"),
    ("EVAPORATIVE_PURGE", "percent", "Commanded evaporative purge"),
    ("FUEL_LEVEL", "percent", "Fuel tank level input"),
    ("WARMUPS_SINCE_DTC_CLEAR", "count", "Warm-ups since codes cleared"),
    ("DISTANCE_SINCE_DTC_CLEAR", "km", "Distance travelled since codes cleared"),
    ("EVAP_VAPOR_PRESSURE", "Pa", "Evap system vapor pressure"),
    ("BAROMETRIC_PRESSURE", "kPa", "Absolute barometric pressure"),
    ("CATALYST_TEMP_B1S1", "degC", "Catalyst temperature bank 1 sensor 1"),
    ("CATALYST_TEMP_B2S1", "degC", "Catalyst temperature bank 2 sensor 1"),
    ("CATALYST_TEMP_B1S2", "degC", "Catalyst temperature bank 1 sensor 2"),
    ("CATALYST_TEMP_B2S2", "degC", "Catalyst temperature bank 2 sensor 2"),
    ("CONTROL_MODULE_VOLTAGE", "volt", "Control module voltage"),
    ("ABSOLUTE_LOAD", "percent", "Absolute load value"),
    ("COMMANDED_EQUIV_RATIO", "ratio", "Commanded air-fuel equivalence ratio"),
    ("RELATIVE_THROTTLE_POS", "percent", "Relative throttle position"),
    ("AMBIANT_AIR_TEMP", "degC", "Ambient air temperature"),
    ("THROTTLE_POS_B", "percent", "Absolute throttle position B"),
    ("THROTTLE_POS_C", "percent", "Absolute throttle position C"),
    ("ACCELERATOR_POS_D", "percent", "Accelerator pedal position D"),
    ("ACCELERATOR_POS_E", "percent", "Accelerator pedal position E"),
    ("ACCELERATOR_POS_F", "percent", "Accelerator pedal position F"),
    ("THROTTLE_ACTUATOR", "percent", "Commanded throttle actuator"),
    ("RUN_TIME_MIL", "minute", "Time run with MIL on"),
    ("TIME_SINCE_DTC_CLEARED", "minute", "Time since trouble codes cleared"),
    ("ETHANOL_PERCENT", "percent", "Ethanol fuel percentage"),
    ("EVAP_VAPOR_PRESSURE_ABS", "kPa", "Absolute evap system vapor pressure"),
    ("EVAP_VAPOR_PRESSURE_ALT", "Pa", "Evap system vapor pressure"),
    ("SHORT_O2_TRIM_B1", "percent", "Short term secondary O2 trim, bank 1"),
    ("LONG_O2_TRIM_B1", "percent", "Long term secondary O2 trim, bank 1"),
    ("SHORT_O2_TRIM_B2", "percent", "Short term secondary O2 trim, bank 2"),
    ("LONG_O2_TRIM_B2", "percent", "Long term secondary O2 trim, bank 2"),
    ("FUEL_RAIL_PRESSURE_ABS", "kPa", "Fuel rail absolute pressure"),
    ("RELATIVE_ACCEL_POS", "percent", "Relative accelerator pedal position"),
    ("HYBRID_BATTERY_REMAINING", "percent", "Hybrid battery pack remaining life"),
    ("OIL_TEMP", "degC", "Engine oil temperature"),
    ("FUEL_INJECT_TIMING", "degree", "Fuel injection timing"),
    ("FUEL_RATE", "liters_per_hour", "Engine fuel rate"),
    ("ELM_VOLTAGE", "volt", "Adapter supply voltage (battery)"),
    ("ODOMETER", "km", "Odometer"),
    ("GPS_LAT", "degree", "GPS latitude"),
    ("GPS_LON", "degree", "GPS longitude"),
    ("GPS_ALT", "meter", "GPS altitude"),
    ("GPS_SPEED", "kph", "GPS speed"),
    ("GPS_BEARING", "degree", "GPS bearing"),
    ("GPS_ACCURACY", "meter", "GPS accuracy"),
)

PIDS: dict[str, PidInfo] = {name: PidInfo(name, unit, desc) for name, unit, desc in _TABLE}
# For JSON schemas (OpenAPI): a PID is one of these names, so generated requests can name one.
PID_SCHEMA: dict[str, object] = {"enum": list(PIDS)}


def is_known_pid(name: str) -> bool:
    return name in PIDS
