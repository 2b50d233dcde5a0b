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
});

const burstSchema = v.strictObject({
  /** Mean minutes between burst onsets (onsets are a Poisson process). */
  meanSpacingMinutes: positive,
  durationSeconds: positive,
  /**
   * How long each burst lasts: `fixed` (exactly durationSeconds) or `exponential` (random, with
   * durationSeconds as its mean: most incidents short, a few several times longer).
   */
  durationDistribution: v.optional(v.picklist(["fixed", "exponential"]), "fixed"),
  /** Error rate of requests served during a burst (on top of the version's own). */
  errorRate: rate,
  /** Both versions (a shared dependency failing) or the canary only. */
  shared: v.boolean(),
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

export const RULES = ["ours", "flagger", "argo"] as const;
export type Rule = (typeof RULES)[number];

export const scenarioSchema = v.strictObject({
  description: v.string(),
  requestsPerSecond: positive,
  stable: versionSchema,
  canary: versionSchema,
  bursts: v.optional(v.array(burstSchema), () => []),
  /** The action's inputs as a workflow writes them; unset inputs take action.yml's defaults. */
  inputs: v.optional(v.record(v.string(), v.string()), () => ({})),
  /** With `pause-after`: minutes the rollout stays paused before `command: promote` continues it. */
  promoteAfterMinutes: v.optional(nonNegative),
  /** Prometheus' scrape interval, seconds (default 15). */
  scrapeIntervalSeconds: v.optional(positive, 15),
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

/** A version's error rate and slow share at `minute` after the rollout started. */
export function ratesAt(version: VersionBehaviour, minute: number): { errorRate: number; slowShare: number } {
  let { errorRate, slowShare } = version;
  for (const change of version.changes) {
    if (change.minute > minute) break;
    errorRate = change.errorRate ?? errorRate;
    slowShare = change.slowShare ?? slowShare;
  }
  return { errorRate, slowShare };
}

/** The minutes at which a version's rates change, for cutting time into constant pieces. */
export function changeMinutes(scenario: Scenario): number[] {
  return [...scenario.stable.changes, ...scenario.canary.changes].map((c) => c.minute).sort((a, b) => a - b);
}
