import { SignedOutError, get } from "../api/client";
import type { History, Sample } from "../api/types";
import { LiveChart, WINDOW_S } from "../charts/live-chart";
import { GAUGES, MARKER_PIDS } from "../pids";
import { THEME_EVENT } from "../theme";
import { h } from "../ui/dom";
import { errorBox, messageOf, toast } from "../ui/notify";
import { LiveStream, type StreamState } from "../live/stream";
import { Reading, gaugeSpec } from "../live/gauge";
import { type DisplayUnits, displayUnits } from "../units";
import type { Page, PageContext } from "../router";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

const SEED_WINDOW_MS = 10 * 60_000;
const TICK_MS = 250;
const MAX_CHARTED = 2;
const DEFAULT_CHARTED = ["RPM", "SPEED"];
export const FIRST_RENDER_MARK = "obd2:live-first-render";
export const FIRST_SAMPLE_MARK = "obd2:live-first-sample";

/**
 * The offset between the agent's clock (sample ts) and this browser's: the smallest
 * arrival − ts seen lately, i.e. clock difference plus the fastest delivery. Ages are measured
 * in the agent's clock so that a car whose clock is off does not look stale or fresh.
 */
class ClockSkew {
  private current = Number.POSITIVE_INFINITY;
  private previous = Number.POSITIVE_INFINITY;
  private windowStart = Date.now();

  observe(ts: number, arrival: number): void {
    if (arrival - this.windowStart > 30_000) {
      this.previous = this.current;
      this.current = Number.POSITIVE_INFINITY;
      this.windowStart = arrival;
    }
    this.current = Math.min(this.current, arrival - ts);
  }

  get offset(): number {
    const best = Math.min(this.current, this.previous);
    return Number.isFinite(best) ? best : 0;
  }
}

/** The stream's own state, shown only while it is not connected: the vehicle's state (live,
 * stale, offline, never seen) is the header's, from the server, as on every page. */
const STATE_TEXT: Record<StreamState, string> = {
  connecting: "Connecting…",
  live: "Connected",
  reconnecting: "Reconnecting…",
};
/** At most one extra read of the vehicle this often, when samples arrive while it is not live. */
const STATE_NUDGE_MS = 2_000;

