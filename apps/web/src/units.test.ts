import { describe, expect, it } from "vitest";
import type { UnitTable } from "./api/types";
import { DisplayUnits } from "./units";

// A made-up table: the mechanics are tested here, the real conversions on the server (which
// serves the one table the UI uses).
const TABLE: UnitTable = {
  systems: [
    { id: "metric", label: "Metric" },
    { id: "imperial_us", label: "Imperial US" },
    { id: "imperial_uk", label: "Imperial UK" },
  ],
  units: [
    {
      unit: "deg",
      quantity: "heat",
      aliases: ["heat_degrees"],
      systems: {
        imperial_us: { unit: "other deg", scale: 2, offset: 10, inverse: false },
        imperial_uk: { unit: "other deg", scale: 2, offset: 10, inverse: false },
      },
    },
    {
      unit: "per 100",
      quantity: "thirst",
      aliases: [],
      systems: { imperial_us: { unit: "per one", scale: 100, offset: 0, inverse: true } },
    },
    { unit: "rpm", quantity: "rotation", aliases: [], systems: {} },
  ],
};

describe("DisplayUnits", () => {
  it("converts by the stored unit, under any of its spellings", () => {
    const us = new DisplayUnits(TABLE, "imperial_us");
    expect(us.of("deg").unit).toBe("other deg");
    expect(us.of("deg").value(5)).toBe(20);
    expect(us.of("heat_degrees").value(5)).toBe(20);
    expect(us.of(" DEG ").unit).toBe("other deg");
    expect(us.of("deg").stored(20)).toBe(5);
    expect(new DisplayUnits(TABLE, "metric").of("deg").value(5)).toBe(5);
    expect(new DisplayUnits(TABLE, "metric").of("deg").unit).toBe("deg");
  });

  it("turns inverse units round, ranges included", () => {
    const us = new DisplayUnits(TABLE, "imperial_us");
    const thirst = us.of("per100");
    expect(thirst.inverse).toBe(true);
    expect(thirst.value(4)).toBe(25);
    expect(thirst.value(0)).toBe(Number.POSITIVE_INFINITY);
    expect(thirst.stored(25)).toBe(4);
    expect(thirst.range(4, 10)).toEqual([10, 25]);
    // A system the unit does not name shows it as stored.
    expect(new DisplayUnits(TABLE, "imperial_uk").of("per 100").value(4)).toBe(4);
  });

  it("shows a unit it does not know as it is", () => {
    const uk = new DisplayUnits(TABLE, "imperial_uk");
    expect(uk.of("widgets").unit).toBe("widgets");
    expect(uk.of("widgets").value(3)).toBe(3);
    expect(uk.of(undefined).unit).toBe("");
    expect(uk.of("rpm").range(0, 8000)).toEqual([0, 8000]);
  });
});
