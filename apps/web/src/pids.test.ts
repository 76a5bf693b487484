import { describe, expect, it } from "vitest";
import { PIDS, decimalsFor, learnPids, pidLabel, unitSymbol } from "./pids";

describe("PID labels and units from the server's catalogue", () => {
  it("shows a PID by its name until the catalogue names it", () => {
    expect(pidLabel("TORQUE_FF1208")).toBe("TORQUE_FF1208");
    expect(unitSymbol("TORQUE_FF1208")).toBe("");
    learnPids([
      {
        name: "TORQUE_FF1208",
        display_name: "Trip average Litres/100 KM",
        short_name: "Trip LPK",
        unit: "liters_per_100km",
        source: "torque",
        standard: false,
      },
      { name: "TORQUE_221234", display_name: "ATF temp", short_name: null, unit: "kelvin-ish", source: "torque", standard: false },
      { name: "ELM_VOLTAGE", display_name: "Adapter supply voltage (battery)", short_name: null, unit: "volt", source: "agent", standard: true },
    ]);
    expect(pidLabel("TORQUE_FF1208")).toBe("Trip average Litres/100 KM");
    expect(unitSymbol("TORQUE_FF1208")).toBe("L/100 km");
    // A unit the page has no symbol for is shown as the server wrote it.
    expect(unitSymbol("TORQUE_221234")).toBe("kelvin-ish");
    // Gauges keep their own short labels.
    expect(pidLabel("ELM_VOLTAGE")).toBe("Battery");
    expect(decimalsFor("TORQUE_221234")).toBe(1);
    expect(PIDS.get("ELM_VOLTAGE")?.standard).toBe(true);
  });
});
