// The PID table of obd2_protocol (libs/obd2-protocol/src/obd2_protocol/pids.py); a server test
// checks that the two agree, so a PID added there fails the build until it is added here.
export interface PidInfo {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

const TABLE: ReadonlyArray<readonly [string, string, string]> = [
  ["ENGINE_LOAD", "percent", "Calculated engine load"],
  ["COOLANT_TEMP", "degC", "Engine coolant temperature"],
  ["SHORT_FUEL_TRIM_1", "percent", "Short term fuel trim, bank 1"],
  ["LONG_FUEL_TRIM_1", "percent", "Long term fuel trim, bank 1"],
  ["SHORT_FUEL_TRIM_2", "percent", "Short term fuel trim, bank 2"],
  ["LONG_FUEL_TRIM_2", "percent", "Long term fuel trim, bank 2"],
  ["FUEL_PRESSURE", "kPa", "Fuel pressure"],
  ["INTAKE_PRESSURE", "kPa", "Intake manifold pressure"],
  ["RPM", "rpm", "Engine speed"],
  ["SPEED", "kph", "Vehicle speed"],
  ["TIMING_ADVANCE", "degree", "Timing advance"],
  ["INTAKE_TEMP", "degC", "Intake air temperature"],
  ["MAF", "gps", "Mass air flow rate"],
  ["THROTTLE_POS", "percent", "Throttle position"],
  ["O2_B1S1", "volt", "O2 sensor bank 1 sensor 1 voltage"],
  ["O2_B1S2", "volt", "O2 sensor bank 1 sensor 2 voltage"],
  ["O2_B2S1", "volt", "O2 sensor bank 2 sensor 1 voltage"],
  ["O2_B2S2", "volt", "O2 sensor bank 2 sensor 2 voltage"],
  ["RUN_TIME", "second", "Run time since engine start"],
  ["DISTANCE_W_MIL", "km", "Distance travelled with MIL on"],
  ["FUEL_RAIL_PRESSURE_VAC", "kPa", "Fuel rail pressure (relative to vacuum)"],
  ["FUEL_RAIL_PRESSURE_DIRECT", "kPa", "Fuel rail gauge pressure"],
  ["COMMANDED_EGR", "percent", "Commanded EGR"],
  ["EGR_ERROR", "percent", "EGR error"],
  ["EVAPORATIVE_PURGE", "percent", "Commanded evaporative purge"],
  ["FUEL_LEVEL", "percent", "Fuel tank level input"],
  ["WARMUPS_SINCE_DTC_CLEAR", "count", "Warm-ups since codes cleared"],
  ["DISTANCE_SINCE_DTC_CLEAR", "km", "Distance travelled since codes cleared"],
  ["EVAP_VAPOR_PRESSURE", "Pa", "Evap system vapor pressure"],
  ["BAROMETRIC_PRESSURE", "kPa", "Absolute barometric pressure"],
  ["CATALYST_TEMP_B1S1", "degC", "Catalyst temperature bank 1 sensor 1"],
  ["CATALYST_TEMP_B2S1", "degC", "Catalyst temperature bank 2 sensor 1"],
  ["CATALYST_TEMP_B1S2", "degC", "Catalyst temperature bank 1 sensor 2"],
  ["CATALYST_TEMP_B2S2", "degC", "Catalyst temperature bank 2 sensor 2"],
  ["CONTROL_MODULE_VOLTAGE", "volt", "Control module voltage"],
  ["ABSOLUTE_LOAD", "percent", "Absolute load value"],
  ["COMMANDED_EQUIV_RATIO", "ratio", "Commanded air-fuel equivalence ratio"],
  ["RELATIVE_THROTTLE_POS", "percent", "Relative throttle position"],
  ["AMBIANT_AIR_TEMP", "degC", "Ambient air temperature"],
  ["THROTTLE_POS_B", "percent", "Absolute throttle position B"],
  ["THROTTLE_POS_C", "percent", "Absolute throttle position C"],
  ["ACCELERATOR_POS_D", "percent", "Accelerator pedal position D"],
  ["ACCELERATOR_POS_E", "percent", "Accelerator pedal position E"],
  ["ACCELERATOR_POS_F", "percent", "Accelerator pedal position F"],
  ["THROTTLE_ACTUATOR", "percent", "Commanded throttle actuator"],
  ["RUN_TIME_MIL", "minute", "Time run with MIL on"],
  ["TIME_SINCE_DTC_CLEARED", "minute", "Time since trouble codes cleared"],
  ["ETHANOL_PERCENT", "percent", "Ethanol fuel percentage"],
  ["EVAP_VAPOR_PRESSURE_ABS", "kPa", "Absolute evap system vapor pressure"],
  ["EVAP_VAPOR_PRESSURE_ALT", "Pa", "Evap system vapor pressure"],
  ["SHORT_O2_TRIM_B1", "percent", "Short term secondary O2 trim, bank 1"],
  ["LONG_O2_TRIM_B1", "percent", "Long term secondary O2 trim, bank 1"],
  ["SHORT_O2_TRIM_B2", "percent", "Short term secondary O2 trim, bank 2"],
  ["LONG_O2_TRIM_B2", "percent", "Long term secondary O2 trim, bank 2"],
  ["FUEL_RAIL_PRESSURE_ABS", "kPa", "Fuel rail absolute pressure"],
  ["RELATIVE_ACCEL_POS", "percent", "Relative accelerator pedal position"],
  ["HYBRID_BATTERY_REMAINING", "percent", "Hybrid battery pack remaining life"],
  ["OIL_TEMP", "degC", "Engine oil temperature"],
  ["FUEL_INJECT_TIMING", "degree", "Fuel injection timing"],
  ["FUEL_RATE", "liters_per_hour", "Engine fuel rate"],
  ["ELM_VOLTAGE", "volt", "Adapter supply voltage (battery)"],
  ["ODOMETER", "km", "Odometer"],
  ["GPS_LAT", "degree", "GPS latitude"],
  ["GPS_LON", "degree", "GPS longitude"],
  ["GPS_ALT", "meter", "GPS altitude"],
  ["GPS_SPEED", "kph", "GPS speed"],
  ["GPS_BEARING", "degree", "GPS bearing"],
  ["GPS_ACCURACY", "meter", "GPS accuracy"],
];

export const PIDS: ReadonlyMap<string, PidInfo> = new Map(
  TABLE.map(([name, unit, description]) => [name, { name, unit, description }]),
);

/** The unit a PID's values are stored in (as the PID table names it; see units.ts to show it). */
export function storedUnit(pid: string): string | undefined {
  return PIDS.get(pid)?.unit;
}

/** Short human label: the description without the bank/sensor detail. */
export function pidLabel(pid: string): string {
  return GAUGES.find((g) => g.pid === pid)?.label ?? PIDS.get(pid)?.description ?? pid;
}

export interface GaugeSpec {
  readonly pid: string;
  readonly label: string;
  readonly min: number;
  readonly max: number;
  readonly decimals: number;
  /** Values at or past this are drawn in the warning colour. Ranges and warnings are in the
   * PID's stored unit; the gauge converts them with the value. */
  readonly warnAbove?: number;
  readonly warnBelow?: number;
}

// The live page's gauges, in display order. Battery voltage comes from the adapter (ELM_VOLTAGE)
// or, where the car reports it, the control module.
export const GAUGES: readonly GaugeSpec[] = [
  { pid: "RPM", label: "Engine speed", min: 0, max: 8000, decimals: 0, warnAbove: 6000 },
  { pid: "SPEED", label: "Speed", min: 0, max: 240, decimals: 0 },
  { pid: "COOLANT_TEMP", label: "Coolant", min: -40, max: 130, decimals: 0, warnAbove: 110 },
  { pid: "THROTTLE_POS", label: "Throttle", min: 0, max: 100, decimals: 0 },
  { pid: "ENGINE_LOAD", label: "Engine load", min: 0, max: 100, decimals: 0 },
  { pid: "FUEL_LEVEL", label: "Fuel level", min: 0, max: 100, decimals: 0, warnBelow: 10 },
  { pid: "ELM_VOLTAGE", label: "Battery", min: 10, max: 16, decimals: 1, warnBelow: 11.8 },
  {
    pid: "CONTROL_MODULE_VOLTAGE",
    label: "Module voltage",
    min: 10,
    max: 16,
    decimals: 1,
    warnBelow: 11.8,
  },
  { pid: "INTAKE_TEMP", label: "Intake air", min: -40, max: 80, decimals: 0 },
];

export function decimalsFor(pid: string): number {
  const gauge = GAUGES.find((g) => g.pid === pid);
  if (gauge) return gauge.decimals;
  const unit = PIDS.get(pid)?.unit;
  return unit === "volt" || unit === "ratio" ? 2 : 1;
}

/** A value as shown (already in the person's units); an infinite one (0 L/100 km in mpg) is ∞. */
export function formatValue(pid: string, value: number): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "–" : value > 0 ? "∞" : "−∞";
  return value.toLocaleString(undefined, {
    minimumFractionDigits: decimalsFor(pid),
    maximumFractionDigits: decimalsFor(pid),
  });
}
