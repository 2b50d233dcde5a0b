/**
 * A benchmark scenario: the service's traffic and health, the action's inputs as a workflow writes
 * them, and the target `ours` must meet. One JSON file per row of issue 11's target table; the
 * schema is documented in docs/benchmark.md.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { z } from "zod";

const rate = z.number().min(0).max(1);

const versionSchema = z.strictObject({
  /** Share of requests that fail (5xx), 0..1. */
  errorRate: rate,
  /** Share of requests slower than `latency-threshold`, 0..1. */
  slowShare: rate.default(0),
  /** From `minute` after the rollout starts, the rates given replace the earlier ones. */
  changes: z
    .array(
      z.strictObject({ minute: z.number().min(0), errorRate: rate.optional(), slowShare: rate.optional() }),
    )
    .default([]),
});

const burstSchema = z.strictObject({
  /** Mean minutes between burst onsets (onsets are a Poisson process). */
  meanSpacingMinutes: z.number().positive(),
  durationSeconds: z.number().positive(),
  /** Error rate of requests served during a burst (on top of the version's own). */
  errorRate: rate,
  /** Both versions (a shared dependency failing) or the canary only. */
  shared: z.boolean(),
});

const targetSchema = z.strictObject({
  minPromoted: rate.optional(),
  maxRolledBack: rate.optional(),
  minRolledBack: rate.optional(),
  /** Mean minutes to promotion at most this multiple of Flagger's. */
  maxPromotionMinutesVsFlagger: z.number().positive().optional(),
  /** Mean canary errors served before rollback at most this fraction of Flagger's / Argo's. */
  maxErrorsVsFlagger: z.number().positive().optional(),
  maxErrorsVsArgo: z.number().positive().optional(),
});

export const RULES = ["ours", "flagger", "argo"] as const;
export type Rule = (typeof RULES)[number];

export const scenarioSchema = z.strictObject({
  description: z.string(),
  requestsPerSecond: z.number().positive(),
  stable: versionSchema,
  canary: versionSchema,
  bursts: z.array(burstSchema).default([]),
  /** The action's inputs as a workflow writes them; unset inputs take action.yml's defaults. */
  inputs: z.record(z.string(), z.string()).default({}),
  /** With `pause-after`: minutes the rollout stays paused before `command: promote` continues it. */
  promoteAfterMinutes: z.number().min(0).optional(),
  /** Prometheus' scrape interval, seconds (default 15). */
  scrapeIntervalSeconds: z.number().positive().default(15),
  /** Which rules the scenario applies to (Flagger and Argo have no pause-then-promote). */
  rules: z.array(z.enum(RULES)).default([...RULES]),
  target: targetSchema.default({}),
  /** The target's wording, for the table. */
  targetText: z.string().default(""),
});

export type Scenario = z.infer<typeof scenarioSchema> & { name: string };
export type VersionBehaviour = z.infer<typeof versionSchema>;
export type Burst = z.infer<typeof burstSchema>;
export type Target = z.infer<typeof targetSchema>;

export function parseScenario(json: unknown, name: string): Scenario {
  return { ...scenarioSchema.parse(json), name };
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
