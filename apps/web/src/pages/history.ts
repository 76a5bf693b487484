import type uPlot from "uplot";
import { SignedOutError, get } from "../api/client";
import type { History, VehiclePid } from "../api/types";
import { historyChart } from "../charts/history-chart";
import { formatDuration, formatRange, fromLocalInput, toLocalInput } from "../format";
import { GAUGES, MARKER_PIDS, pidLabel } from "../pids";
import { THEME_EVENT } from "../theme";
import { h, uid } from "../ui/dom";
import { icon } from "../ui/icons";
import { errorBox, messageOf } from "../ui/notify";
import { type DisplayUnits, displayUnits } from "../units";
import type { Page, PageContext } from "../router";
import {
  PRESETS,
  chartMeta,
  dataExtent,
  pan,
  parseState,
  resolveRange,
  selection,
  stateQuery,
  zoom,
  type HistoryState,
  type Range,
} from "./history-state";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

const MAX_POINTS = 1000;
const MAX_PIDS = 6;
// Data covering less than this part of the range is pointed out (and can be zoomed to).
const SPARSE_FRACTION = 0.05;
const WIDE_SCREEN = "(min-width: 700px)";

export function historyPage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "history");
  let state: HistoryState = parseState(ctx.query);
  let resolved = resolveRange(state.range);
  let plots: uPlot[] = [];
  let lastResults: Array<{ pid: string; history: History | null; error: string | null }> = [];
  let loadController: AbortController | null = null;
  let units: DisplayUnits | null = null;

  // Range: presets, then a custom from/to.
  const presetButtons = PRESETS.map((preset) => {
    const button = h(
      "button",
      { type: "button", class: "segment", "data-range": preset.key, title: preset.long },
      preset.label,
    );
    button.addEventListener("click", () => {
      change({ ...state, range: { kind: "preset", key: preset.key } }, false);
    });
    return button;
  });
  const fromId = uid("from");
  const toId = uid("to");
  const fromInput = h("input", { id: fromId, type: "datetime-local", required: true });
  const toInput = h("input", { id: toId, type: "datetime-local", required: true });
  // A range being typed is the person's until they show it or pick another: the page's first
  // drawing (after the vehicle, its PIDs and the units load) must not write over it.
  let typing = false;
  for (const input of [fromInput, toInput]) input.addEventListener("input", () => (typing = true));
  const customMessage = h("div", { class: "form-message" });
  const customForm = h(
    "form",
    { class: "custom-range", novalidate: true },
    h("div", { class: "field" }, h("label", { for: fromId }, "From"), fromInput),
    h("div", { class: "field" }, h("label", { for: toId }, "To"), toInput),
    h("div", { class: "field field-submit" }, h("button", { type: "submit", class: "button" }, "Show range")),
    customMessage,
  );
  customForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const from = fromLocalInput(fromInput.value);
    const to = fromLocalInput(toInput.value);
    if (from === null || to === null) {
      customMessage.replaceChildren(errorBox("Enter both a start and an end."));
      return;
    }
    const range = selection(from, to);
    if (!range || from >= to) {
      customMessage.replaceChildren(errorBox("The start must be at least 10 seconds before the end."));
      return;
    }
    customMessage.replaceChildren();
    change({ ...state, range }, true);
  });

  // PIDs: the gauge ones as checkboxes, any other the vehicle has sent through a select.
  const pidBoxes = h("div", { class: "pid-choices" });
  const otherSelectId = uid("other-pid");
  const otherSelect = h("select", { id: otherSelectId }, h("option", { value: "" }, "Add another PID…"));
  const paintOtherPids = (pids: readonly VehiclePid[]): void => {
    const others = pids
      .filter((p) => p.first_seen_ts !== null && !MARKER_PIDS.has(p.name) && !GAUGES.some((g) => g.pid === p.name))
      .sort((a, b) => a.display_name.localeCompare(b.display_name));
    otherSelect.replaceChildren(
      h("option", { value: "" }, others.length ? "Add another PID…" : "No other PIDs sent yet"),
      ...others.map((p) => h("option", { value: p.name }, `${p.display_name} (${p.name})`)),
    );
  };
  otherSelect.addEventListener("change", () => {
    const pid = otherSelect.value;
    otherSelect.value = "";
    if (pid && !state.pids.includes(pid)) change({ ...state, pids: [...state.pids, pid].slice(-MAX_PIDS) }, false);
  });

  const paintPidChoices = (): void => {
    const shown = [...GAUGES.map((g) => g.pid), ...state.pids.filter((p) => !GAUGES.some((g) => g.pid === p))];
    pidBoxes.replaceChildren(
      ...shown.map((pid) => {
        const boxId = uid("pid");
        const box = h("input", { type: "checkbox", id: boxId, value: pid, checked: state.pids.includes(pid) });
        box.addEventListener("change", () => {
          const pids = box.checked ? [...state.pids, pid].slice(-MAX_PIDS) : state.pids.filter((p) => p !== pid);
          change({ ...state, pids }, false);
        });
        return h("label", { class: "chip", for: boxId }, box, h("span", null, pidLabel(pid)));
      }),
    );
  };

  // Navigation within the range, for keyboards as well as the drag-to-zoom of the charts.
  const zoomIn = h("button", { type: "button", class: "button small" }, "Zoom in");
  const zoomOut = h("button", { type: "button", class: "button small" }, "Zoom out");
  const earlier = h("button", { type: "button", class: "button small", "aria-label": "Earlier" }, "← Earlier");
  const later = h("button", { type: "button", class: "button small", "aria-label": "Later" }, "Later →");
  zoomIn.addEventListener("click", () => {
    change({ ...state, range: zoom(resolved, 0.5) }, true);
  });
  zoomOut.addEventListener("click", () => {
    change({ ...state, range: zoom(resolved, 2) }, true);
  });
  earlier.addEventListener("click", () => {
    change({ ...state, range: pan(resolved, -0.5) }, true);
  });
  later.addEventListener("click", () => {
    change({ ...state, range: pan(resolved, 0.5) }, true);
  });
  const csv = h("a", { class: "button small primary", download: "" }, icon("download"), "Download CSV");
  // The same samples a row each (ts, time, pid, value, unit), for tools that want them long.
  const csvLong = h("a", { class: "button small", download: "" }, icon("download"), "CSV, a row per sample");

  const summary = h("p", { class: "range-summary", "aria-live": "polite" });
  const extentNote = h("div", { class: "extent-note", "aria-live": "polite" });
  const charts = h("div", { class: "history-charts", "aria-busy": "true" });

  const controls = h(
    "section",
    { class: "card history-controls", "aria-label": "History settings" },
    h(
      "fieldset",
      null,
      h("legend", null, "Range"),
      h("div", { class: "segments", role: "group", "aria-label": "Range presets" }, presetButtons),
      customForm,
    ),
    h(
      "fieldset",
      null,
      h("legend", null, "PIDs"),
      pidBoxes,
      h(
        "div",
        { class: "field other-pid" },
        h("label", { for: otherSelectId, class: "visually-hidden" }, "Add another PID"),
        otherSelect,
      ),
    ),
  );
  const toolbar = h(
    "div",
    { class: "history-toolbar" },
    summary,
    h("div", { class: "toolbar-buttons" }, earlier, zoomOut, zoomIn, later, csv, csvLong),
  );

  // Back undoes a zoom, a pan or a typed range (one entry each); choosing a preset or the PIDs
  // changes the entry in place, so Back leaves the page rather than replaying every click.
  function change(next: HistoryState, push: boolean): void {
    typing = false;
    // Every chart reports the same drag (their cursors are synced): the same state twice is one
    // change, not two history entries.
    if (stateQuery(next).toString() === stateQuery(state).toString()) return;
    state = next;
    ctx.setQuery(stateQuery(state), { push });
    render();
  }

  const paintControls = (): void => {
    for (const button of presetButtons) {
      const on = state.range.kind === "preset" && state.range.key === button.dataset["range"];
      button.setAttribute("aria-pressed", String(on));
    }
    if (!typing) {
      fromInput.value = toLocalInput(resolved.from);
      toInput.value = toLocalInput(resolved.to);
    }
    paintPidChoices();
    later.disabled = state.range.kind === "preset";
    summary.textContent = `${formatRange(resolved.from, resolved.to)} (${formatDuration(
      Math.round((resolved.to - resolved.from) / 1000) * 1000,
    )})`;
    if (state.pids.length > 0 && id !== null) {
      csv.href = `/api/v1/vehicles/${id}/samples.csv?pid=${state.pids.join(",")}&from=${resolved.from}&to=${resolved.to}`;
      csvLong.href = `${csv.href}&layout=long`;
      csv.removeAttribute("aria-disabled");
      csvLong.removeAttribute("aria-disabled");
    } else {
      for (const link of [csv, csvLong]) {
        link.removeAttribute("href");
        link.setAttribute("aria-disabled", "true");
      }
    }
  };

  const destroyPlots = (): void => {
    for (const plot of plots) plot.destroy();
    plots = [];
  };

  const paintCharts = (): void => {
    destroyPlots();
    if (!units) return;
    const shownIn = units;
    charts.removeAttribute("aria-busy");
    if (state.pids.length === 0) {
      charts.replaceChildren(h("div", { class: "card empty" }, h("p", null, "Choose at least one PID to plot.")));
      return;
    }
    charts.replaceChildren();
    lastResults.forEach(({ pid, history, error }) => {
      const shown = shownIn.pid(pid);
      const titleId = uid("chart");
      const host = h("div", { class: "chart-host" });
      const meta = h("p", { class: "muted chart-meta" });
      const card = h(
        "section",
        { class: "card chart-card", "aria-labelledby": titleId, "data-pid": pid },
        h(
          "div",
          { class: "chart-head" },
          h(
            "h2",
            { id: titleId },
            `${pidLabel(pid)} `,
            h("span", { class: "muted chart-unit" }, shown.unit ? `(${shown.unit})` : ""),
          ),
          meta,
        ),
        host,
      );
      charts.append(card);
      if (error) {
        host.replaceChildren(errorBox(error));
        return;
      }
      if (!history || history.points.length === 0) {
        host.replaceChildren(h("p", { class: "empty-chart" }, `No samples of ${pidLabel(pid)} in this range.`));
        return;
      }
      meta.textContent = chartMeta(history);
      plots.push(
        historyChart(host, history, {
          pid,
          shown,
          from: resolved.from,
          to: resolved.to,
          onSelect: (a, b) => {
            const range = selection(a, b);
            if (range) change({ ...state, range }, true);
          },
        }),
      );
    });
  };

  // A long range with data in a small part of it (7 days, minutes of driving) draws a dot at
  // one edge: say where the data is and offer to zoom to it.
  const paintExtent = (): void => {
    const extent = dataExtent(lastResults.map((r) => r.history));
    const span = resolved.to - resolved.from;
    if (!extent || extent.to - extent.from > span * SPARSE_FRACTION) {
      extentNote.replaceChildren();
      return;
    }
    const pad = Math.max(30_000, Math.round((extent.to - extent.from) * 0.1));
    const zoomTo = h("button", { type: "button", class: "button small" }, "Zoom to the data");
    zoomTo.addEventListener("click", () => {
      const range = selection(extent.from - pad, Math.min(Date.now(), extent.to + pad));
      if (range) change({ ...state, range }, true);
    });
    extentNote.replaceChildren(
      h(
        "p",
        { class: "notice" },
        `This range has data only from ${formatRange(extent.from, extent.to)}: it is drawn at that spot, too small to read. `,
        zoomTo,
      ),
    );
  };

  const load = async (signal: AbortSignal): Promise<void> => {
    if (id === null) return;
    const width = charts.clientWidth || 800;
    const maxPoints = Math.min(MAX_POINTS, Math.max(100, Math.round(width / 2)));
    const { from, to } = resolved;
    lastResults = await Promise.all(
      state.pids.map(async (pid) => {
        try {
          const history = await get<History>(
            `/api/v1/vehicles/${id}/samples?pid=${pid}&from=${from}&to=${to}&max_points=${maxPoints}`,
            { signal },
          );
          return { pid, history, error: null };
        } catch (error) {
          if (signal.aborted) throw error;
          return { pid, history: null, error: messageOf(error) };
        }
      }),
    );
    if (!signal.aborted) {
      paintCharts();
      paintExtent();
    }
  };

  function render(): void {
    resolved = resolveRange(state.range);
    paintControls();
    loadController?.abort();
    const controller = new AbortController();
    loadController = controller;
    ctx.signal.addEventListener(
      "abort",
      () => {
        controller.abort();
      },
      { once: true },
    );
    charts.setAttribute("aria-busy", "true");
    load(controller.signal).catch(() => undefined);
  }

  const onTheme = (): void => {
    paintCharts();
  };
  window.addEventListener(THEME_EVENT, onTheme);
  let resizeTimer = 0;
  const onResize = (): void => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      for (const plot of plots) {
        const width = Math.max(240, plot.root.parentElement?.clientWidth ?? 240);
        plot.setSize({ width, height: width < 500 ? 190 : 240 });
      }
    }, 150);
  };
  window.addEventListener("resize", onResize);

  // On a phone the settings would fill two screens before the first chart: folded there, with
  // the range and PIDs in view in the toolbar below; open on wider screens.
  const fold = h(
    "details",
    { class: "history-fold", open: window.matchMedia(WIDE_SCREEN).matches },
    h("summary", { class: "button small" }, "Range and PIDs"),
    controls,
  );
  frame.body.append(fold, toolbar, extentNote, charts);
  // The charts are drawn in the person's units: both the vehicle (with its PIDs) and those are
  // needed first.
  Promise.all([frame.vehicle, displayUnits(), frame.pids])
    .then(([vehicle, loaded, pids]) => {
      units = loaded;
      if (!vehicle) return;
      paintOtherPids(pids);
      render();
    })
    .catch((error: unknown) => {
      if (ctx.signal.aborted || error instanceof SignedOutError) return;
      charts.removeAttribute("aria-busy");
      charts.replaceChildren(errorBox(messageOf(error)));
    });
  paintControls();

  return {
    title: "History",
    el: frame.el,
    dispose: () => {
      loadController?.abort();
      window.removeEventListener(THEME_EVENT, onTheme);
      window.removeEventListener("resize", onResize);
      window.clearTimeout(resizeTimer);
      destroyPlots();
    },
  };
}

export type { Range };
