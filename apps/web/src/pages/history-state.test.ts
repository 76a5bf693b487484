import { describe, expect, it } from "vitest";
import { pan, parseState, resolveRange, selection, stateQuery, zoom } from "./history-state";

describe("history URL state", () => {
  it("takes any PID name, a Torque one too", () => {
    expect(parseState(new URLSearchParams("pids=TORQUE_FF125D,RPM")).pids).toEqual(["TORQUE_FF125D", "RPM"]);
  });

  it("round-trips PIDs and a preset or a fixed range", () => {
    const preset = parseState(new URLSearchParams("pids=RPM,SPEED&range=6h"));
    expect(preset).toEqual({ pids: ["RPM", "SPEED"], range: { kind: "preset", key: "6h" } });
    expect(stateQuery(preset).toString()).toBe("pids=RPM%2CSPEED&range=6h");
    const fixed = parseState(new URLSearchParams("pids=COOLANT_TEMP&from=1000&to=5000"));
    expect(fixed.range).toEqual({ kind: "fixed", from: 1000, to: 5000 });
    expect(parseState(stateQuery(fixed))).toEqual(fixed);
  });

  it("falls back to defaults for what it cannot read", () => {
    expect(parseState(new URLSearchParams(""))).toEqual({
      pids: ["RPM", "SPEED"],
      range: { kind: "preset", key: "1h" },
    });
    const bad = parseState(new URLSearchParams("pids=RPM,no pe,RPM&from=9&to=3&range=2y"));
    expect(bad).toEqual({ pids: ["RPM"], range: { kind: "preset", key: "1h" } });
  });

  it("zooms, pans and selects without passing now", () => {
    const now = 10_000_000;
    expect(resolveRange({ kind: "preset", key: "15m" }, now)).toEqual({ from: now - 900_000, to: now });
    expect(zoom({ from: 0, to: 400_000 }, 0.5, now)).toEqual({ kind: "fixed", from: 100_000, to: 300_000 });
    expect(zoom({ from: now - 1000_000, to: now }, 2, now)).toEqual({
      kind: "fixed",
      from: now - 2_000_000,
      to: now,
    });
    expect(pan({ from: now - 1000, to: now }, 0.5, now)).toEqual({ kind: "fixed", from: now - 1000, to: now });
    expect(pan({ from: 2000_000, to: 3000_000 }, -0.5, now)).toEqual({
      kind: "fixed",
      from: 1500_000,
      to: 2500_000,
    });
    expect(selection(5000, 1000)).toBeNull();
    expect(selection(50_000, 10_000)).toEqual({ kind: "fixed", from: 10_000, to: 50_000 });
  });
});