export function livePage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "live");
  const readings = new Map<string, Reading>();
  const gaugeGrid = h("div", { class: "gauge-grid" });
  const tileGrid = h("div", { class: "tile-grid" });
  const waitingTitle = h("h2", null, "Waiting for data");
  const waitingText = h(
    "p",
    null,
    "Nothing from this vehicle in the last 10 minutes. Values appear here as soon as its Bridge Agent sends them.",
  );
  const waiting = h("div", { class: "card empty waiting" }, waitingTitle, waitingText);
  let vehicleLive = false;
  let lastNudge = 0;
  frame.onVehicle((vehicle) => {
    vehicleLive = vehicle.state === "live";
    if (vehicle.state === "never_seen") {
      waitingTitle.textContent = "No data yet";
      waitingText.textContent =
        "This vehicle has never sent data. Values appear here as soon as its Bridge Agent sends them.";
    }
  });
  const chartHost = h("div", { class: "chart-host" });
  const chartHint = h(
    "p",
    { class: "muted chart-hint" },
    "Press the chart button on a reading to plot it (two at most).",
  );
  const chartCard = h(
    "section",
    { class: "card chart-card", "aria-labelledby": "live-chart-title" },
    h("h2", { id: "live-chart-title" }, `Last ${WINDOW_S} seconds`),
    chartHint,
    chartHost,
  );
  const pillText = h("span", null, STATE_TEXT.connecting);
  const pill = h(
    "span",
    { class: "badge badge-warn connection" },
    h("span", { class: "dot", "aria-hidden": "true" }),
    pillText,
  );
  const pillDetail = h("span", { class: "visually-hidden" }, "");
  const connection = h("div", { class: "connection-state", role: "status", "aria-live": "polite" }, pill, pillDetail);
  pill.hidden = true; // until the stream tells its state
  frame.aside.append(connection);

  // Everything that shows a value waits for the person's units (one request, asked once).
  let stop = (): void => undefined;
  const run = (units: DisplayUnits): void => {
    const chart = new LiveChart(chartHost, units);
    const skew = new ClockSkew();
    let userPicked = false;
    let frameRequested = 0;
    let firstRender = false;
    let lastDrawn = 0;

    for (const spec of GAUGES) {
      const reading = new Reading(spec.pid, spec, units.pid(spec.pid));
      readings.set(spec.pid, reading);
      gaugeGrid.append(reading.el);
      reading.toggle.addEventListener("click", () => {
        toggleChart(spec.pid);
      });
    }

    const readingFor = (pid: string): Reading => {
      let reading = readings.get(pid);
      if (!reading) {
        reading = new Reading(pid, gaugeSpec(pid), units.pid(pid));
        readings.set(pid, reading);
        const tiles = [...tileGrid.children] as HTMLElement[];
        const after = tiles.find((t) => (t.dataset["pid"] ?? "") > pid);
        tileGrid.insertBefore(reading.el, after ?? null);
        reading.toggle.addEventListener("click", () => {
          toggleChart(pid);
        });
      }
      return reading;
    };

    const paintChartToggles = (): void => {
      for (const [pid, reading] of readings) {
        reading.setCharted(chart.charted.includes(pid), chart.colourOf(pid));
      }
      chartHint.hidden = chart.charted.length > 0;
    };

    const toggleChart = (pid: string): void => {
      userPicked = true;
      const current = [...chart.charted];
      const next = current.includes(pid) ? current.filter((p) => p !== pid) : [...current, pid].slice(-MAX_CHARTED);
      chart.show(next);
      paintChartToggles();
      requestPaint();
    };

    const autoChart = (): void => {
      if (userPicked) return;
      const available = DEFAULT_CHARTED.filter((pid) => readings.get(pid)?.hasValue);
      const fallback = [...readings.values()].filter((r) => r.hasValue).map((r) => r.pid);
      const wanted = (available.length > 0 ? available : fallback).slice(0, MAX_CHARTED);
      if (wanted.join() !== chart.charted.join()) {
        chart.show(wanted);
        paintChartToggles();
      }
    };

    const paint = (): void => {
      frameRequested = 0;
      let any = false;
      for (const reading of readings.values()) {
        if (reading.paint()) any = true;
      }
      if (any) {
        waiting.hidden = true;
        if (!firstRender) {
          firstRender = true;
          tick();
          performance.mark(FIRST_RENDER_MARK);
        }
        autoChart();
      }
      const now = Date.now();
      chart.draw(now - skew.offset, now - lastDrawn > TICK_MS);
      lastDrawn = now;
    };

    function requestPaint(): void {
      if (!frameRequested) frameRequested = requestAnimationFrame(paint);
    }

    function tick(): void {
      const now = Date.now() - skew.offset;
      for (const reading of readings.values()) reading.tick(now);
      requestPaint();
    }

    let sampled = false;
    const onSample = (sample: Sample): void => {
      if (!sampled) {
        sampled = true;
        performance.mark(FIRST_SAMPLE_MARK);
      }
      skew.observe(sample.ts, Date.now());
      // A sample while the header says stale, offline or never seen: ask the server again now
      // rather than at the next refresh (it decides whether the vehicle is live).
      if (!vehicleLive && Date.now() - lastNudge > STATE_NUDGE_MS) {
        lastNudge = Date.now();
        frame.refreshVehicle();
      }
      if (MARKER_PIDS.has(sample.pid)) return;
      readingFor(sample.pid).set(sample.value, sample.ts);
      chart.push(sample.pid, sample.ts, sample.value);
      requestPaint();
    };

    const stream = new LiveStream(`/api/v1/streams/vehicles/${id ?? 0}`, {
      sample: onSample,
      reset: () => {
        toast("Some live samples were missed while disconnected; History has all of them.", "info");
      },
      state: (state, detail) => {
        pill.hidden = state === "live";
        pill.className = `badge connection ${state === "live" ? "badge-ok" : "badge-warn"}`;
        pillText.textContent = STATE_TEXT[state];
        pill.title = detail;
        pillDetail.textContent = detail ? ` (${detail})` : "";
      },
    });

    // The last minutes from history, so the page is not empty until the next sample.
    const seed = async (vid: number): Promise<void> => {
      const to = Date.now() + 60_000;
      const from = to - SEED_WINDOW_MS - 60_000;
      const apply = (history: History): void => {
        const last = history.points[history.points.length - 1];
        if (!last) return;
        readingFor(history.pid).set(last[1], last[0]);
        for (const [ts, value] of history.points) chart.push(history.pid, ts, value);
        requestPaint();
      };
      await Promise.allSettled(
        GAUGES.map((spec) =>
          get<History>(`/api/v1/vehicles/${vid}/samples?pid=${spec.pid}&from=${from}&to=${to}&max_points=600`, {
            signal: ctx.signal,
          }).then(apply),
        ),
      );
    };

    const ticker = window.setInterval(tick, TICK_MS);
    const onTheme = (): void => {
      chart.rebuild();
      paintChartToggles();
    };
    window.addEventListener(THEME_EVENT, onTheme);

    if (id !== null) {
      stream.start();
      seed(id).catch(() => undefined);
    }
    frame.vehicle
      .then((vehicle) => {
        if (!vehicle) stream.stop();
      })
      .catch(() => undefined);
    stop = () => {
      stream.stop();
      window.clearInterval(ticker);
      window.removeEventListener(THEME_EVENT, onTheme);
      if (frameRequested) cancelAnimationFrame(frameRequested);
      chart.destroy();
    };
  };
  // And for the vehicle's PID catalogue: the unit each PID is stored in, its label.
  Promise.all([displayUnits(), frame.pids])
    .then(([units]) => {
      if (!ctx.signal.aborted) run(units);
    })
    .catch((error: unknown) => {
      if (ctx.signal.aborted || error instanceof SignedOutError) return;
      waiting.replaceChildren(errorBox(messageOf(error)));
    });

  frame.body.append(
    waiting,
    h("section", { "aria-label": "Gauges" }, gaugeGrid),
    h(
      "section",
      { class: "other-readings", "aria-labelledby": "other-readings-title" },
      h("h2", { id: "other-readings-title", class: "small-title" }, "Other readings"),
      tileGrid,
    ),
    chartCard,
  );

  return {
    title: "Live",
    el: frame.el,
    dispose: () => {
      stop();
    },
  };
}
