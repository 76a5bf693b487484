import { describe, expect, it } from "vitest";
import type { History } from "../api/types";
import { Shown } from "../units";
import { historyColumns, isolatedPoints } from "./history-chart";

describe("isolatedPoints", () => {
  it("finds the values a line cannot draw: no value on either side", () => {
    expect(isolatedPoints([1, null, 2, 3, null, 4])).toEqual([0, 5]);
    expect(isolatedPoints([null, 7, null])).toEqual([1]);
    expect(isolatedPoints([1, 2])).toEqual([]);
    expect(isolatedPoints([])).toEqual([]);
  });

  it("marks short drives in a month of history, whose buckets stand apart", () => {
    const hour = 3_600_000;
    const history: History = {
      pid: "SPEED",
      source: "rollup",
      bucket_ms: hour,
      points: [
        [0, 50],
        [24 * hour, 60],
        [25 * hour, 70],
        [48 * hour, 40],
      ],
      min: [40, 50, 60, 30],
      max: [60, 70, 80, 50],
      count: [100, 100, 100, 100],
    };
    const [, average] = historyColumns(history, new Shown("km/h", null));
    // Gaps become nulls; the first and last drives fill one bucket each.
    expect(average).toEqual([50, null, 60, 70, null, 40]);
    expect(isolatedPoints(average as Array<number | null>)).toEqual([0, 5]);
  });
});
