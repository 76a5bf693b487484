/** The trips list's date filter: whole days in the browser's zone, both ends included. */
export interface TripRange {
  /** epoch ms, inclusive: the API's `from` */
  from: number | null;
  /** epoch ms, exclusive: the API's `to` (the start of the day after the last one) */
  to: number | null;
}

/** Midnight (local) of an <input type="date"> value, `plusDays` later; null if not a date. */
export function localDayStart(value: string, plusDays = 0): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return null;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(year, month - 1, day);
  if (date.getFullYear() !== year || date.getMonth() !== month - 1 || date.getDate() !== day) return null;
  date.setDate(date.getDate() + plusDays);
  return date.getTime();
}

/** The range two date inputs ask for (either may be empty), or why it cannot be used. */
export function tripRange(fromDate: string, toDate: string): TripRange | string {
  const from = fromDate ? localDayStart(fromDate) : null;
  const to = toDate ? localDayStart(toDate, 1) : null;
  if ((fromDate && from === null) || (toDate && to === null)) return "Enter the days as the date picker shows them.";
  if ((from !== null && from < 0) || (to !== null && to <= 0)) return "Pick days after 1970.";
  if (from !== null && to !== null && from >= to) return "The first day must not be after the last.";
  return { from, to };
}

/** The API query for a page of trips in the range. */
export function tripQuery(range: TripRange, limit: number, cursor: string | null): URLSearchParams {
  const query = new URLSearchParams({ limit: String(limit) });
  if (range.from !== null) query.set("from", String(range.from));
  if (range.to !== null) query.set("to", String(range.to));
  if (cursor) query.set("cursor", cursor);
  return query;
}

/** The dates of an address's `from`/`to` (YYYY-MM-DD, either may be missing) and their range;
 * null when they ask for no filter or for one that cannot be used. */
export function tripDays(
  fromDate: string,
  toDate: string,
): { fromDate: string; toDate: string; range: TripRange } | null {
  if (!fromDate && !toDate) return null;
  const range = tripRange(fromDate, toDate);
  return typeof range === "string" ? null : { fromDate, toDate, range };
}
