// Labels for a chart's time axis that never run into each other: the time of day on one line,
// the date on a second line only under the first tick and where the day changes, so the first
// label is no wider than the others ("12/7/26 12:36p12:37pm" was two labels run together).

const MINUTE_S = 60;
const DAY_S = 24 * 3600;

export interface TimeAxisFormat {
  /** "14:05" (or "2:05 PM"), with seconds when ticks are under a minute apart. */
  time: (date: Date) => string;
  /** "7 Dec" */
  day: (date: Date) => string;
}

export function localFormat(withSeconds: boolean, locale?: string): TimeAxisFormat {
  const time = new Intl.DateTimeFormat(locale, {
    hour: "2-digit",
    minute: "2-digit",
    ...(withSeconds ? { second: "2-digit" } : {}),
  });
  const day = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" });
  return { time: (d) => time.format(d), day: (d) => day.format(d) };
}

/** The labels of ticks at `splits` (epoch seconds, ascending). Ticks a day or more apart show
 * the date alone; closer ones the time, with the date under the first and at each new day. */
export function timeAxisLabels(splits: readonly number[], format?: TimeAxisFormat): string[] {
  const step = splits.length > 1 ? (splits[1] ?? 0) - (splits[0] ?? 0) : MINUTE_S;
  const fmt = format ?? localFormat(step < MINUTE_S);
  if (step >= DAY_S) return splits.map((s) => fmt.day(new Date(s * 1000)));
  let previousDay = "";
  return splits.map((s) => {
    const date = new Date(s * 1000);
    const day = fmt.day(date);
    const label = day === previousDay ? fmt.time(date) : `${fmt.time(date)}\n${day}`;
    previousDay = day;
    return label;
  });
}

/** The smallest gap between two ticks, in CSS pixels, that fits a label of the time of day. */
export const TIME_AXIS_SPACE = 80;
