/** How the report writes numbers, the same in every table of the comment and the summary. */

/** U+00A0: keeps a number and its unit, or a count and its total, on one line. */
export const NBSP = "\u00a0";

/** A rate as a percentage: three decimals below 0.1 %, two below 10 %, one above; "—" when unknown. */
export const pct = (x: number | undefined): string => {
  if (x === undefined || !Number.isFinite(x)) return "—";
  const p = x * 100;
  return `${p < 0.1 && p > 0 ? p.toFixed(3) : p < 10 ? p.toFixed(2) : p.toFixed(1)}${NBSP}%`;
};
