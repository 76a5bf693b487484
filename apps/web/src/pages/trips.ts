import type uPlot from "uplot";
import { SignedOutError, get, send } from "../api/client";
import type { History, Trip, TripDetail, TripTrack, VehicleEvent } from "../api/types";
import { historyChart } from "../charts/history-chart";
import { formatDateTime, formatRange, formatTime } from "../format";
import { pidLabel } from "../pids";
import { THEME_EVENT } from "../theme";
import { h, uid } from "../ui/dom";
import { icon } from "../ui/icons";
import { act, errorBox, messageOf } from "../ui/notify";
import { type DisplayUnits, displayUnits } from "../units";
import type { Page, PageContext } from "../router";
import { type TripRange, tripDays, tripQuery, tripRange } from "./trip-range";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

const PAGE_SIZE = 20;
const CHART_PIDS = ["SPEED", "RPM"] as const;
const EVENT_MARGIN_MS = 60_000;

/** "1 h 05 min", "12 min", "40 s" */
export function tripDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** A trip figure, given in its stored unit, as the person reads it: "62.1 mi", "–" for none. */
function figure(units: DisplayUnits, value: number | null, storedUnit: string, digits: number): string {
  if (value === null) return "–";
  const shown = units.of(storedUnit);
  const converted = shown.value(value);
  return Number.isFinite(converted) ? `${converted.toFixed(digits)} ${shown.unit}` : "–";
}

/** Where a trip's fuel figure comes from, in words. */
export const FUEL_SOURCES: Readonly<Record<NonNullable<Trip["fuel_source"]>, string>> = {
  FUEL_RATE: "the engine's fuel rate",
  TORQUE_FUEL_FLOW: "Torque's fuel flow",
  MAF: "air flow and fuel type",
};

/** "12:03:40 (+4 min)": an event's time and its offset into the trip. */
export function eventTime(event: VehicleEvent, trip: Trip): string {
  const offset = event.ts - trip.start_ts;
  const sign = offset < 0 ? "−" : "+";
  return `${formatTime(event.ts)} (${sign}${tripDuration(Math.abs(offset) / 1000)})`;
}

function tripFacts(trip: Trip, units: DisplayUnits): HTMLElement {
  const fact = (term: string, value: string): HTMLElement => h("div", null, h("dt", null, term), h("dd", null, value));
  return h(
    "dl",
    { class: "facts" },
    fact(trip.in_progress ? "Duration so far" : "Duration", tripDuration(trip.duration_s)),
    fact("Distance", figure(units, trip.distance_km, "km", 1)),
    fact("Max speed", figure(units, trip.max_speed_kmh, "km/h", 0)),
    fact("Average speed", figure(units, trip.avg_speed_kmh, "km/h", 0)),
    fact("Fuel used", figure(units, trip.fuel_used_l, "L", 2)),
    fact("Economy", figure(units, trip.economy_l_per_100km, "L/100km", 1)),
    h(
      "div",
      { "data-fact": "fuel-source" },
      h("dt", null, "Fuel from"),
      h("dd", null, trip.fuel_source ? FUEL_SOURCES[trip.fuel_source] : "–"),
    ),
  );
}

function downloads(base: string, trip: Trip): HTMLElement {
  return h(
    "div",
    { class: "card-actions" },
    h("a", { class: "button small", href: `${base}/${trip.id}.csv`, download: "" }, icon("download"), "CSV"),
    h(
      "a",
      {
        class: "button small",
        href: `${base}/${trip.id}.csv?layout=long`,
        download: "",
        "aria-label": "CSV, a row per sample",
      },
      icon("download"),
      "CSV (long)",
    ),
    trip.track_points > 0
      ? h("a", { class: "button small", href: `${base}/${trip.id}.gpx`, download: "" }, icon("download"), "GPX track")
      : null,
  );
}

