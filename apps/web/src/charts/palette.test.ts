import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type ChartColours, pidColour, pidSeriesIndex } from "./palette";

const colours: ChartColours = { text: "#999", grid: "#333", series: ["#1", "#2", "#3", "#4", "#5", "#6"] };

describe("one colour per PID", () => {
  it("gives speed and RPM the same colour whatever the order a page charts them in", () => {
    // Live charts RPM then SPEED, History SPEED then RPM, Trips SPEED then RPM: a colour is
    // the PID's, never the chart's position.
    const live = ["RPM", "SPEED"].map((pid) => pidColour(pid, colours));
    const history = ["SPEED", "RPM"].map((pid) => pidColour(pid, colours));
    expect(live).toEqual([history[1], history[0]]);
    expect(pidColour("SPEED", colours)).not.toBe(pidColour("RPM", colours));
  });

  it("gives any other PID a colour from its name, the same each time", () => {
    expect(pidSeriesIndex("TORQUE_FF1005")).toBe(pidSeriesIndex("TORQUE_FF1005"));
    expect(pidSeriesIndex("TORQUE_FF1005")).toBeGreaterThanOrEqual(0);
    expect(pidSeriesIndex("TORQUE_FF1005")).toBeLessThan(6);
  });

  it("is the only way the charts of Live, History and Trips choose a colour", () => {
    // Every chart goes through pidColour: none indexes the series colours itself.
    const dir = join(__dirname);
    const charts = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && f !== "palette.ts");
    expect(charts).toEqual(expect.arrayContaining(["history-chart.ts", "live-chart.ts"]));
    for (const file of charts) {
      const source = readFileSync(join(dir, file), "utf8");
      expect(source, file).not.toMatch(/(colours|chartColours\(\))\.series\[/);
      expect(source, file).not.toMatch(/colourIndex/);
    }
    for (const page of ["history.ts", "trips.ts", "live.ts"]) {
      const source = readFileSync(join(dir, "..", "pages", page), "utf8");
      expect(source, page).not.toMatch(/colourIndex|(colours|chartColours\(\))\.series\[/);
    }
    const liveSource = readFileSync(join(dir, "live-chart.ts"), "utf8");
    const historySource = readFileSync(join(dir, "history-chart.ts"), "utf8");
    expect(liveSource).toMatch(/pidColour\(/);
    expect(historySource).toMatch(/pidColour\(/);
  });
});
