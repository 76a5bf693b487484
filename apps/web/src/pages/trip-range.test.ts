import { describe, expect, it } from "vitest";
import { localDayStart, tripQuery, tripRange } from "./trip-range";

describe("trips date filter", () => {
  it("takes whole local days, the last one included", () => {
    const range = tripRange("2026-11-02", "2026-11-03");
    expect(range).toEqual({ from: new Date(2026, 10, 2).getTime(), to: new Date(2026, 10, 4).getTime() });
    expect(tripRange("2026-11-02", "2026-11-02")).toEqual({
      from: new Date(2026, 10, 2).getTime(),
      to: new Date(2026, 10, 3).getTime(),
    });
  });

  it("leaves an end open when its input is empty", () => {
    expect(tripRange("", "")).toEqual({ from: null, to: null });
    expect(tripRange("2026-02-28", "")).toEqual({ from: new Date(2026, 1, 28).getTime(), to: null });
    expect(tripRange("", "2026-12-31")).toEqual({ from: null, to: new Date(2027, 0, 1).getTime() });
  });

  it("says why it cannot use a range", () => {
    expect(tripRange("2026-11-05", "2026-11-04")).toMatch(/first day/);
    expect(tripRange("2026-02-30", "")).toMatch(/date picker/);
    expect(tripRange("yesterday", "")).toMatch(/date picker/);
    expect(localDayStart("2026-13-01")).toBeNull();
  });

  it("asks the API for the range a page at a time", () => {
    const query = tripQuery({ from: 1000, to: 5000 }, 20, "1000_7");
    expect(query.toString()).toBe("limit=20&from=1000&to=5000&cursor=1000_7");
    expect(tripQuery({ from: null, to: null }, 20, null).toString()).toBe("limit=20");
  });
});