export function tripsPage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "trips");
  const list = h("ol", { class: "trip-list", "aria-busy": "true" });
  const message = h("div");
  const more = h("button", { type: "button", class: "button", hidden: true }, "Show older trips");
  let cursor: string | null = null;
  let range: TripRange = { from: null, to: null };
  // Each load belongs to one filter: a page that arrives after the filter changed is dropped.
  let generation = 0;
  const api = `/api/v1/vehicles/${id ?? 0}/trips`;

  const card = (trip: Trip, units: DisplayUnits): HTMLElement => {
    const titleId = uid("trip");
    return h(
      "li",
      { class: "card trip-card", "aria-labelledby": titleId, "data-trip": trip.id },
      h(
        "h2",
        { id: titleId },
        h("a", { href: `/vehicles/${id ?? 0}/trips/${trip.id}` }, formatDateTime(trip.start_ts)),
        trip.in_progress ? h("span", { class: "badge badge-ok in-progress" }, "In progress") : null,
      ),
      tripFacts(trip, units),
      downloads(api, trip),
    );
  };

  const load = async (): Promise<void> => {
    const mine = generation;
    const query = tripQuery(range, PAGE_SIZE, cursor);
    const [response, units] = await Promise.all([
      send("GET", `${api}?${query.toString()}`, { signal: ctx.signal }),
      displayUnits(),
    ]);
    const trips = (await response.json()) as Trip[];
    if (mine !== generation) return;
    cursor = response.headers.get("X-Next-Cursor");
    list.removeAttribute("aria-busy");
    if (trips.length === 0 && list.childElementCount === 0) {
      const filtered = range.from !== null || range.to !== null;
      list.append(
        h(
          "li",
          { class: "card empty" },
          filtered
            ? "No trips started on these days."
            : "No trips yet: they appear once the car has been driven with the Bridge Agent.",
        ),
      );
    }
    list.append(...trips.map((trip) => card(trip, units)));
    more.hidden = cursor === null;
  };

  // The date filter: trips that started on the days from one date to the other, both included.
  const fromId = uid("trips-from");
  const toId = uid("trips-to");
  const fromInput = h("input", { id: fromId, type: "date" });
  const toInput = h("input", { id: toId, type: "date" });
  const filterMessage = h("div", { class: "form-message" });
  const clearFilter = h("button", { type: "button", class: "button", hidden: true }, "All dates");
  const filterForm = h(
    "form",
    { class: "custom-range trip-filter", novalidate: true, "aria-label": "Trips by date" },
    h("div", { class: "field" }, h("label", { for: fromId }, "From"), fromInput),
    h("div", { class: "field" }, h("label", { for: toId }, "To"), toInput),
    h(
      "div",
      { class: "field field-submit" },
      h("button", { type: "submit", class: "button" }, "Show trips"),
      clearFilter,
    ),
    filterMessage,
  );
  const reload = (next: TripRange): void => {
    range = next;
    // In the address, so that Back returns to the dates before and a link shows the same trips.
    const query = new URLSearchParams();
    if (fromInput.value && next.from !== null) query.set("from", fromInput.value);
    if (toInput.value && next.to !== null) query.set("to", toInput.value);
    if (query.toString() !== new URLSearchParams(location.search).toString()) ctx.setQuery(query, { push: true });
    cursor = null;
    generation += 1;
    clearFilter.hidden = next.from === null && next.to === null;
    list.setAttribute("aria-busy", "true");
    list.replaceChildren();
    more.hidden = true;
    message.replaceChildren();
    load().catch(failed);
  };
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = tripRange(fromInput.value, toInput.value);
    if (typeof next === "string") {
      filterMessage.replaceChildren(errorBox(next));
      return;
    }
    filterMessage.replaceChildren();
    reload(next);
  });
  clearFilter.addEventListener("click", () => {
    fromInput.value = "";
    toInput.value = "";
    filterMessage.replaceChildren();
    reload({ from: null, to: null });
  });
  // The dates the address asks for (Back and Forward rebuild the page from it).
  const asked = tripDays(ctx.query.get("from") ?? "", ctx.query.get("to") ?? "");
  if (asked) {
    fromInput.value = asked.fromDate;
    toInput.value = asked.toDate;
    range = asked.range;
    clearFilter.hidden = range.from === null && range.to === null;
  }
  const failed = (error: unknown): void => {
    if (ctx.signal.aborted || error instanceof SignedOutError) return;
    list.removeAttribute("aria-busy");
    message.replaceChildren(errorBox(messageOf(error)));
  };

  more.addEventListener(
    "click",
    act(async () => {
      await load().catch(failed);
    }),
  );
  frame.body.append(
    h(
      "div",
      { class: "page-tools" },
      h("p", { class: "muted" }, "Drives the server recognised from the car's samples, newest first."),
    ),
    h("section", { class: "card" }, filterForm),
    message,
    list,
    h("div", { class: "card-actions" }, more),
  );
  frame.vehicle
    .then((vehicle) => {
      if (vehicle) load().catch(failed);
    })
    .catch(() => undefined);
  return { title: "Trips", el: frame.el };
}

