import { describe, expect, it, vi } from "vitest";
import type { UnitTable } from "./api/types";
import { DisplayUnits, displayUnits, forgetUnits } from "./units";

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

describe("displayUnits", () => {
  it("comes with the PID catalogue, so a page's first paint shows every PID's unit", async () => {
    // The server is stubbed at fetch: what is tested is which answers the promise waits for.
    const answers: Record<string, unknown> = {
      "/api/v1/units": TABLE,
      "/api/v1/me/preferences": { units: "imperial_us" },
      "/api/v1/pids": [
        {
          name: "FREEZE_TEMP",
          display_name: "Freeze temp",
          short_name: null,
          unit: "deg",
          source: "obd",
          standard: true,
        },
      ],
    };
    const asked: string[] = [];
    vi.stubGlobal("fetch", async (path: string) => {
      asked.push(path);
      await new Promise((resolve) => setTimeout(resolve, path === "/api/v1/pids" ? 20 : 0));
      return new Response(JSON.stringify(answers[path]), {
        status: 200,
        headers: { "Content-Type": "application/json" },
      });
    });
    try {
      forgetUnits();
      const units = await displayUnits();
      expect(asked).toContain("/api/v1/pids");
      expect(units.pid("FREEZE_TEMP").unit).toBe("other deg");
      expect(units.pid("FREEZE_TEMP").value(5)).toBe(20);
    } finally {
      vi.unstubAllGlobals();
      forgetUnits();
    }
  });
});
