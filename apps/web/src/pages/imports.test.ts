import { describe, expect, it } from "vitest";
import type { ImportSummary } from "../api/types";
import { importUrl, summaryLines } from "./imports";

const summary: ImportSummary = {
  format: "torque-csv",
  samples_read: 1648,
  stored: 1600,
  duplicates: 48,
  skipped_rows: { "no readable time": 1 },
  skipped_values: { "RPM: not a number": 2 },
  unknown_columns: ["G(x)"],
  first_ts: 1749893400000,
  last_ts: 1749893580000,
  dry_run: false,
  seconds: 0.4,
};

describe("an import", () => {
  it("asks for the chosen format and a dry run only when chosen", () => {
    expect(importUrl(3, "", false)).toBe("/api/v1/vehicles/3/imports");
    expect(importUrl(3, "gpx", true)).toBe("/api/v1/vehicles/3/imports?format=gpx&dry_run=true");
  });

  it("says what was stored and every reason something was left out", () => {
    expect(summaryLines(summary)).toEqual([
      "1648 samples read: 1600 stored, 48 already stored before.",
      "1 row skipped: no readable time.",
      "2 values skipped: RPM: not a number.",
      "Columns left out: G(x).",
    ]);
    expect(
      summaryLines({ ...summary, dry_run: true, skipped_rows: {}, skipped_values: {}, unknown_columns: [] }),
    ).toEqual(["1648 samples read: 1648 would be stored (dry run: nothing was stored)."]);
  });
});