export function tripPage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "trips");
  const tripId = /^[1-9][0-9]{0,15}$/.test(ctx.params["trip"] ?? "") ? Number(ctx.params["trip"]) : null;
  const api = `/api/v1/vehicles/${id ?? 0}/trips`;
  const headingId = uid("trip-title");
  const heading = h("h2", { id: headingId }, "Trip");
  const summary = h("div", { "aria-busy": "true" });
  const charts = h("div", { class: "charts" });
  const timelineId = uid("timeline");
  const timeline = h("ol", { class: "timeline" });
  const timelineCard = h(
    "section",
    { class: "card", "aria-labelledby": timelineId, hidden: true },
    h("h3", { id: timelineId }, "Timeline"),
    timeline,
  );
  const mapId = uid("map");
  const mapHost = h("div", { class: "trip-map", role: "region", "aria-label": "Map of the trip's track" });
  const mapCard = h(
    "section",
    { class: "card map-card", "aria-labelledby": mapId, hidden: true },
    h("h3", { id: mapId }, "Route"),
    mapHost,
  );
  let map: { remove: () => void } | null = null;
  let plots: uPlot[] = [];
  let shown: { trip: TripDetail; units: DisplayUnits } | null = null;
  let events: VehicleEvent[] = [];

  const paintCharts = (): void => {
    for (const plot of plots) plot.destroy();
    plots = [];
    charts.replaceChildren();
    if (!shown) return;
    const { trip, units } = shown;
    CHART_PIDS.forEach((pid) => {
      const points = trip.charts.series[pid] ?? [];
      const titleId = uid("chart");
      const host = h("div", { class: "chart-host" });
      const unit = units.pid(pid).unit;
      charts.append(
        h(
          "section",
          { class: "card chart-card", "aria-labelledby": titleId, "data-pid": pid },
          h(
            "div",
            { class: "chart-head" },
            h(
              "h3",
              { id: titleId },
              `${pidLabel(pid)} `,
              h("span", { class: "muted chart-unit" }, unit ? `(${unit})` : ""),
            ),
          ),
          host,
        ),
      );
      if (points.length === 0) {
        host.replaceChildren(h("p", { class: "empty-chart" }, `No samples of ${pidLabel(pid)} in this trip.`));
        return;
      }
      const history: History = {
        pid,
        source: "rollup",
        bucket_ms: trip.charts.bucket_ms,
        points,
        min: [],
        max: [],
        count: [],
      };
      const markers = events.map((event) => ({ ts: event.ts, label: event.message }));
      plots.push(
        historyChart(host, history, {
          pid,
          shown: units.pid(pid),
          from: trip.start_ts,
          to: trip.end_ts,
          onSelect: () => undefined,
          markers,
        }),
      );
    });
  };

  const load = async (): Promise<void> => {
    if (tripId === null) {
      summary.removeAttribute("aria-busy");
      summary.replaceChildren(errorBox("There is no trip at this address."));
      return;
    }
    const [trip, units] = await Promise.all([
      get<TripDetail>(`${api}/${tripId}`, { signal: ctx.signal }),
      displayUnits(),
    ]);
    // What the devices told during the trip, and in the minute around it (Torque's "Trip
    // started" comes just before the first sample).
    const window = `from=${trip.start_ts - EVENT_MARGIN_MS}&to=${trip.end_ts + EVENT_MARGIN_MS}`;
    events = await get<VehicleEvent[]>(`/api/v1/vehicles/${id ?? 0}/events?${window}`, { signal: ctx.signal }).catch(
      (error: unknown) => {
        if (ctx.signal.aborted || error instanceof SignedOutError) throw error;
        return [];
      },
    );
    timelineCard.hidden = events.length === 0;
    timeline.replaceChildren(
      ...events.map((event) =>
        h(
          "li",
          { "data-event": event.kind, title: event.event_class || null },
          h("span", { class: "muted" }, eventTime(event, trip)),
          " ",
          event.message,
        ),
      ),
    );
    shown = { trip, units };
    // Being driven now (its vehicle is live): the end is not known yet, end_ts is only its
    // newest sample so far.
    heading.replaceChildren(
      ...(trip.in_progress
        ? [
            `Trip since ${formatDateTime(trip.start_ts)}`,
            " ",
            h("span", { class: "badge badge-ok in-progress", "data-state": "in-progress" }, "In progress"),
          ]
        : [`Trip of ${formatRange(trip.start_ts, trip.end_ts)}`]),
    );
    summary.removeAttribute("aria-busy");
    summary.replaceChildren(tripFacts(trip, units), downloads(api, trip));
    paintCharts();
    if (trip.track_points > 0) await drawMap(trip);
  };

  const drawMap = async (trip: Trip): Promise<void> => {
    // Leaflet is loaded with the first map, not with every page.
    const { mapTiles, tripMap } = await import("../map/trip-map");
    const [track, tiles] = await Promise.all([
      get<TripTrack>(`${api}/${trip.id}/track`, { signal: ctx.signal }),
      mapTiles(ctx.signal),
    ]);
    if (ctx.signal.aborted || track.points.length === 0) return;
    mapCard.hidden = false;
    map?.remove();
    map = tripMap(mapHost, track.points, tiles);
  };

  const onTheme = (): void => {
    paintCharts();
  };
  window.addEventListener(THEME_EVENT, onTheme);
  frame.body.append(
    h("p", null, h("a", { href: `/vehicles/${id ?? 0}/trips` }, "← All trips")),
    h("section", { class: "card", "aria-labelledby": headingId }, heading, summary),
    mapCard,
    timelineCard,
    charts,
  );
  frame.vehicle
    .then((vehicle) => {
      if (!vehicle) return;
      load().catch((error: unknown) => {
        if (ctx.signal.aborted || error instanceof SignedOutError) return;
        summary.removeAttribute("aria-busy");
        summary.replaceChildren(errorBox(messageOf(error)));
      });
    })
    .catch(() => undefined);
  return {
    title: "Trip",
    el: frame.el,
    dispose: () => {
      window.removeEventListener(THEME_EVENT, onTheme);
      for (const plot of plots) plot.destroy();
      map?.remove();
    },
  };
}
