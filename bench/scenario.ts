/**
 * A benchmark scenario: the service's traffic and health, the action's inputs as a workflow writes
 * them, and the target `ours` must meet. One JSON file per row of issue 11's target table; the
 * schema is documented in docs/benchmark.md.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import * as v from "valibot";

const rate = v.pipe(v.number(), v.minValue(0), v.maxValue(1));
const positive = v.pipe(v.number(), v.gtValue(0));
const nonNegative = v.pipe(v.number(), v.minValue(0));

const versionSchema = v.strictObject({
  /** Share of requests that fail (5xx), 0..1. */
  errorRate: rate,
  /** Share of requests slower than `latency-threshold`, 0..1. */
  slowShare: v.optional(rate, 0),
  /** From `minute` after the rollout starts, the rates given replace the earlier ones. */
  changes: v.optional(
    v.array(
      v.strictObject({ minute: nonNegative, errorRate: v.optional(rate), slowShare: v.optional(rate) }),
    ),
    () => [],
  ),
  /**
   * Rates that depend on the canary's weight (a version that fails under load): while the canary
   * weight is at least `minWeight`, the rates given replace those above (the highest such entry).
   */
  byWeight: v.optional(
    v.array(
      v.strictObject({
        minWeight: v.pipe(v.number(), v.minValue(0), v.maxValue(100)),
        errorRate: v.optional(rate),
        slowShare: v.optional(rate),
      }),
    ),
    () => [],
  ),
});

const burstSchema = v.strictObject({
  /** Mean minutes between burst onsets (onsets are a Poisson process). */
  meanSpacingMinutes: positive,
  /** The duration, or with `durationDistribution: "exponential"` its mean. */
  durationSeconds: positive,
  /**
   * How long each burst lasts: `fixed` (exactly durationSeconds) or `exponential` (random, with
   * durationSeconds as its mean: most incidents short, a few several times longer).
   */
  durationDistribution: v.optional(v.picklist(["fixed", "exponential"]), "fixed"),
  /** Error rate of requests served during a burst (on top of the version's own). */
  errorRate: rate,
  /** Both versions (a shared dependency failing) or the canary only; `on` overrides it. */
  shared: v.optional(v.boolean(), true),
  /** Which versions a burst hits: both, the canary only, or stable only. */
  on: v.optional(v.picklist(["both", "canary", "stable"])),
});

/** How the service's metrics are scraped: per pod, each at its own phase, as Prometheus does. */
const scrapingSchema = v.strictObject({
  /** Pods per version; each is its own scrape target with its own counters. */
  podsPerVersion: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 3),
  /** Share of scrapes that fail (no sample; Prometheus marks the target's series stale until the next). */
  missedScrapeShare: v.optional(rate, 0.005),
  /** Mean pod restarts per pod-hour (each restart resets the pod's counters to zero). */
  restartsPerPodHour: v.optional(nonNegative, 0.2),
});

const targetSchema = v.strictObject({
  minPromoted: v.optional(rate),
  maxRolledBack: v.optional(rate),
  minRolledBack: v.optional(rate),
  /** Mean minutes to promotion at most this multiple of Flagger's. */
  maxPromotionMinutesVsFlagger: v.optional(positive),
  /** Mean canary errors served before rollback at most this fraction of Flagger's / Argo's. */
  maxErrorsVsFlagger: v.optional(positive),
  maxErrorsVsArgo: v.optional(positive),
});

/**
 * `flagger` and `argo` as configured to compare like for like (the action's stages, the canary's
 * own metrics); `flagger-tutorial` with Flagger's tutorial (stepWeight 10 to maxWeight 50, and its
 * load tester's extra canary traffic); `argo-service` with Argo Rollouts' documented query, which
 * reads the whole service (both versions) rather than the canary.
 */
export const RULES = ["ours", "flagger", "flagger-tutorial", "argo", "argo-service"] as const;
export type Rule = (typeof RULES)[number];

