import { SignedOutError, get } from "../api/client";
import type { TripTotals } from "../api/types";
import { h } from "../ui/dom";
import { type DisplayUnits, displayUnits } from "../units";
import { tripDuration } from "./trips";

// The vehicle card's week: what its trips since Monday add up to, in the person's units.
const REFRESH_MS = 60_000;

/** Monday 00:00 of the week `now` falls in, in the browser's zone (epoch ms). */
export function weekStart(now: Date): number {
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const sinceMonday = (start.getDay() + 6) % 7;
  start.setDate(start.getDate() - sinceMonday);
  return start.getTime();
}

/** The week's figures as the card shows them: [term, value] pairs. */
export function weekFacts(totals: TripTotals, units: DisplayUnits): Array<[string, string]> {
  const distance = units.of("km");
  const fuel = units.of("L");
  const litres = totals.fuel_used_l;
  return [
    ["Trips", String(totals.trips)],
    ["Distance", `${distance.value(totals.distance_km).toFixed(1)} ${distance.unit}`],
    ["Driving", tripDuration(totals.driving_s)],
    ["Fuel", litres === null ? "–" : `${fuel.value(litres).toFixed(1)} ${fuel.unit}`],
  ];
}

/** One element per vehicle, kept across the list's repaints and refreshed at most once a
 * minute, so the list's 10-second refresh does not ask the server each time. */
export function vehicleWeeks(signal: AbortSignal): (vehicleId: number) => HTMLElement {
  const shown = new Map<number, { el: HTMLElement; asked: number }>();
  const fill = (vehicleId: number, el: HTMLElement): void => {
    const to = Date.now() + 60_000;
    const from = weekStart(new Date());
    Promise.all([
      get<TripTotals>(`/api/v1/vehicles/${vehicleId}/trips/totals?from=${from}&to=${to}`, { signal }),
      displayUnits(),
    ])
      .then(([totals, units]) => {
        el.replaceChildren(
          h("h3", { class: "small-title" }, "This week"),
          h(
            "dl",
            { class: "facts week-facts" },
            ...weekFacts(totals, units).map(([term, value]) =>
              h("div", { "data-week": term.toLowerCase() }, h("dt", null, term), h("dd", null, value)),
            ),
          ),
        );
        el.removeAttribute("aria-busy");
      })
      .catch((error: unknown) => {
        if (signal.aborted || error instanceof SignedOutError) return;
        el.removeAttribute("aria-busy");
        el.replaceChildren(h("p", { class: "muted" }, "This week's trips could not be read."));
      });
  };
  return (vehicleId) => {
    let entry = shown.get(vehicleId);
    if (!entry) {
      entry = { el: h("section", { class: "vehicle-week", "aria-busy": "true", "aria-label": "This week" }), asked: 0 };
      shown.set(vehicleId, entry);
    }
    if (Date.now() - entry.asked >= REFRESH_MS) {
      entry.asked = Date.now();
      fill(vehicleId, entry.el);
    }
    return entry.el;
  };
}
