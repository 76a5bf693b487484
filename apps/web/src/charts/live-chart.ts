import uPlot from "uplot";
import { formatValue, pidLabel } from "../pids";
import type { DisplayUnits } from "../units";
import { chartColours, pidColour } from "./palette";

export const WINDOW_S = 60;

// Longer than this without a sample, the line breaks instead of bridging the silence.
const GAP_S = 3;

interface Series {
  t: number[];
  v: Array<number | null>;
}

/** A rolling 60 s chart of up to two PIDs (one axis each) in the person's units, fed sample by
 * sample. */
export class LiveChart {
  private plot: uPlot | null = null;
  private pids: string[] = [];
  private readonly data = new Map<string, Series>();
  private readonly resizer: ResizeObserver;
  private dirty = false;
  private lastWidth = 0;

  constructor(
    private readonly host: HTMLElement,
    private readonly units: DisplayUnits,
  ) {
    this.resizer = new ResizeObserver(() => {
      this.resize();
    });
    this.resizer.observe(host);
  }

  /** Records a sample whatever is charted, so a PID switched on shows its last minute. */
  push(pid: string, tsMs: number, stored: number): void {
    const shown = this.units.pid(pid).value(stored);
    const value = Number.isFinite(shown) ? shown : null;
    let series = this.data.get(pid);
    if (!series) {
      series = { t: [], v: [] };
      this.data.set(pid, series);
    }
    const t = tsMs / 1000;
    const last = series.t[series.t.length - 1];
    if (last !== undefined && t < last) {
      // Out of order (a seed from history arriving after live samples): insert in place.
      let i = series.t.length - 1;
      while (i > 0 && (series.t[i - 1] ?? 0) > t) i--;
      series.t.splice(i, 0, t);
      series.v.splice(i, 0, value);
    } else {
      if (last !== undefined && t - last > GAP_S) {
        series.t.push(last + 0.001);
        series.v.push(null);
      }
      series.t.push(t);
      series.v.push(value);
    }
    if (this.pids.includes(pid)) this.dirty = true;
  }

  colourOf(pid: string): string | null {
    return this.pids.includes(pid) ? pidColour(pid) : null;
  }

  get charted(): readonly string[] {
    return this.pids;
  }

  show(pids: readonly string[]): void {
    this.pids = [...pids];
    this.rebuild();
  }

  rebuild(): void {
    this.plot?.destroy();
    this.plot = null;
    this.host.replaceChildren();
    if (this.pids.length === 0) return;
    const colours = chartColours();
    const width = Math.max(200, this.host.clientWidth);
    this.lastWidth = width;
    const axisBase = {
      stroke: colours.text,
      grid: { stroke: colours.grid, width: 1 },
      ticks: { stroke: colours.grid, width: 1 },
    };
    const series: uPlot.Series[] = [{}];
    const axes: uPlot.Axis[] = [
      {
        ...axisBase,
        // Grid lines every 10 s back from the window's end, so they stay put while data scrolls.
        splits: (u) => {
          const max = u.scales["x"]?.max ?? 0;
          return [60, 50, 40, 30, 20, 10, 0].map((back) => max - back);
        },
        values: (u, splits) =>
          splits.map((s) => {
            const back = Math.round(s - (u.scales["x"]?.max ?? s));
            return back === 0 ? "now" : `${back} s`;
          }),
      },
    ];
    this.pids.forEach((pid, i) => {
      const colour = pidColour(pid, colours);
      series.push({
        label: this.units.pid(pid).unit ? `${pidLabel(pid)} (${this.units.pid(pid).unit})` : pidLabel(pid),
        scale: pid,
        stroke: colour,
        width: 2,
        // Only explicit nulls (silences) break the line; the other PID's sample times do not.
        spanGaps: false,
        points: { show: false },
        // uPlot hands gaps in as null, though its types say number.
        value: (_u, v: number | null) => (v === null ? "–" : formatValue(pid, v)),
      });
      axes.push({
        ...axisBase,
        scale: pid,
        // uPlot's Axis.Side is an ambient const enum, which isolatedModules cannot name: 3 is
        // Left, 1 is Right.
        // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
        side: i === 0 ? 3 : 1,
        stroke: colour,
        grid: { show: i === 0, stroke: colours.grid, width: 1 },
        size: 56,
        values: (_u, splits) => splits.map((s) => formatValue(pid, s)),
      });
    });
    this.plot = new uPlot(
      {
        width,
        height: this.host.clientWidth < 500 ? 200 : 260,
        series,
        axes,
        scales: { x: { time: true, auto: false } },
        legend: { show: true, live: false },
        cursor: { show: false },
        padding: [12, 8, 0, 8],
      },
      this.aligned(),
      this.host,
    );
    this.dirty = true;
  }

  private aligned(): uPlot.AlignedData {
    const tables = this.pids.map((pid): uPlot.AlignedData => {
      const s = this.data.get(pid) ?? { t: [], v: [] };
      return [s.t, s.v];
    });
    if (tables.length === 1 && tables[0]) return tables[0];
    return uPlot.join(tables);
  }

  private trim(nowS: number): void {
    const oldest = nowS - WINDOW_S - 5;
    for (const series of this.data.values()) {
      let drop = 0;
      while (drop < series.t.length && (series.t[drop] ?? 0) < oldest) drop++;
      if (drop > 0) {
        series.t.splice(0, drop);
        series.v.splice(0, drop);
      }
    }
  }

  /** Redraws with the window ending at `nowMs`; `slide` redraws even without new samples. */
  draw(nowMs: number, slide: boolean): void {
    if (!this.plot || (!this.dirty && !slide)) return;
    const now = nowMs / 1000;
    this.trim(now);
    const plot = this.plot;
    plot.batch(() => {
      plot.setData(this.aligned(), false);
      plot.setScale("x", { min: now - WINDOW_S, max: now });
    });
    this.dirty = false;
  }

  private resize(): void {
    const width = this.host.clientWidth;
    if (!this.plot || Math.abs(width - this.lastWidth) < 2) return;
    this.lastWidth = width;
    this.plot.setSize({ width: Math.max(200, width), height: width < 500 ? 200 : 260 });
  }

  destroy(): void {
    this.resizer.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}
