import { describe, expect, it } from "vitest";
import { PIDS, decimalsFor, learnPids, pidLabel, storedUnit } from "./pids";

describe("PID labels and units from the server's catalogue", () => {
  it("shows a PID by its name until the catalogue names it", () => {
    expect(pidLabel("TORQUE_FF1208")).toBe("TORQUE_FF1208");
    expect(storedUnit("TORQUE_FF1208")).toBeUndefined();
    learnPids([
      {
        name: "TORQUE_FF1208",
        display_name: "Trip average Litres/100 KM",
        short_name: "Trip LPK",
        unit: "liters_per_100km",
        source: "torque",
        standard: false,
      },
      {
        name: "TORQUE_221234",
        display_name: "ATF temp",
        short_name: null,
        unit: "kelvin-ish",
        source: "torque",
        standard: false,
      },
      {
        name: "ELM_VOLTAGE",
        display_name: "Adapter supply voltage (battery)",
        short_name: null,
        unit: "volt",
        source: "agent",
        standard: true,
      },
    ]);
    expect(pidLabel("TORQUE_FF1208")).toBe("Trip average Litres/100 KM");
    // The unit values are stored in, which the unit table shows in the person's units.
    expect(storedUnit("TORQUE_FF1208")).toBe("liters_per_100km");
    expect(storedUnit("TORQUE_221234")).toBe("kelvin-ish");
    // Gauges keep their own short labels.
    expect(pidLabel("ELM_VOLTAGE")).toBe("Battery");
    expect(decimalsFor("TORQUE_221234")).toBe(1);
    expect(PIDS.get("ELM_VOLTAGE")?.standard).toBe(true);
  });
});
