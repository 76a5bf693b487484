import { describe, expect, it } from "vitest";
import type { Trip, VehicleEvent } from "../api/types";
import { FUEL_SOURCES, eventTime, tripDuration } from "./trips";

const trip = { start_ts: Date.UTC(2026, 2, 14, 7, 42, 10) } as Trip;
const event = (offset: number): VehicleEvent => ({
  id: 1,
  ts: trip.start_ts + offset,
  kind: "notice",
  event_class: "org.prowl.torque.map.notices.TripNotice",
  message: "Trip started",
});

describe("a trip's timeline", () => {
  it("places events by their offset into the trip, before it too", () => {
    expect(eventTime(event(240_000), trip)).toMatch(/\(\+4 min\)$/);
    expect(eventTime(event(-250), trip)).toMatch(/\(−0 s\)$/);
    expect(tripDuration(3900)).toBe("1 h 05 min");
  });

  it("says where the fuel figure comes from", () => {
    expect(FUEL_SOURCES.TORQUE_FUEL_FLOW).toBe("Torque's fuel flow");
    expect(Object.keys(FUEL_SOURCES).sort()).toEqual(["FUEL_RATE", "MAF", "TORQUE_FUEL_FLOW"]);
  });
});
