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

/** The colour with an alpha, for bands and fills ("#4cc2ff" → "#4cc2ff33"). */
export function translucent(colour: string, alpha: number): string {
  if (/^#[0-9a-f]{6}$/i.test(colour)) {
    return colour + Math.round(alpha * 255).toString(16).padStart(2, "0");
  }
  return colour;
}
