import type { History } from "../api/types";
import { DURATIONS, formatDuration } from "../format";

export const PRESETS: ReadonlyArray<{ key: string; label: string; long: string; ms: number }> = [
  { key: "15m", label: "15m", long: "Last 15 minutes", ms: 15 * DURATIONS.MINUTE },
  { key: "1h", label: "1h", long: "Last hour", ms: DURATIONS.HOUR },
  { key: "6h", label: "6h", long: "Last 6 hours", ms: 6 * DURATIONS.HOUR },
  { key: "24h", label: "24h", long: "Last 24 hours", ms: DURATIONS.DAY },
  { key: "7d", label: "7d", long: "Last 7 days", ms: 7 * DURATIONS.DAY },
  { key: "30d", label: "30d", long: "Last 30 days", ms: 30 * DURATIONS.DAY },
];

export const DEFAULT_PRESET = "1h";
export const DEFAULT_PIDS = ["RPM", "SPEED"];
const MIN_SPAN_MS = 10 * DURATIONS.SECOND;
// The form of a PID name (the server's catalogue says which exist for a vehicle).
const PID_NAME = /^[A-Z0-9_]{1,64}$/;

export type Range = { kind: "preset"; key: string } | { kind: "fixed"; from: number; to: number };

export interface HistoryState {
  pids: string[];
  range: Range;
}

/** The state a URL query describes; anything unknown or malformed falls back to the defaults. */
export function parseState(query: URLSearchParams): HistoryState {
  const pids = (query.get("pids") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p, i, all) => PID_NAME.test(p) && all.indexOf(p) === i);
  const from = Number(query.get("from"));
  const to = Number(query.get("to"));
  let range: Range = { kind: "preset", key: DEFAULT_PRESET };
  const key = query.get("range");
  if (
    query.has("from") &&
    query.has("to") &&
    Number.isSafeInteger(from) &&
    Number.isSafeInteger(to) &&
    from >= 0 &&
    from < to
  ) {
    range = { kind: "fixed", from, to };
  } else if (key && PRESETS.some((p) => p.key === key)) {
    range = { kind: "preset", key };
  }
  return { pids: query.has("pids") ? pids : [...DEFAULT_PIDS], range };
}

export function stateQuery(state: HistoryState): URLSearchParams {
  const query = new URLSearchParams();
  query.set("pids", state.pids.join(","));
  if (state.range.kind === "preset") {
    query.set("range", state.range.key);
  } else {
    query.set("from", String(state.range.from));
    query.set("to", String(state.range.to));
  }
  return query;
}

/** Absolute [from, to) in epoch ms; a preset ends now. */
export function resolveRange(range: Range, now = Date.now()): { from: number; to: number } {
  if (range.kind === "fixed") return { from: range.from, to: range.to };
  const span = PRESETS.find((p) => p.key === range.key)?.ms ?? DURATIONS.HOUR;
  return { from: now - span, to: now };
}

/** The range zoomed around its middle by `factor` (< 1 zooms in). */
export function zoom(range: { from: number; to: number }, factor: number, now = Date.now()): Range {
  const span = Math.max(MIN_SPAN_MS, Math.round((range.to - range.from) * factor));
  const middle = (range.from + range.to) / 2;
  let to = Math.round(middle + span / 2);
  if (to > now) to = now;
  return { kind: "fixed", from: Math.max(0, to - span), to };
}

/** The range moved by `fraction` of its span (negative: earlier); never past now. */
export function pan(range: { from: number; to: number }, fraction: number, now = Date.now()): Range {
  const span = range.to - range.from;
  let to = Math.round(range.to + span * fraction);
  if (to > now) to = now;
  return { kind: "fixed", from: Math.max(0, to - span), to };
}

export function selection(from: number, to: number): Range | null {
  const a = Math.round(Math.min(from, to));
  const b = Math.round(Math.max(from, to));
  return b - a >= MIN_SPAN_MS ? { kind: "fixed", from: a, to: b } : null;
}

/** "1,234 samples · 600 points, 2 s each", or every sample when none were averaged. */
export function chartMeta(history: History): string {
  const samples = history.count.reduce((a, b) => a + b, 0);
  const points = history.points.length;
  const rollup = history.source === "rollup" ? " (minute rollups)" : "";
  if (history.bucket_ms <= 0 || samples === points) {
    return `${samples.toLocaleString()} samples, each one drawn${rollup}`;
  }
  const bucket =
    history.bucket_ms < 1000 ? `${history.bucket_ms} ms` : formatDuration(Math.round(history.bucket_ms / 1000) * 1000);
  return `${samples.toLocaleString()} samples · ${points.toLocaleString()} points, ${bucket} each${rollup}`;
}

/** First and last time any of the histories has a point; null when none has. */
export function dataExtent(histories: ReadonlyArray<History | null>): { from: number; to: number } | null {
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  for (const history of histories) {
    const first = history?.points[0];
    const last = history?.points[history.points.length - 1];
    if (first) from = Math.min(from, first[0]);
    if (last) to = Math.max(to, last[0]);
  }
  return Number.isFinite(from) && Number.isFinite(to) ? { from, to } : null;
}
