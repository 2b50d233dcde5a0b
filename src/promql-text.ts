/**
 * Text of PromQL: escaped label values and regular expressions, and raw range selectors. A shared
 * leaf: the metrics reader builds its queries with it, and the `checks` input fills its
 * placeholders with it, so a value read from the cluster or the workflow cannot change a query.
 */

/** Escapes a value for a double-quoted PromQL string. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes a value for a regular expression (RE2, as Prometheus uses), so it matches only itself. */
export function escapeRegexValue(value: string): string {
  return value.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");
}

/** A range selector over the last `ms` milliseconds: every raw sample, nothing computed. */
export function range(metric: string, windowMs?: number): string {
  return windowMs === undefined ? metric : `${metric}[${Math.max(1, Math.round(windowMs))}ms]`;
}
