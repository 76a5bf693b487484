import { describe, expect, it } from "vitest";
import { dialPoint, scaleLabels, warningZone } from "./gauge";

describe("gauge scale and warning zones", () => {
  it("puts the redline zone from its threshold to the top of the scale", () => {
    expect(warningZone({ min: 0, max: 8000, warnAbove: 6000 })).toEqual({ from: 0.75, to: 1 });
  });

  it("puts a low-voltage zone from the bottom of the scale to its threshold", () => {
    const zone = warningZone({ min: 10, max: 16, warnBelow: 11.8 });
    expect(zone?.from).toBe(0);
    expect(zone?.to).toBeCloseTo(0.3);
  });

  it("keeps the zone where it is when the scale is converted (°C to °F)", () => {
    const toF = (c: number): number => (c * 9) / 5 + 32;
    const celsius = warningZone({ min: -40, max: 130, warnAbove: 110 });
    const fahrenheit = warningZone({ min: toF(-40), max: toF(130), warnAbove: toF(110) });
    expect(fahrenheit?.from).toBeCloseTo(celsius?.from ?? -1);
  });

  it("has no zone for a gauge without a warning", () => {
    expect(warningZone({ min: 0, max: 240 })).toBeNull();
  });

  it("labels both ends of the scale and the threshold, in the shown unit", () => {
    expect(scaleLabels("SPEED", { min: 0, max: 149.1, warnAbove: 100 })).toEqual({ min: "0", max: "149", warn: "100" });
    expect(scaleLabels("SPEED", { min: 0, max: 240 }).warn).toBeNull();
  });

  it("places the ends of the dial at the bottom left and right, the middle at the top", () => {
    const [x0, y0] = dialPoint(0, 48);
    const [x1, y1] = dialPoint(1, 48);
    const [xm, ym] = dialPoint(0.5, 48);
    expect([x0, y0].map((v) => Math.round(v * 10) / 10)).toEqual([18.4, 84]);
    expect([x1, y1].map((v) => Math.round(v * 10) / 10)).toEqual([101.6, 84]);
    expect([Math.round(xm), Math.round(ym)]).toEqual([60, 12]);
  });
});
