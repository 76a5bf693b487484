import { describe, expect, it } from "vitest";
import type { UnitTable } from "../api/types";
import { DisplayUnits } from "../units";
import { weekFacts, weekStart } from "./vehicle-week";

const table: UnitTable = {
  systems: [],
  units: [
    {
      unit: "km",
      aliases: [],
      systems: { imperial_us: { unit: "mi", scale: 1 / 1.609344, offset: 0, inverse: false } },
    },
    {
      unit: "L",
      aliases: [],
      systems: { imperial_us: { unit: "US gal", scale: 1 / 3.785411784, offset: 0, inverse: false } },
    },
  ],
} as unknown as UnitTable;

describe("the vehicle card's week", () => {
  it("starts on Monday at midnight", () => {
    const sunday = new Date(2026, 11, 13, 18, 30);
    expect(new Date(weekStart(sunday))).toEqual(new Date(2026, 11, 7));
    const monday = new Date(2026, 11, 7, 0, 0, 1);
    expect(new Date(weekStart(monday))).toEqual(new Date(2026, 11, 7));
  });

  it("shows distance and fuel in the person's units", () => {
    const totals = { from_ts: 0, to_ts: 1, trips: 3, distance_km: 160.9344, driving_s: 3900, fuel_used_l: 3.785411784 };
    expect(weekFacts(totals, new DisplayUnits(table, "imperial_us"))).toEqual([
      ["Trips", "3"],
      ["Distance", "100.0 mi"],
      ["Driving", "1 h 05 min"],
      ["Fuel", "1.0 US gal"],
    ]);
    expect(weekFacts({ ...totals, fuel_used_l: null }, new DisplayUnits(table, "metric"))[3]).toEqual(["Fuel", "–"]);
  });
});
