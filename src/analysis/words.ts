/** Numbers in the judge's sentences for people, the same in the built-in rules and the custom checks. */

/** A rate as a percentage: "1.2 %", "0.05 %", "0.004 %". */
export const pct = (x: number): string =>
  `${(x * 100).toFixed(x < 0.001 && x > 0 ? 3 : 2).replace(/\.?0+$/, "")} %`;

/** An e-value for people: "25", "1,200", "more than a million" (never below 1: no evidence). */
export function evidenceWords(logE: number): string {
  return logE > Math.log(1e6)
    ? "more than a million"
    : Math.round(Math.exp(Math.max(0, logE))).toLocaleString("en-US");
}
