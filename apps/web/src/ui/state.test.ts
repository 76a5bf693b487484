import { describe, expect, it } from "vitest";
import { DEVICE_STATE_TEXT, VEHICLE_STATE_TEXT, sinceText } from "./state";

describe("the one state model's words", () => {
  it("names every state the server returns, each with words of its own", () => {
    expect(Object.keys(VEHICLE_STATE_TEXT).sort()).toEqual(["live", "never_seen", "offline", "stale"]);
    expect(Object.keys(DEVICE_STATE_TEXT).sort()).toEqual([
      "adapter_disconnected",
      "connected",
      "engine_off",
      "revoked",
      "silent",
    ]);
    const words = [...Object.values(VEHICLE_STATE_TEXT), ...Object.values(DEVICE_STATE_TEXT)];
    expect(new Set(words).size).toBe(words.length);
  });

  it("says since when: the time of day today, the date before", () => {
    // In this machine's own time zone, as the page shows them.
    const now = new Date(2026, 11, 8, 15, 0, 0).getTime();
    const today = sinceText(new Date(2026, 11, 8, 14, 3, 12).toISOString(), now);
    const earlier = sinceText(new Date(2026, 11, 6, 9, 12, 40).toISOString(), now);
    expect(today).toMatch(/^since \d{1,2}:\d{2}:\d{2}/);
    expect(earlier).toMatch(/^since .*2026/);
    expect(sinceText(null, now)).toBe("");
  });
});