export const scenarioSchema = v.strictObject({
  description: v.string(),
  requestsPerSecond: positive,
  /** From `minute` after the rollout starts, the request rate is `requestsPerSecond` (a ramp is steps). */
  rateChanges: v.optional(
    v.array(v.strictObject({ minute: nonNegative, requestsPerSecond: positive })),
    () => [],
  ),
  stable: versionSchema,
  canary: versionSchema,
  bursts: v.optional(v.array(burstSchema), () => []),
  /** The action's inputs as a workflow writes them; unset inputs take action.yml's defaults. */
  inputs: v.optional(v.record(v.string(), v.string()), () => ({})),
  /** With `pause-after`: minutes the rollout stays paused before `command: promote` continues it. */
  promoteAfterMinutes: v.optional(nonNegative),
  /** Prometheus' scrape interval, seconds (default 15). */
  scrapeIntervalSeconds: v.optional(positive, 15),
  scraping: v.optional(scrapingSchema, () => v.parse(scrapingSchema, {})),
  /**
   * Issue 23's custom checks: the slow stream stands for the application's own bad events (failed
   * orders), exposed as `business_orders_total{version, status}`; `ours` judges them through its
   * `checks` input, Argo through the same threshold on that counter each minute, and the errors
   * served are these bad events. Without `latency-threshold` the built-in signals ignore them.
   */
  customCounter: v.optional(v.boolean(), false),
  /** Which rules the scenario applies to (Flagger and Argo have no pause-then-promote). */
  rules: v.optional(v.array(v.picklist(RULES)), () => [...RULES]),
  target: v.optional(targetSchema, () => ({})),
  /** The target's wording, for the table. */
  targetText: v.optional(v.string(), ""),
});

export type Scenario = v.InferOutput<typeof scenarioSchema> & { name: string };
export type VersionBehaviour = v.InferOutput<typeof versionSchema>;
export type Burst = v.InferOutput<typeof burstSchema>;
export type Target = v.InferOutput<typeof targetSchema>;

export function parseScenario(json: unknown, name: string): Scenario {
  const parsed = v.safeParse(scenarioSchema, json);
  // Every problem with its path, as one message: a scenario file is written by hand.
  if (!parsed.success) throw new Error(`scenario ${name} is not valid:\n${v.summarize(parsed.issues)}`);
  return { ...parsed.output, name };
}

export function loadScenario(file: string): Scenario {
  return parseScenario(JSON.parse(readFileSync(file, "utf8")), basename(file, ".json"));
}

/** A version's error rate and slow share at `minute` after the rollout started, at a canary weight. */
export function ratesAt(
  version: VersionBehaviour,
  minute: number,
  canaryWeight = 0,
): { errorRate: number; slowShare: number } {
  let { errorRate, slowShare } = version;
  for (const change of version.changes) {
    if (change.minute > minute) break;
    errorRate = change.errorRate ?? errorRate;
    slowShare = change.slowShare ?? slowShare;
  }
  let under: VersionBehaviour["byWeight"][number] | undefined;
  for (const w of version.byWeight)
    if (canaryWeight >= w.minWeight && (!under || w.minWeight >= under.minWeight)) under = w;
  return { errorRate: under?.errorRate ?? errorRate, slowShare: under?.slowShare ?? slowShare };
}

/** The service's request rate at `minute` after the rollout started. */
export function requestRateAt(scenario: Scenario, minute: number): number {
  let rps = scenario.requestsPerSecond;
  for (const change of scenario.rateChanges) if (change.minute <= minute) rps = change.requestsPerSecond;
  return rps;
}

/** The minutes at which rates change, for cutting time into constant pieces. */
export function changeMinutes(scenario: Scenario): number[] {
  return [...scenario.stable.changes, ...scenario.canary.changes, ...scenario.rateChanges]
    .map((c) => c.minute)
    .sort((a, b) => a - b);
}

/** Which versions a burst hits. */
export function burstTargets(burst: Burst): { canary: boolean; stable: boolean } {
  const on = burst.on ?? (burst.shared ? "both" : "canary");
  return { canary: on !== "stable", stable: on !== "canary" };
}
