/**
 * The rollout's state, kept as one JSON annotation on the VirtualService: the cluster is the source
 * of truth, so a later run (a `promote` after a pause, the post step after a cancel, a `status`)
 * continues from it. Parsed with a zod schema so a hand-edited or foreign annotation is reported,
 * not trusted.
 */
import { z } from "zod";

export const STATE_SCHEMA_VERSION = 1;
/** At most this many history entries are kept (annotations share a 256 KiB budget per object). */
export const MAX_HISTORY = 60;

/**
 * `finalizing`: every stage passed and the canary carries 100 % while the stable Deployment gets the
 * canary's pod template (issue 14); traffic stays on the canary until the stable is ready.
 */
export const RolloutStatus = z.enum(["progressing", "paused", "finalizing", "promoted", "rolled-back"]);
export type RolloutStatus = z.infer<typeof RolloutStatus>;

const HistoryEntry = z.object({
  at: z.string(),
  weight: z.number().int().min(0).max(100),
  event: z.string(),
  reason: z.string().optional(),
  holder: z.string().optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

const Counts = z.object({
  requests: z.number().min(0),
  errors: z.number().min(0),
  slow: z.number().min(0).optional(),
});

/** At most this many stage results are kept (a rollout has at most 100 stages, usually 4). */
export const MAX_STAGE_RESULTS = 100;

const StageResult = z.object({
  stage: z.number().int().min(0),
  weight: z.number().int().min(0).max(100),
  decision: z.enum(["pass", "fail", "inconclusive", "skipped", "unreachable", "aborted", "halted"]),
  reason: z.string(),
  at: z.string(),
  durationMs: z.number().min(0),
  canary: Counts.optional(),
  stable: Counts.optional(),
});
export type StageResult = z.infer<typeof StageResult>;

const OriginalRoute = z.object({
  index: z.number().int().min(0),
  name: z.string().optional(),
  canaryAdded: z.boolean(),
  stableWeight: z.number().int().optional(),
  canaryWeight: z.number().int().optional(),
});

const SignalEvidence = z.object({
  n: z.number().min(0),
  k: z.number().min(0),
  cleanN: z.number().min(0),
  cleanK: z.number().min(0),
  pairedCanaryN: z.number().min(0),
  pairedCanaryK: z.number().min(0),
  pairedStableN: z.number().min(0),
  pairedStableK: z.number().min(0),
  rel: z.array(z.number()),
  safe: z.number(),
  aboveWindows: z.number().int().min(0),
  aboveMs: z.number().min(0),
  streakN: z.number().min(0),
  streakK: z.number().min(0),
  streakSafe: z.number(),
  forgiven: z.number().int().min(0),
});

/** The canary version's evidence (src/analysis/evidence.ts), carried across stages and runs. */
const Evidence = z.object({
  errors: SignalEvidence,
  latency: SignalEvidence.optional(),
  windows: z.number().int().min(0),
  inputs: z
    .object({ maxErrorRate: z.number(), maxRatio: z.number(), latencyThresholdMs: z.number().optional() })
    .optional(),
});

const Lease = z.object({ holder: z.string(), expiresAt: z.string() });
export type Lease = z.infer<typeof Lease>;

export const RolloutStateSchema = z.object({
  schemaVersion: z.literal(STATE_SCHEMA_VERSION),
  rolloutId: z.string().min(1),
  commit: z.string(),
  stages: z.array(z.number().int().min(1).max(100)).min(1),
  /** Index into `stages` of the stage in progress or last completed; -1 before the first. */
  stageIndex: z.number().int().min(-1),
  weight: z.number().int().min(0).max(100),
  status: RolloutStatus,
  reason: z.string().optional(),
  startedAt: z.string(),
  updatedAt: z.string(),
  lease: Lease.optional(),
  original: z.array(OriginalRoute),
  /** The stable version's counts over the analysed stages: the baseline when stable gets no traffic. */
  baseline: Counts.optional(),
  history: z.array(HistoryEntry),
  /** Each analysed stage's outcome and counts, so a later run (status, promote) reports them too. */
  stageResults: z.array(StageResult).max(MAX_STAGE_RESULTS).optional(),
  evidence: Evidence.optional(),
  /** With `finalize: copy`: the promotion's stable Deployment runs the canary's template and carries the traffic again. */
  finalized: z.boolean().optional(),
  /** The stable Deployment's images before the canary's template was copied onto it (for people undoing it by hand). */
  stableImagesBefore: z.record(z.string(), z.string()).optional(),
  /** The Deployments finalization used: the next rollout scales the canary up by name before preflight (no pods to find it by). */
  deployments: z.object({ stable: z.string(), canary: z.string() }).optional(),
  /** Finalization scaled the canary Deployment to zero; the next rollout scales it back up before stage 1. */
  canaryScaledDown: z.boolean().optional(),
  /** Why the last finalization attempt has not finished (the stable's problems), for reports. */
  finalizeProblem: z.string().optional(),
});
export type RolloutState = z.infer<typeof RolloutStateSchema>;

export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StateError";
  }
}

export function parseState(text: string | undefined, where: string): RolloutState | undefined {
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new StateError(
      `the rollout state annotation on ${where} is not JSON; remove it or run command: rollback`,
    );
  }
  const parsed = RolloutStateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StateError(
      `the rollout state annotation on ${where} is not one this action wrote (${issue?.path.join(".") || "root"}: ${issue?.message}); remove it or run command: rollback`,
    );
  }
  return parsed.data;
}

/** The state, or why it cannot be read: for callers that must go on without it (a rollback). */
export function readState(
  text: string | undefined,
  where: string,
): { state?: RolloutState; problem?: string } {
  try {
    return { state: parseState(text, where) };
  } catch (error) {
    if (error instanceof StateError) return { problem: error.message };
    throw error;
  }
}

export function serializeState(state: RolloutState): string {
  const trimmed =
    state.history.length > MAX_HISTORY ? { ...state, history: state.history.slice(-MAX_HISTORY) } : state;
  return JSON.stringify(trimmed);
}

/** A lease holder as run-context.ts writes it on Actions: "<repo> run <runId> attempt <n>". */
const RUN_HOLDER = /^(?<run>.+ run \S+) attempt (?<attempt>\d+)$/;

/**
 * True when `holder` is a later attempt of the same workflow run as `other` (GitHub's "Re-run
 * jobs"): the earlier attempt is over, so its lease and its records are the re-run's to take over.
 */
export function isLaterAttemptOf(holder: string, other: string): boolean {
  const mine = RUN_HOLDER.exec(holder)?.groups;
  const theirs = RUN_HOLDER.exec(other)?.groups;
  if (!mine || !theirs || mine.run !== theirs.run) return false;
  return Number(mine.attempt) > Number(theirs.attempt);
}

/**
 * A lease held by someone else and not expired blocks every writer but its holder, and but a
 * later attempt of the holder's own run (an earlier attempt cannot still be running).
 */
export function leaseBlocks(state: RolloutState | undefined, holder: string, now: Date): Lease | undefined {
  const lease = state?.lease;
  if (!lease || lease.holder === holder || isLaterAttemptOf(holder, lease.holder)) return undefined;
  return Date.parse(lease.expiresAt) > now.getTime() ? lease : undefined;
}

export class LeaseHeldError extends Error {
  readonly lease: Lease;
  constructor(where: string, lease: Lease) {
    super(
      `${where} is being rolled out by ${lease.holder} (lease until ${lease.expiresAt}); this run changed nothing. Wait for it, or cancel that run (its post step rolls back)`,
    );
    this.name = "LeaseHeldError";
    this.lease = lease;
  }
}
