/**
 * The rollout's state, kept as one JSON annotation on the VirtualService: the cluster is the source
 * of truth, so a later run (a `promote` after a pause, the post step after a cancel, a `status`)
 * continues from it. Parsed with a valibot schema so a hand-edited or foreign annotation is
 * reported (the first field that is wrong, and what was expected there), not trusted.
 *
 * valibot rather than zod: ncc's minifier keeps every function of every module it bundles, so a
 * library costs what its reached modules weigh; valibot is one module of ~95 KB minified, zod's
 * classic API ~164 KB and zod/mini with its English messages ~123 KB.
 */
import * as v from "valibot";
import { scrub } from "../../redact.ts";

export const STATE_SCHEMA_VERSION = 1;
/** At most this many history entries are kept (annotations share a 256 KiB budget per object). */
export const MAX_HISTORY = 60;

/** A traffic weight in percent: whole for a VirtualService, with decimals (0.1) for an HTTPRoute. */
const Weight = v.pipe(v.number(), v.minValue(0), v.maxValue(100));
/** A position (a stage, a route, a count of windows). */
const Index = v.pipe(v.number(), v.integer(), v.minValue(0));
/** A count or a duration: never negative, not always whole (evidence is weighted). */
const Amount = v.pipe(v.number(), v.minValue(0));

/**
 * `finalizing`: every stage passed and the canary carries 100 % while the stable Deployment gets the
 * canary's pod template (issue 14); traffic stays on the canary until the stable is ready.
 */
export const RolloutStatus = v.picklist(["progressing", "paused", "finalizing", "promoted", "rolled-back"]);
export type RolloutStatus = v.InferOutput<typeof RolloutStatus>;

const HistoryEntry = v.object({
  at: v.string(),
  weight: Weight,
  event: v.string(),
  reason: v.optional(v.string()),
  holder: v.optional(v.string()),
});
export type HistoryEntry = v.InferOutput<typeof HistoryEntry>;

const Counts = v.object({
  requests: Amount,
  errors: Amount,
  slow: v.optional(Amount),
});

/** At most this many stage results are kept (a rollout has at most 100 stages, usually 4). */
export const MAX_STAGE_RESULTS = 100;

const StageResult = v.object({
  stage: Index,
  weight: Weight,
  decision: v.picklist(["pass", "fail", "inconclusive", "skipped", "unreachable", "aborted", "halted"]),
  reason: v.string(),
  at: v.string(),
  durationMs: Amount,
  canary: v.optional(Counts),
  stable: v.optional(Counts),
});
export type StageResult = v.InferOutput<typeof StageResult>;

const OriginalRoute = v.object({
  index: Index,
  name: v.optional(v.string()),
  canaryAdded: v.boolean(),
  /** The weight field as it was: Istio's percentage, or a Gateway API backendRef's proportional weight. */
  stableWeight: v.optional(v.pipe(v.number(), v.integer())),
  canaryWeight: v.optional(v.pipe(v.number(), v.integer())),
});

/** A change-point e-process's S and D per alternative (src/analysis/change-point.ts), in logs. */
const ChangePoint = v.object({ s: v.array(v.number()), d: v.array(v.number()) });

const SignalEvidence = v.object({
  n: Amount,
  k: Amount,
  cleanN: Amount,
  cleanK: Amount,
  pairedCanaryN: Amount,
  pairedCanaryK: Amount,
  pairedStableN: Amount,
  pairedStableK: Amount,
  rel: v.array(v.number()),
  absCp: v.optional(ChangePoint),
  relCp: v.optional(ChangePoint),
  streakAbsCp: v.optional(ChangePoint),
  safe: v.number(),
  aboveWindows: Index,
  aboveMs: Amount,
  streakN: Amount,
  streakK: Amount,
  streakSafe: v.number(),
  forgiven: Index,
  stableAbove: v.optional(v.boolean()),
});

/** The canary version's evidence (src/analysis/evidence.ts), carried across stages and runs. */
const Evidence = v.object({
  errors: SignalEvidence,
  latency: v.optional(SignalEvidence),
  windows: Index,
  inputs: v.optional(
    v.object({ maxErrorRate: v.number(), maxRatio: v.number(), latencyThresholdMs: v.optional(v.number()) }),
  ),
});

const Lease = v.object({ holder: v.string(), expiresAt: v.string() });
export type Lease = v.InferOutput<typeof Lease>;

