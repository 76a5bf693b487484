import { describe, expect, it } from "vitest";
import { localFormat, timeAxisLabels } from "./time-axis";

// 7 Dec 2026, 12:36:00 UTC in epoch seconds
const T = Date.UTC(2026, 11, 7, 12, 36) / 1000;
const utc = {
  time: (d: Date): string =>
    `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`,
  day: (d: Date): string => `${d.getUTCDate()} Dec`,
};

describe("timeAxisLabels", () => {
  it("puts the date on a line of its own under the first tick only, never beside the time", () => {
    const labels = timeAxisLabels([T, T + 60, T + 120], utc);
    expect(labels).toEqual(["12:36\n7 Dec", "12:37", "12:38"]);
    // The first label's longest line is as wide as the others: nothing runs into the next one.
    const widest = (label: string): number => Math.max(...label.split("\n").map((line) => line.length));
    expect(widest(labels[0] ?? "")).toBe(widest(labels[1] ?? ""));
  });

  it("shows the date again where the day changes", () => {
    const night = Date.UTC(2026, 11, 7, 23, 0) / 1000;
    expect(timeAxisLabels([night, night + 1800, night + 3600, night + 5400], utc)).toEqual([
      "23:00\n7 Dec",
      "23:30",
      "00:00\n8 Dec",
      "00:30",
    ]);
  });

  it("shows days alone when ticks are a day or more apart", () => {
    expect(timeAxisLabels([T, T + 86_400, T + 2 * 86_400], utc)).toEqual(["7 Dec", "8 Dec", "9 Dec"]);
  });

  it("has no AM/PM glued to the date in a 12-hour locale", () => {
    const format = localFormat(false, "en-US");
    const labels = timeAxisLabels([T, T + 60], format);
    expect(labels[0]?.split("\n")).toHaveLength(2);
    expect(labels[1]).not.toContain("\n");
    expect(labels[0]?.split("\n")[0]).toMatch(/^\d{2}:\d{2}\s?(AM|PM)$/);
  });
});
