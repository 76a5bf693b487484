import { api, get } from "./api/client";
import type { Preferences, StoredUnit, UnitConversion, UnitSystem, UnitTable } from "./api/types";
import { loadPids, storedUnit } from "./pids";

// The server's unit table (GET /api/v1/units) is the only copy of the conversions: this module
// applies it, keyed by the unit a value is stored in, never by PID, so any PID converts.

/** Spellings differ in case and spaces ("L/100 km", "l/100km"), as the server reads them. */
function spelling(unit: string): string {
  return unit.replace(/\s+/g, "").toLowerCase();
}

/** How the values of one stored unit are shown. */
export class Shown {
  constructor(
    /** The unit shown ("mph", "°F", "" for a count). */
    readonly unit: string,
    private readonly conversion: UnitConversion | null,
  ) {}

  /** Fuel economy: a higher stored figure is a lower shown one (L/100 km against mpg). */
  get inverse(): boolean {
    return this.conversion?.inverse ?? false;
  }

  value(stored: number): number {
    const c = this.conversion;
    if (!c) return stored;
    if (c.inverse) return stored === 0 ? Number.POSITIVE_INFINITY : c.scale / stored;
    return stored * c.scale + c.offset;
  }

  /** A figure typed in the shown unit, as stored. */
  stored(shown: number): number {
    const c = this.conversion;
    if (!c) return shown;
    if (c.inverse) return shown === 0 ? Number.POSITIVE_INFINITY : c.scale / shown;
    return (shown - c.offset) / c.scale;
  }

  /** A stored range as shown, low end first (an inverse unit swaps the ends). */
  range(min: number, max: number): [number, number] {
    const a = this.value(min);
    const b = this.value(max);
    return a <= b ? [a, b] : [b, a];
  }
}

/** The unit system a person reads figures in, with the table that converts them. */
export class DisplayUnits {
  private readonly bySpelling = new Map<string, StoredUnit>();

  constructor(
    readonly table: UnitTable,
    readonly system: UnitSystem,
  ) {
    for (const unit of table.units) {
      for (const name of [unit.unit, ...unit.aliases]) {
        if (!this.bySpelling.has(spelling(name))) this.bySpelling.set(spelling(name), unit);
      }
    }
  }

  /** Values stored in `unit` as this system shows them; a unit the table lacks, as it is. */
  of(unit: string | null | undefined): Shown {
    const found = unit === null || unit === undefined ? undefined : this.bySpelling.get(spelling(unit));
    if (!found) return new Shown(unit ?? "", null);
    const conversion = found.systems[this.system] ?? null;
    return new Shown(conversion?.unit ?? found.unit, conversion);
  }

  /** A PID's values as this system shows them. */
  pid(pid: string): Shown {
    return this.of(storedUnit(pid));
  }

  label(system: UnitSystem): string {
    return this.table.systems.find((s) => s.id === system)?.label ?? system;
  }
}

let loading: Promise<DisplayUnits> | null = null;

/** The signed-in person's units; asked once per sign-in, shared by every page. */
export function displayUnits(): Promise<DisplayUnits> {
  if (!loading) {
    // `pid()` reads each PID's stored unit from the catalogue: a page that shows PID values
    // before another page has fetched it would show them without units (the trouble-codes
    // page opened straight from the overview did), so the catalogue comes with the units.
    const started = Promise.all([
      get<UnitTable>("/api/v1/units"),
      get<Preferences>("/api/v1/me/preferences"),
      loadPids(),
    ]).then(([table, preferences]) => new DisplayUnits(table, preferences.units));
    loading = started;
    started.catch(() => {
      // Asked again by the next page rather than failing for ever.
      if (loading === started) loading = null;
    });
  }
  return loading;
}

/** Saves the person's choice; every page drawn after it uses the new units. */
export async function chooseUnits(system: UnitSystem): Promise<DisplayUnits> {
  const { table } = await displayUnits();
  const saved = await api<Preferences>("PATCH", "/api/v1/me/preferences", { body: { units: system } });
  const next = new DisplayUnits(table, saved.units);
  loading = Promise.resolve(next);
  return next;
}

/** Another person may sign in next: their units are theirs. */
export function forgetUnits(): void {
  loading = null;
}