export const RolloutStateSchema = v.object({
  schemaVersion: v.literal(STATE_SCHEMA_VERSION),
  rolloutId: v.pipe(v.string(), v.minLength(1)),
  commit: v.string(),
  stages: v.pipe(v.array(v.pipe(v.number(), v.gtValue(0), v.maxValue(100))), v.minLength(1)),
  /** Index into `stages` of the stage in progress or last completed; -1 before the first. */
  stageIndex: v.pipe(v.number(), v.integer(), v.minValue(-1)),
  weight: Weight,
  status: RolloutStatus,
  reason: v.optional(v.string()),
  startedAt: v.string(),
  updatedAt: v.string(),
  lease: v.optional(Lease),
  original: v.array(OriginalRoute),
  /** The stable version's counts over the analysed stages: the baseline when stable gets no traffic. */
  baseline: v.optional(Counts),
  history: v.array(HistoryEntry),
  /** Each analysed stage's outcome and counts, so a later run (status, promote) reports them too. */
  stageResults: v.optional(v.pipe(v.array(StageResult), v.maxLength(MAX_STAGE_RESULTS))),
  evidence: v.optional(Evidence),
  /** With `finalize: copy`: the promotion's stable Deployment runs the canary's template and carries the traffic again. */
  finalized: v.optional(v.boolean()),
  /** The stable Deployment's images before the canary's template was copied onto it (for people undoing it by hand). */
  stableImagesBefore: v.optional(v.record(v.string(), v.string())),
  /** The Deployments finalization used: the next rollout scales the canary up by name before preflight (no pods to find it by). */
  deployments: v.optional(v.object({ stable: v.string(), canary: v.string() })),
  /** Finalization scaled the canary Deployment to zero; the next rollout scales it back up before stage 1. */
  canaryScaledDown: v.optional(v.boolean()),
  /** Why the last finalization attempt has not finished (the stable's problems), for reports. */
  finalizeProblem: v.optional(v.string()),
  /**
   * The commit of the last release promoted on this VirtualService, carried from rollout to rollout
   * (a rollback keeps it), so reports can list the commits since. A record, not an order: the
   * reporter uses it only as a 40-hex sha that GitHub's compare answers for. Only reports read it,
   * so a value that is not a string is dropped rather than refusing the whole record.
   */
  promotedCommit: v.fallback(v.optional(v.string()), undefined),
});
export type RolloutState = v.InferOutput<typeof RolloutStateSchema>;

/**
 * A rollout that has not ended (progressing, paused or finalizing): its record steers the next
 * command and the routes are its own; a promoted or rolled-back one only says where they came from.
 */
export function isLive(
  state: RolloutState | undefined,
): state is RolloutState & { status: "progressing" | "paused" | "finalizing" } {
  return state?.status === "progressing" || state?.status === "paused" || state?.status === "finalizing";
}

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
  // The first problem is enough to report; the rest need not be looked for.
  const parsed = v.safeParse(RolloutStateSchema, json, { abortEarly: true });
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw new StateError(
      `the rollout state annotation on ${where} is not one this action wrote (${v.getDotPath(issue) || "root"}: ${issue.message}); remove it or run command: rollback`,
    );
  }
  return parsed.output;
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

/**
 * The record with every registered secret taken out of its free text: the reasons quote what
 * Prometheus and the API server answered, which can echo a credential (a URL's token, an api key,
 * an Authorization header), and anyone who can read the VirtualService would see it. Identifiers
 * (commit, rollout id, holder) are left as they are: a short secret could occur inside a hex SHA.
 */
function withoutSecrets(state: RolloutState): RolloutState {
  return {
    ...state,
    ...(state.reason !== undefined ? { reason: scrub(state.reason) } : {}),
    ...(state.finalizeProblem !== undefined ? { finalizeProblem: scrub(state.finalizeProblem) } : {}),
    history: state.history.map((h) => (h.reason === undefined ? h : { ...h, reason: scrub(h.reason) })),
    ...(state.stageResults
      ? { stageResults: state.stageResults.map((r) => ({ ...r, reason: scrub(r.reason) })) }
      : {}),
  };
}

/** The annotation's text: the history trimmed, no registered secret in it. */
export function serializeState(state: RolloutState): string {
  const trimmed =
    state.history.length > MAX_HISTORY ? { ...state, history: state.history.slice(-MAX_HISTORY) } : state;
  return JSON.stringify(withoutSecrets(trimmed));
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

/**
 * Whether stage `next` is the last and at 100 %: the stage judged before it is then the last weight
 * where stable serves beside the canary, which holds longer (analysis/rules.ts, stageMinimumMs).
 */
export function nextIsFinal100(stages: readonly number[], next: number): boolean {
  return next === stages.length - 1 && stages[next] === 100;
}
