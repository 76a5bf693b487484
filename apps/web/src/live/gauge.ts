import { formatAge } from "../format";
import { GAUGES, formatValue, pidLabel, type GaugeSpec } from "../pids";
import { h, svg, uid } from "../ui/dom";
import type { Shown } from "../units";

export const STALE_MS = 5000;

// A 240° arc, open at the bottom, drawn with pathLength=100 so a dash length is a percentage.
const ARC = "M18.4 84 A48 48 0 1 1 101.6 84";

/** One PID's current value: a gauge (for the main PIDs) or a compact tile, in the person's units. */
export class Reading {
  readonly el: HTMLElement;
  readonly toggle: HTMLButtonElement;
  private readonly valueEl: HTMLElement;
  private readonly ageEl: HTMLElement;
  private readonly arc: SVGPathElement | null = null;
  private value: number | null = null;
  private ts = 0;
  private painted: number | null = null;
  private stale = false;
  // The gauge's scale and warning marks, converted once (a stored value is converted per paint).
  private readonly scale: { min: number; max: number; warnAbove?: number; warnBelow?: number } | null = null;

  constructor(
    readonly pid: string,
    readonly spec: GaugeSpec | undefined,
    private readonly shown: Shown,
  ) {
    const labelId = uid("reading");
    this.valueEl = h("span", { class: "reading-value" }, "–");
    this.ageEl = h("span", { class: "reading-age" }, "");
    this.toggle = h(
      "button",
      {
        type: "button",
        class: "chart-toggle",
        "aria-pressed": "false",
        "aria-label": `Show ${pidLabel(pid)} in the chart`,
        title: "Show in the chart",
      },
      svg(
        "svg",
        { viewBox: "0 0 24 24", class: "icon", "aria-hidden": "true", fill: "none", stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round" },
        svg("path", { d: "M3 17l5-5 4 3 8-8" }),
      ),
    );
    const unit = shown.unit;
    const number = h(
      "p",
      { class: "reading-number" },
      this.valueEl,
      unit ? h("span", { class: "reading-unit" }, unit) : null,
    );
    const head = h(
      "div",
      { class: "reading-head" },
      h("h3", { id: labelId, class: "reading-label" }, spec?.label ?? pidLabel(pid)),
      this.toggle,
    );
    if (spec) {
      const [min, max] = shown.range(spec.min, spec.max);
      // An inverse unit turns "warn above" into "warn below".
      const high = shown.inverse ? spec.warnBelow : spec.warnAbove;
      const low = shown.inverse ? spec.warnAbove : spec.warnBelow;
      this.scale = {
        min,
        max,
        ...(high === undefined ? {} : { warnAbove: shown.value(high) }),
        ...(low === undefined ? {} : { warnBelow: shown.value(low) }),
      };
      this.arc = svg("path", { d: ARC, class: "gauge-fill", pathLength: 100, "stroke-dasharray": "0 200" });
      const dial = svg(
        "svg",
        { class: "gauge-dial", viewBox: "0 0 120 96", "aria-hidden": "true" },
        svg("path", { d: ARC, class: "gauge-track", pathLength: 100 }),
        this.arc,
      );
      this.el = h(
        "article",
        { class: "reading gauge", "aria-labelledby": labelId, "data-pid": pid, hidden: true },
        head,
        h("div", { class: "gauge-body" }, dial, number),
        this.ageEl,
      );
    } else {
      this.el = h(
        "article",
        { class: "reading tile", "aria-labelledby": labelId, "data-pid": pid },
        head,
        number,
        this.ageEl,
      );
    }
  }

  get latestTs(): number {
    return this.ts;
  }

  get hasValue(): boolean {
    return this.value !== null;
  }

  set(value: number, ts: number): void {
    if (ts < this.ts) return;
    this.value = value;
    this.ts = ts;
  }

  /** Writes the newest value into the DOM if it changed; true when something was painted. */
  paint(): boolean {
    if (this.value === null || this.painted === this.value) return false;
    this.painted = this.value;
    this.el.hidden = false;
    const value = this.shown.value(this.value);
    this.valueEl.textContent = formatValue(this.pid, value);
    if (this.arc && this.scale) {
      const { min, max, warnAbove, warnBelow } = this.scale;
      const fraction = Math.min(1, Math.max(0, (value - min) / (max - min)));
      this.arc.setAttribute("stroke-dasharray", `${(fraction * 100).toFixed(2)} 200`);
      const warn =
        (warnAbove !== undefined && value >= warnAbove) ||
        (warnBelow !== undefined && value <= warnBelow);
      this.el.classList.toggle("warn", warn);
    }
    return true;
  }

  /** Age read-out and stale state; `now` is in the samples' clock. */
  tick(now: number): void {
    if (this.value === null) return;
    const age = now - this.ts;
    const stale = age > STALE_MS;
    if (stale !== this.stale) {
      this.stale = stale;
      this.el.classList.toggle("stale", stale);
    }
    this.ageEl.textContent = stale ? `stale · ${formatAge(age)} old` : `${formatAge(age)} old`;
  }

  setCharted(on: boolean, colour: string | null): void {
    this.toggle.setAttribute("aria-pressed", String(on));
    this.toggle.title = on ? "Shown in the chart" : "Show in the chart";
    this.el.classList.toggle("charted", on);
    this.el.style.setProperty("--series", colour ?? "transparent");
  }
}

export function gaugeSpec(pid: string): GaugeSpec | undefined {
  return GAUGES.find((g) => g.pid === pid);
}
