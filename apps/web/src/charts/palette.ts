import { cssVar } from "../theme";

export interface ChartColours {
  text: string;
  grid: string;
  series: string[];
}

export function chartColours(): ChartColours {
  return {
    text: cssVar("--muted"),
    grid: cssVar("--grid"),
    series: [1, 2, 3, 4, 5, 6].map((i) => cssVar(`--series-${i}`)),
  };
}

// One colour per PID across the whole app (Live, History, Trips): a chart never picks a colour
// by its position on the page, or speed and RPM would swap colours from one page to the next.
const PID_SERIES: Readonly<Record<string, number>> = {
  SPEED: 0,
  RPM: 1,
  THROTTLE_POS: 2,
  ENGINE_LOAD: 3,
  COOLANT_TEMP: 4,
  FUEL_LEVEL: 5,
  INTAKE_TEMP: 2,
  ELM_VOLTAGE: 5,
  CONTROL_MODULE_VOLTAGE: 5,
  FUEL_RATE: 3,
  MAF: 2,
};

/** Which of the theme's series colours (`--series-1` …) is the PID's: fixed for the common
 * PIDs, from the name for the others (the same on every page and every visit). */
export function pidSeriesIndex(pid: string, count = 6): number {
  const fixed = PID_SERIES[pid];
  if (fixed !== undefined) return fixed % count;
  let hash = 0;
  for (const char of pid) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash % count;
}

/** The PID's colour in the current theme. */
export function pidColour(pid: string, colours: ChartColours = chartColours()): string {
  return colours.series[pidSeriesIndex(pid, colours.series.length)] ?? colours.text;
}

/** The colour with an alpha, for bands and fills ("#4cc2ff" → "#4cc2ff33"). */
export function translucent(colour: string, alpha: number): string {
  if (/^#[0-9a-f]{6}$/i.test(colour)) {
    return (
      colour +
      Math.round(alpha * 255)
        .toString(16)
        .padStart(2, "0")
    );
  }
  return colour;
}
