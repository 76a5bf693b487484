import { formatAge } from "../format";
import { GAUGES, formatValue, pidLabel, type GaugeSpec } from "../pids";
import { h, svg, uid } from "../ui/dom";
import type { Shown } from "../units";

export const STALE_MS = 5000;

// A 240° arc, open at the bottom, drawn with pathLength=100 so a dash length is a percentage.
const ARC = "M18.4 84 A48 48 0 1 1 101.6 84";
// The same sweep just outside it, where the warning zone (redline, hot, low voltage) is painted.
const ZONE_ARC = "M12.37 87.5 A55 55 0 1 1 107.63 87.5";
const CENTRE = 60;

/** A point at `fraction` of the dial's sweep (0: the low end, bottom left), `radius` from its
 * centre, in the dial's coordinates. */
export function dialPoint(fraction: number, radius: number): [number, number] {
  const angle = ((150 + 240 * Math.min(1, Math.max(0, fraction))) * Math.PI) / 180;
  return [CENTRE + radius * Math.cos(angle), CENTRE + radius * Math.sin(angle)];
}

export interface GaugeScale {
  min: number;
  max: number;
  warnAbove?: number;
  warnBelow?: number;
}

/** Where the warning zone lies on the dial, as fractions of its sweep; null without one. */
export function warningZone(scale: GaugeScale): { from: number; to: number } | null {
  const span = scale.max - scale.min;
  if (!(span > 0)) return null;
  const at = (v: number): number => Math.min(1, Math.max(0, (v - scale.min) / span));
  if (scale.warnAbove !== undefined) return { from: at(scale.warnAbove), to: 1 };
  if (scale.warnBelow !== undefined) return { from: 0, to: at(scale.warnBelow) };
  return null;
}

/** The scale's labels: both ends and the start of the warning zone, in the shown unit. */
export function scaleLabels(pid: string, scale: GaugeScale): { min: string; max: string; warn: string | null } {
  const label = (v: number): string => formatValue(pid, v);
  const warn = scale.warnAbove ?? scale.warnBelow;
  return { min: label(scale.min), max: label(scale.max), warn: warn === undefined ? null : label(warn) };
}

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
  private readonly scale: GaugeScale | null = null;

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
        {
          viewBox: "0 0 24 24",
          class: "icon",
          "aria-hidden": "true",
          fill: "none",
          stroke: "currentColor",
          "stroke-width": 2,
          "stroke-linecap": "round",
        },
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
    let scaleText = "";
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
      const zone = warningZone(this.scale);
      const labels = scaleLabels(pid, this.scale);
      const [minX, minY] = dialPoint(0, 48);
      const [maxX, maxY] = dialPoint(1, 48);
      const marks: SVGElement[] = [
        svg(
          "text",
          { x: minX, y: minY + 11, class: "gauge-scale", "text-anchor": "middle", "data-end": "min" },
          labels.min,
        ),
        svg(
          "text",
          { x: maxX, y: maxY + 11, class: "gauge-scale", "text-anchor": "middle", "data-end": "max" },
          labels.max,
        ),
      ];
      if (zone) {
        const length = (zone.to - zone.from) * 100;
        marks.unshift(
          svg("path", {
            d: ZONE_ARC,
            class: "gauge-zone",
            pathLength: 100,
            "stroke-dasharray": `0 ${(zone.from * 100).toFixed(2)} ${length.toFixed(2)} 200`,
          }),
        );
        // The threshold's figure inside the ring, where the zone begins (or ends, for a low one).
        const edge = this.scale.warnAbove !== undefined ? zone.from : zone.to;
        const [x, y] = dialPoint(edge, 34);
        marks.push(
          svg(
            "text",
            { x, y: y + 3, class: "gauge-scale gauge-threshold", "text-anchor": "middle" },
            labels.warn ?? "",
          ),
        );
      }
      const dial = svg(
        "svg",
        { class: "gauge-dial", viewBox: "0 0 120 96", "aria-hidden": "true" },
        svg("path", { d: ARC, class: "gauge-track", pathLength: 100 }),
        ...marks,
        this.arc,
      );
      const zoneText = zone
        ? `, warning ${this.scale.warnAbove !== undefined ? "above" : "below"} ${labels.warn ?? ""} ${unit}`
        : "";
      scaleText = `Scale ${labels.min} to ${labels.max} ${unit}${zoneText}`.replace(/\s+/g, " ").trim();
      this.el = h(
        "article",
        { class: "reading gauge", "aria-labelledby": labelId, "data-pid": pid, hidden: true },
        head,
        h("div", { class: "gauge-body" }, dial, number),
        h("span", { class: "visually-hidden gauge-scale-text" }, scaleText),
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
      const warn = (warnAbove !== undefined && value >= warnAbove) || (warnBelow !== undefined && value <= warnBelow);
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
