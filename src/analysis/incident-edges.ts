/**
 * Which windows are at an incident's edge (src/analysis/evidence.ts), from stable's counts: the
 * window itself, the one before (whether stable was above the limit in it) and stable's samples
 * just past the window's end.
 */

/** Stable's bad and all requests in a window, and through its latest samples past the window's end. */
export interface StableCounts {
  stable: { n: number; k: number } | undefined;
  stableAhead?: { n: number; k: number } | undefined;
}

/** Stable above the limit over enough requests to mean it (one bad request expected at the limit). */
export function meaningfullyAbove(counts: { n: number; k: number }, limit: number): boolean {
  return counts.n * limit >= 1 && counts.k > counts.n * limit;
}

/**
 * A window at an incident's edge: stable above the limit in it and not in the window before, or
 * the other way round, or not in it but over it and its samples just past its end together (the
 * part past the end alone is a few seconds: too noisy on its own). Counting by scrape places
 * each pod's increments in a window by their sample times, each pod at its own phase, so an
 * incident's first and last seconds fall in the canary's window and in stable's in different
 * proportions: such a window says nothing of the canary against stable or against the limit, and
 * neither harm test counts it. Which windows those are depends on stable's counts only, so the
 * tests stay valid.
 */
export function incidentEdge(stableAbove: boolean | undefined, window: StableCounts, limit: number): boolean {
  const { stable, stableAhead } = window;
  if (!stable) return false;
  const now = meaningfullyAbove(stable, limit);
  const before = stableAbove ?? now;
  const after = stableAhead && stableAhead.n >= stable.n ? meaningfullyAbove(stableAhead, limit) : now;
  return now !== before || now !== after;
}

/**
 * The same edge for the test against stable, from the windows around this one only: the window
 * before, and stable's samples just after this one (the part past its end). The relative test is
 * conditional on the bad requests both versions saw in the window, so which windows it counts should
 * not depend on stable's share of them. Only approximately so: the part past the end is the rest of
 * the increments that straddle the window's end, whose other part is in the window's count, so a
 * straddle with many errors both lowers stable's share in the window and marks the edge.
 */
export function incidentEdgeAround(
  stableAbove: boolean | undefined,
  window: StableCounts,
  limit: number,
): boolean {
  const { stable, stableAhead } = window;
  if (!stable || stableAbove === undefined || !stableAhead) return false;
  const past = { n: stableAhead.n - stable.n, k: Math.max(0, stableAhead.k - stable.k) };
  if (past.n * limit < 1) return false;
  return stableAbove !== meaningfullyAbove(past, limit);
}
