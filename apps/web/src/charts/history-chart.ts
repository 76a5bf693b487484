import uPlot from "uplot";
import type { History } from "../api/types";
import { formatValue } from "../pids";
import type { Shown } from "../units";
import { chartColours, pidColour, translucent } from "./palette";
import { TIME_AXIS_SPACE, timeAxisLabels } from "./time-axis";

export const SYNC_KEY = "obd2-history";

/** uPlot's columns for one PID's history in the shown unit; a null splits the line where the
 * car sent nothing. */
export function historyColumns(history: History, shown: Shown): uPlot.AlignedData {
  const x: number[] = [];
  const avg: Array<number | null> = [];
  const min: Array<number | null> = [];
  const max: Array<number | null> = [];
  const gap = Math.max(history.bucket_ms * 3, 5000);
  let previous: number | null = null;
  const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);
  history.points.forEach(([ts, value], i) => {
    if (previous !== null && ts - previous > gap) {
      x.push((previous + history.bucket_ms) / 1000);
      avg.push(null);
      min.push(null);
      max.push(null);
    }
    x.push(ts / 1000);
    avg.push(finite(shown.value(value)));
    // An inverse unit (mpg) turns the bucket's smallest reading into its largest.
    const [low, high] = shown.range(history.min[i] ?? value, history.max[i] ?? value);
    min.push(finite(low));
    max.push(finite(high));
    previous = ts;
  });
  return [x, avg, min, max];
}

/** Indices of the values with no value beside them: a line cannot show them, a dot must (a short
 * drive in a month's chart fills one bucket between gaps). */
export function isolatedPoints(values: ReadonlyArray<number | null>): number[] {
  const isolated: number[] = [];
  values.forEach((value, i) => {
    if (value === null) return;
    const before = i > 0 ? values[i - 1] : null;
    const after = i + 1 < values.length ? values[i + 1] : null;
    if ((before ?? null) === null && (after ?? null) === null) isolated.push(i);
  });
  return isolated;
}

export interface ChartMarker {
  /** Epoch ms. */
  ts: number;
  label: string;
}

export interface HistoryChartOptions {
  pid: string;
  /** How the PID's values are shown (the person's units). */
  shown: Shown;
  from: number;
  to: number;
  onSelect: (fromMs: number, toMs: number) => void;
  /** Instants drawn as dashed vertical lines (a trip's events). */
  markers?: readonly ChartMarker[];
}

/** Draws each marker in the range as a dashed line with its label at the top. */
function drawMarkers(u: uPlot, markers: readonly ChartMarker[], colour: string): void {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = window.devicePixelRatio || 1;
  ctx.setLineDash([4 * ctx.lineWidth, 3 * ctx.lineWidth]);
  ctx.font = `${11 * ctx.lineWidth}px sans-serif`;
  for (const marker of markers) {
    const x = u.valToPos(marker.ts / 1000, "x", true);
    if (x < bbox.left || x > bbox.left + bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.fillText(marker.label, x + 3 * ctx.lineWidth, bbox.top + 12 * ctx.lineWidth);
  }
  ctx.restore();
}

/** One PID: its average line and the min–max band, cursor synced with the page's other charts. */
export function historyChart(host: HTMLElement, history: History, options: HistoryChartOptions): uPlot {
  const colours = chartColours();
  const colour = pidColour(options.pid, colours);
  const fmt = (v: number | null): string =>
    v === null ? "–" : `${formatValue(options.pid, v)} ${options.shown.unit}`.trim();
  const axis = {
    stroke: colours.text,
    grid: { stroke: colours.grid, width: 1 },
    ticks: { stroke: colours.grid, width: 1 },
  };
  const width = Math.max(240, host.clientWidth);
  const columns = historyColumns(history, options.shown);
  const alone = isolatedPoints(columns[1] as Array<number | null>);
  return new uPlot(
    {
      width,
      height: width < 500 ? 190 : 240,
      series: [
        { value: "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" },
        {
          label: "average",
          stroke: colour,
          width: 2,
          points: { show: alone.length > 0, filter: alone, size: 5, fill: colour },
          value: (_u, v) => fmt(v),
        },
        {
          label: "min",
          stroke: translucent(colour, 0.45),
          width: 1,
          points: { show: false },
          value: (_u, v) => fmt(v),
        },
        {
          label: "max",
          stroke: translucent(colour, 0.45),
          width: 1,
          points: { show: false },
          value: (_u, v) => fmt(v),
        },
      ],
      bands: [{ series: [3, 2], fill: translucent(colour, 0.18) }],
      axes: [
        { ...axis, space: TIME_AXIS_SPACE, size: 56, values: (_u, splits) => timeAxisLabels(splits) },
        { ...axis, size: 60, values: (_u, splits) => splits.map((s) => formatValue(options.pid, s)) },
      ],
      scales: { x: { time: true, auto: false, range: () => [options.from / 1000, options.to / 1000] } },
      cursor: {
        sync: { key: SYNC_KEY },
        drag: { x: true, y: false, setScale: false },
        points: { size: 8 },
      },
      legend: { live: true },
      hooks: {
        draw: [
          (u) => {
            drawMarkers(u, options.markers ?? [], colours.text);
          },
        ],
        setSelect: [
          (u) => {
            if (u.select.width < 4) return;
            const a = u.posToVal(u.select.left, "x");
            const b = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            options.onSelect(a * 1000, b * 1000);
          },
        ],
      },
      padding: [8, 12, 0, 4],
    },
    columns,
    host,
  );
}
