const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "0.4 s", "12 s", "3 min", "5 h", "2 d" */
export function formatAge(ms: number): string {
  const age = Math.max(0, ms);
  if (age < 10 * SECOND) return `${(age / SECOND).toFixed(1)} s`;
  if (age < MINUTE) return `${Math.round(age / SECOND)} s`;
  if (age < HOUR) return `${Math.round(age / MINUTE)} min`;
  if (age < DAY) return `${Math.round(age / HOUR)} h`;
  return `${Math.round(age / DAY)} d`;
}

/** "just now", "3 min ago", "never". */
export function formatAgo(iso: string | null, now = Date.now()): string {
  if (!iso) return "never";
  const age = now - Date.parse(iso);
  if (age < 5 * SECOND) return "just now";
  return `${formatAge(age)} ago`;
}

export function formatDateTime(value: string | number): string {
  const date = new Date(value);
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** "16:25:37": the time of day alone. */
export function formatTime(value: number): string {
  return new Date(value).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** "26 Nov 2026, 16:25:37 – 17:25:37", the date once when both ends share it. */
export function formatRange(from: number, to: number): string {
  const a = new Date(from);
  const b = new Date(to);
  const time = (d: Date): string =>
    d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const date = (d: Date): string =>
    d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
  if (a.toDateString() === b.toDateString()) return `${date(a)}, ${time(a)} – ${time(b)}`;
  return `${date(a)}, ${time(a)} – ${date(b)}, ${time(b)}`;
}

export function formatDuration(ms: number): string {
  if (ms % DAY === 0) return `${ms / DAY} d`;
  if (ms % HOUR === 0) return `${ms / HOUR} h`;
  if (ms % MINUTE === 0) return `${ms / MINUTE} min`;
  return `${Math.round(ms / SECOND)} s`;
}

/** Value for an <input type="datetime-local"> in the browser's zone. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` + `T${pad(d.getHours())}:${pad(d.getMinutes())}`
  );
}

export function fromLocalInput(value: string): number | null {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

export const DURATIONS = { SECOND, MINUTE, HOUR, DAY } as const;
