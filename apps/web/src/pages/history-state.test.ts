import { describe, expect, it } from "vitest";
import type { History } from "../api/types";
import { chartMeta, dataExtent, pan, parseState, resolveRange, selection, stateQuery, zoom } from "./history-state";

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

describe("what a chart says about its points", () => {
  const history = (bucket: number, counts: number[], times: number[]): History => ({
    pid: "RPM",
    source: "raw",
    bucket_ms: bucket,
    points: times.map((t) => [t, 1] as [number, number]),
    min: counts.map(() => 1),
    max: counts.map(() => 1),
    count: counts,
  });

  it("says every sample is drawn rather than 'points of 0 s'", () => {
    expect(chartMeta(history(0, [1, 1, 1], [1, 2, 3]))).toBe("3 samples, each one drawn");
    expect(chartMeta(history(200, [1, 1], [1, 2]))).toBe("2 samples, each one drawn");
  });

  it("names sub-second buckets in ms and longer ones in seconds", () => {
    expect(chartMeta(history(400, [3, 2], [1, 2]))).toBe("5 samples · 2 points, 400 ms each");
    expect(chartMeta(history(2000, [3, 2], [1, 2]))).toBe("5 samples · 2 points, 2 s each");
  });

  it("finds where the data is across charts", () => {
    expect(dataExtent([null, history(0, [1], [50]), history(0, [1, 1], [20, 40])])).toEqual({ from: 20, to: 50 });
    expect(dataExtent([null, history(0, [], [])])).toBeNull();
  });
});
