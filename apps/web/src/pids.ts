import { get } from "./api/client";
import type { PidEntry, VehiclePid } from "./api/types";

// Names, labels and units come from the server's PID catalogue (GET /api/v1/pids and
// /api/v1/vehicles/{id}/pids), and conversions from its unit table (units.ts): this module
// keeps only how PIDs are shown (gauge ranges and labels, decimals).
export interface PidInfo {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
  readonly shortName: string | null;
  /** A name of the PID table (alert rules take these). */
  readonly standard: boolean;
}

const known = new Map<string, PidInfo>();

/** Every PID the server has told this page of, by name. */
export const PIDS: ReadonlyMap<string, PidInfo> = known;

export function learnPids(entries: readonly PidEntry[]): void {
  for (const entry of entries) {
    known.set(entry.name, {
      name: entry.name,
      unit: entry.unit,
      description: entry.display_name,
      shortName: entry.short_name,
      standard: entry.standard,
    });
  }
}

let builtins: Promise<void> | null = null;

/** The server's own names (the PID table, Torque's ids), fetched once per page load. */
export function loadPids(signal?: AbortSignal): Promise<void> {
  if (!builtins) {
    builtins = get<PidEntry[]>("/api/v1/pids", signal ? { signal } : {}).then(learnPids);
    builtins.catch(() => {
      builtins = null; // asked again next time
    });
  }
  return builtins;
}

/** The PIDs one vehicle has sent, learnt with the server's own names. */
export async function loadVehiclePids(vehicleId: number, signal?: AbortSignal): Promise<VehiclePid[]> {
  const options = signal ? { signal } : {};
  const [, pids] = await Promise.all([
    loadPids(signal),
    get<VehiclePid[]>(`/api/v1/vehicles/${vehicleId}/pids`, options),
  ]);
  learnPids(pids);
  return pids;
}

/** Stored like PIDs but no readings to show: Torque's session marker (a hint for trips). */
export const MARKER_PIDS: ReadonlySet<string> = new Set(["TORQUE_SESSION"]);

/** The unit a PID's values are stored in, as the catalogue names it (units.ts shows it). */
export function storedUnit(pid: string): string | undefined {
  return PIDS.get(pid)?.unit;
}

/** Short human label: the gauge's, else the catalogue's name, else the PID's own name. */
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
