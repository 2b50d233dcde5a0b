/**
 * The rollout engine: a state machine over the stages that only decides (as Flagger's scheduler).
 * It talks to the mesh, the metrics backend, time and the reporters through ports, so the same code
 * runs in real time in the action and in virtual time in tests and benchmarks.
 *
 * Per stage: set the weight (with the state, in one patch), wait the settle time, take the counters
 * as the stage's start, then consult the judge every interval until it decides or the stage runs
 * out of time. `fail` rolls back at once; `inconclusive` follows on-inconclusive; a pass moves on,
 * or pauses at pause-after, or promotes after the last stage. Whatever goes wrong, the engine tries
 * to leave traffic at a recorded split: rolled back, or held with the reason written down.
 */
import { type JudgeSettings, judgeStage, type Verdict, type VersionCounts } from "../analysis/judge.ts";
import { splitBudget } from "../analysis/sprt.ts";
import type { Command, Config, InconclusivePolicy, UnreachablePolicy } from "../inputs.ts";
import { MeshError } from "../mesh/errors.ts";
import type { PatchOperation } from "../mesh/routes.ts";
import { LeaseHeldError, leaseBlocks, type RolloutState, type StageResult } from "../mesh/state.ts";
import type { Clock } from "./clock.ts";
import type { EventSink, RolloutEvent } from "./events.ts";
import type { MetricsPort, MetricsMark as MetricsStart, TrafficPort, TrafficView } from "./ports.ts";
import type { Result } from "./result.ts";

export interface EngineSettings {
  command: Command;
  stages: readonly number[];
  pauseAfter?: number;
  skipAnalysis: boolean;
  maxErrorRate: number;
  latencyThresholdMs?: number;
  minRequests: number;
  falseRollbackBudget: number;
  minStageDurationMs: number;
  maxStageDurationMs: number;
  intervalMs: number;
  settleMs: number;
  onInconclusive: InconclusivePolicy;
  onUnreachable: UnreachablePolicy;
  rolloutId?: string;
  dryRun: boolean;
}

/** The engine's part of the validated Config. */
export function engineSettings(config: Config): EngineSettings {
  return {
    command: config.command,
    stages: config.stages,
    pauseAfter: config.pauseAfter,
    skipAnalysis: config.skipAnalysis,
    maxErrorRate: config.maxErrorRate,
    latencyThresholdMs: config.latencyThresholdMs,
    minRequests: config.minRequests,
    falseRollbackBudget: config.falseRollbackBudget,
    minStageDurationMs: config.minStageDurationMs,
    maxStageDurationMs: config.maxStageDurationMs,
    intervalMs: config.intervalMs,
    settleMs: config.settleMs,
    onInconclusive: config.onInconclusive,
    onUnreachable: config.onUnreachable,
    rolloutId: config.rolloutId,
    dryRun: config.dryRun,
  };
}

export interface EngineIdentity {
  /** Who holds the lease: the workflow run, e.g. "acme/shop run 123 attempt 1". */
  holder: string;
  commit: string;
  /** The id a new rollout gets. */
  newRolloutId: string;
}

export interface EngineOutcome {
  result: Result;
  weight: number;
  reason: string;
  /** Whether the step must fail (a rollback by the analysis, an error, a refused command). */
  failed: boolean;
  state?: RolloutState;
  /** For dry runs: the patch of each stage. */
  plan?: Array<{ weight: number; patch: PatchOperation[] }>;
}

export interface EnginePorts {
  traffic: TrafficPort;
  metrics?: MetricsPort;
  clock: Clock;
  events: EventSink;
  /** Aborts the run (the job was cancelled): the engine rolls back and stops. */
  signal?: AbortSignal;
}

type StageDecision = "pass" | "fail" | "inconclusive" | "skipped" | "unreachable";

/** A chance of 1 in 100 that a p99 latency limit is passed: the latency signal's H1. */
const MAX_SLOW_FRACTION = 0.01;
const BETA = 0.05;
/** A split this far outside chance means traffic is not going where the weights say. */
const SPLIT_Z_ALARM = 5;

export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandError";
  }
}

export class RolloutEngine {
  private readonly s: EngineSettings;
  private readonly id: EngineIdentity;
  private readonly ports: EnginePorts;
  private readonly where: string;
  /** The stages this run has analysed so far (and earlier runs', when continuing), saved with every write. */
  private stageResults?: StageResult[];

  constructor(settings: EngineSettings, identity: EngineIdentity, ports: EnginePorts, where: string) {
    this.s = settings;
    this.id = identity;
    this.ports = ports;
    this.where = where;
  }

  private now(): string {
    return this.ports.clock.now().toISOString();
  }

  private async emit(event: RolloutEvent): Promise<void> {
    await this.ports.events.emit(event);
  }

  private leaseUntil(): string {
    const ttl = this.s.maxStageDurationMs + this.s.settleMs + 5 * 60_000;
    return new Date(this.ports.clock.now().getTime() + ttl).toISOString();
  }

  private async finish(outcome: EngineOutcome): Promise<EngineOutcome> {
    await this.emit({
      type: "finished",
      at: this.now(),
      result: outcome.result,
      weight: outcome.weight,
      reason: outcome.reason,
      failed: outcome.failed,
    });
    return outcome;
  }

  async run(): Promise<EngineOutcome> {
    switch (this.s.command) {
      case "status":
        return this.status();
      case "rollback":
        return this.requestedRollback();
      case "promote":
        return this.promote();
      default:
        return this.rollout();
    }
  }

  /**
   * For the post step: when rollout `rolloutId` is still progressing (main stopped mid-stage),
   * restore 100 % stable and record why. Undefined when there is nothing to do.
   */
  async abandon(rolloutId: string, reason: string): Promise<EngineOutcome | undefined> {
    const view = await this.ports.traffic.read();
    const state = view.state;
    if (!state || state.rolloutId !== rolloutId || state.status !== "progressing") return undefined;
    const written = await this.rollBack(reason, true);
    return this.finish({ result: "rolled-back", weight: 0, reason, failed: false, state: written });
  }

  /** Tells the reporters what earlier runs of this rollout found, so every report shows every stage. */
  private async replay(state: RolloutState | undefined): Promise<void> {
    for (const result of state?.stageResults ?? [])
      await this.emit({ type: "recorded-stage", at: result.at, result });
  }

  private async status(): Promise<EngineOutcome> {
    const view = await this.ports.traffic.read();
    const state = view.state;
    if (state) {
      await this.emit({
        type: "started",
        at: this.now(),
        command: "status",
        rolloutId: state.rolloutId,
        commit: state.commit,
        stages: state.stages,
        fromStage: state.stageIndex,
        weight: view.weight,
      });
      await this.replay(state);
    }
    const reason = state
      ? `Rollout ${state.rolloutId} of ${state.commit.slice(0, 7)} is ${state.status} at ${view.weight} % canary${state.reason ? `: ${state.reason}` : ""}`
      : `No rollout recorded; the canary gets ${view.weight} %`;
    return this.finish({ result: "unchanged", weight: view.weight, reason, failed: false, state });
  }

  /** `next` for a write: refuses when another live run holds the lease, or when our rollout was ended by someone else. */
  private transition(
    rolloutId: string | undefined,
    change: (previous: RolloutState | undefined, view: TrafficView) => RolloutState,
    override = false,
  ) {
    return (previous: RolloutState | undefined, view: TrafficView): RolloutState => {
      if (!override) {
        const lease = leaseBlocks(previous, this.id.holder, this.ports.clock.now());
        if (lease) throw new LeaseHeldError(this.where, lease);
        if (
          rolloutId &&
          previous?.rolloutId === rolloutId &&
          (previous.status === "rolled-back" || previous.status === "promoted")
        ) {
          throw new CommandError(
            `rollout ${rolloutId} was ${previous.status} by ${previous.history.at(-1)?.holder ?? "another run"} while this run was in it; stopping`,
          );
        }
      }
      return change(previous, view);
    };
  }

  private stateAfter(
    previous: RolloutState,
    patch: Partial<RolloutState>,
    event: string,
    reason?: string,
  ): RolloutState {
    const weight = patch.weight ?? previous.weight;
    return {
      ...previous,
      ...patch,
      ...(this.stageResults ? { stageResults: this.stageResults } : {}),
      updatedAt: this.now(),
      history: [
        ...previous.history,
        { at: this.now(), weight, event, ...(reason ? { reason } : {}), holder: this.id.holder },
      ],
    };
  }

  private async requestedRollback(): Promise<EngineOutcome> {
    const view = await this.ports.traffic.read();
    const state = view.state;
    if (this.s.rolloutId && state && state.rolloutId !== this.s.rolloutId) {
      throw new CommandError(
        `rollback of rollout ${this.s.rolloutId} refused: ${this.where} records rollout ${state.rolloutId} (${state.commit.slice(0, 7)}); nothing was changed`,
      );
    }
    if (view.weight === 0 && (!state || state.status === "rolled-back" || state.status === "promoted")) {
      return this.finish({
        result: "rolled-back",
        weight: 0,
        reason: "All traffic already goes to stable; nothing to roll back",
        failed: false,
        state,
      });
    }
    const reason = `Rollback requested by ${this.id.holder}`;
    const written = await this.rollBack(reason, true);
    return this.finish({ result: "rolled-back", weight: 0, reason, failed: false, state: written });
  }

  /** All traffic to stable, restoring the routes as they were; records why. Overrides leases when asked (a manual rollback). */
  private async rollBack(reason: string, override = false): Promise<RolloutState> {
    return this.ports.traffic.write(
      0,
      this.transition(
        undefined,
        (previous, view) =>
          this.stateAfter(
            previous ?? this.freshState(view),
            { weight: 0, status: "rolled-back", reason, lease: undefined },
            "rolled-back",
            reason,
          ),
        override,
      ),
    );
  }

  private freshState(view: TrafficView): RolloutState {
    const now = this.now();
    return {
      schemaVersion: 1,
      rolloutId: this.id.newRolloutId,
      commit: this.id.commit,
      stages: [...this.s.stages],
      stageIndex: -1,
      weight: view.weight,
      status: "progressing",
      startedAt: now,
      updatedAt: now,
      original: view.original,
      history: [],
    };
  }

  private async promote(): Promise<EngineOutcome> {
    const view = await this.ports.traffic.read();
    const state = view.state;
    if (!state || state.status !== "paused") {
      throw new CommandError(
        `nothing to promote: ${this.where} ${state ? `records rollout ${state.rolloutId} as ${state.status}` : "records no rollout"}, not a paused one; nothing was changed`,
      );
    }
    if (this.s.rolloutId && state.rolloutId !== this.s.rolloutId) {
      throw new CommandError(
        `promote of rollout ${this.s.rolloutId} refused: the paused rollout is ${state.rolloutId} (${state.commit.slice(0, 7)}); nothing was changed`,
      );
    }
    const lease = leaseBlocks(state, this.id.holder, this.ports.clock.now());
    if (lease) throw new LeaseHeldError(this.where, lease);
    await this.emit({
      type: "started",
      at: this.now(),
      command: "promote",
      rolloutId: state.rolloutId,
      commit: state.commit,
      stages: state.stages,
      fromStage: state.stageIndex + 1,
      weight: view.weight,
    });
    await this.replay(state);
    if (this.s.skipAnalysis) {
      const written = await this.ports.traffic.write(
        100,
        this.transition(state.rolloutId, (previous) =>
          this.stateAfter(
            previous ?? state,
            {
              weight: 100,
              stageIndex: state.stages.length - 1,
              status: "promoted",
              reason: "Promoted without analysis",
              lease: undefined,
            },
            "promoted",
            "promoted without analysis",
          ),
        ),
      );
      await this.emit({ type: "weight", at: this.now(), stage: state.stages.length - 1, weight: 100 });
      return this.finish({
        result: "promoted",
        weight: 100,
        reason: `Promoted to 100 % by ${this.id.holder} without analysis`,
        failed: false,
        state: written,
      });
    }
    // A promote is the same run of stages, from the one after the pause, without stopping again.
    return this.runStages(state, state.stageIndex + 1, undefined);
  }

  private async rollout(): Promise<EngineOutcome> {
    const view = await this.ports.traffic.read();
    let state = view.state;
    const live = state && (state.status === "progressing" || state.status === "paused");
    if (live && state) {
      const lease = leaseBlocks(state, this.id.holder, this.ports.clock.now());
      if (lease) throw new LeaseHeldError(this.where, lease);
    }
    if (live && state && state.commit === this.id.commit) {
      if (state.status === "paused") {
        const reason = `Rollout ${state.rolloutId} is paused at ${view.weight} %; continue it with command: promote, or end it with command: rollback`;
        return this.finish({ result: "paused", weight: view.weight, reason, failed: false, state });
      }
      // A run that died mid-stage (its lease expired): continue where it was, analysing that stage again.
      await this.emit({
        type: "warning",
        at: this.now(),
        message: `Continuing rollout ${state.rolloutId} from stage ${state.stageIndex + 1}, where an earlier run stopped`,
      });
      return this.startStages(state, Math.max(state.stageIndex, 0), view);
    }
    if (!live && view.weight > 0) {
      throw new CommandError(
        `the canary already gets ${view.weight} % of traffic${state ? ` (rollout ${state.rolloutId} was ${state.status})` : ""}; a new rollout would move it back abruptly. Swap stable-subset and canary-subset for the next release, or run command: rollback first`,
      );
    }
    const fresh = this.freshState(view);
    if (live && state) {
      fresh.history.push({
        at: this.now(),
        weight: view.weight,
        event: "superseded",
        reason: `rollout ${state.rolloutId} of ${state.commit.slice(0, 7)} replaced by a rollout of ${this.id.commit.slice(0, 7)}`,
      });
      // Keep what the routes looked like before the superseded rollout began.
      fresh.original = state.original;
      state = undefined;
    }
    return this.startStages(fresh, 0, view);
  }

  private async startStages(state: RolloutState, from: number, view: TrafficView): Promise<EngineOutcome> {
    await this.emit({
      type: "started",
      at: this.now(),
      command: this.s.command,
      rolloutId: state.rolloutId,
      commit: state.commit,
      stages: state.stages,
      fromStage: from,
      weight: view.weight,
    });
    await this.replay(state);
    if (this.s.dryRun) return this.dryRun(state, from);
    return this.runStages(state, from, this.s.pauseAfter);
  }

  private async dryRun(state: RolloutState, from: number): Promise<EngineOutcome> {
    const plan: Array<{ weight: number; patch: PatchOperation[] }> = [];
    for (const weight of state.stages.slice(from)) {
      const patch = await this.ports.traffic.plan(weight, (previous, view) =>
        this.stateAfter(
          previous ?? { ...state, original: view.original },
          { weight, status: "progressing" },
          "dry-run",
        ),
      );
      plan.push({ weight, patch });
    }
    return this.finish({
      result: "unchanged",
      weight: (await this.ports.traffic.read()).weight,
      reason: `Dry run: ${plan.length} stages planned, nothing written`,
      failed: false,
      state,
      plan,
    });
  }

  private async runStages(
    initial: RolloutState,
    from: number,
    pauseAfter: number | undefined,
  ): Promise<EngineOutcome> {
    let state = initial;
    // A stage analysed again (a run that continues an interrupted one) replaces its earlier result.
    this.stageResults = (initial.stageResults ?? []).filter((r) => r.stage < from);
    const alphas = splitBudget(this.s.falseRollbackBudget, state.stages);
    const baseline: VersionCounts = {
      requests: state.baseline?.requests ?? 0,
      errors: state.baseline?.errors ?? 0,
      slow: state.baseline?.slow,
    };
    for (let index = from; index < state.stages.length; index++) {
      const weight = state.stages[index] as number;
      try {
        state = await this.ports.traffic.write(
          weight,
          this.transition(state.rolloutId, (previous, view) =>
            this.stateAfter(
              previous && previous.rolloutId === state.rolloutId
                ? previous
                : { ...state, original: state.original.length > 0 ? state.original : view.original },
              {
                weight,
                stageIndex: index,
                status: "progressing",
                reason: undefined,
                lease: { holder: this.id.holder, expiresAt: this.leaseUntil() },
              },
              `stage ${index + 1}`,
            ),
          ),
        );
      } catch (error) {
        return this.onWriteFailure(error, state, index);
      }
      await this.emit({ type: "weight", at: this.now(), stage: index, weight });
      const started = this.ports.clock.now().getTime();
      let verdict: Verdict | undefined;
      let decision: StageDecision | "aborted";
      let reason: string;
      try {
        ({ verdict, decision, reason } = await this.analyse(
          index,
          weight,
          alphas[index] as number,
          baseline,
        ));
      } catch (error) {
        if (!this.ports.signal?.aborted) throw error;
        decision = "aborted";
        reason = `The job was cancelled during stage ${index + 1} (${weight} %)`;
      }
      const durationMs = this.ports.clock.now().getTime() - started;
      await this.emit({
        type: "stage-end",
        at: this.now(),
        stage: index,
        weight,
        durationMs,
        verdict,
        decision,
        reason,
      });
      this.stageResults.push({
        stage: index,
        weight,
        decision,
        reason,
        at: this.now(),
        durationMs,
        ...(verdict?.canary ? { canary: verdict.canary } : {}),
        ...(verdict?.stable ? { stable: verdict.stable } : {}),
      });
      if (verdict?.stable) {
        baseline.requests += verdict.stable.requests;
        baseline.errors += verdict.stable.errors;
        if (verdict.stable.slow !== undefined) baseline.slow = (baseline.slow ?? 0) + verdict.stable.slow;
      }

      const ending = this.ending(decision, weight, reason);
      if (ending?.action === "rollback") {
        const written = await this.rollBackOrExplain(ending.why, state, weight);
        return this.finish({
          result: "rolled-back",
          weight: 0,
          reason: ending.why,
          failed: true,
          state: written,
        });
      }
      if (ending?.action === "pause") {
        state = await this.pause(state, weight, ending.why);
        return this.finish({ result: "paused", weight, reason: ending.why, failed: ending.failed, state });
      }
      const last = index === state.stages.length - 1;
      if (last) {
        state = await this.ports.traffic.write(
          weight,
          this.transition(state.rolloutId, (previous) =>
            this.stateAfter(
              previous ?? state,
              { status: "promoted", reason: "All stages passed", lease: undefined, baseline },
              "promoted",
            ),
          ),
        );
        return this.finish({
          result: "promoted",
          weight,
          reason: `All ${state.stages.length} stages passed; the canary gets 100 %`,
          failed: false,
          state,
        });
      }
      if (pauseAfter === weight) {
        state = await this.pause(
          state,
          weight,
          `Stage ${index + 1} (${weight} %) passed; paused as pause-after asks`,
          baseline,
        );
        return this.finish({
          result: "paused",
          weight,
          reason: `Paused at ${weight} % after the stage passed; continue with command: promote`,
          failed: false,
          state,
        });
      }
    }
    // Only reached when `from` is past the last stage (a promote of a rollout already at its end).
    return this.finish({
      result: "promoted",
      weight: state.weight,
      reason: "No stages left",
      failed: false,
      state,
    });
  }

  /** What a stage's decision means for the rollout, by the policies; undefined: go on. */
  private ending(
    decision: StageDecision | "aborted",
    weight: number,
    reason: string,
  ): { action: "rollback" | "pause"; why: string; failed: boolean } | undefined {
    switch (decision) {
      case "fail":
        return { action: "rollback", why: `Failed at ${weight} %: ${reason}`, failed: true };
      case "aborted":
        return { action: "rollback", why: reason, failed: true };
      case "inconclusive":
        return this.s.onInconclusive === "rollback"
          ? { action: "rollback", why: `Inconclusive at ${weight} %: ${reason}`, failed: true }
          : {
              action: "pause",
              why: `Inconclusive at ${weight} %, paused (on-inconclusive: pause): ${reason}`,
              failed: false,
            };
      case "unreachable":
        return this.s.onUnreachable === "rollback"
          ? {
              action: "rollback",
              why: `Rolled back at ${weight} % because the metrics could not be read: ${reason}`,
              failed: true,
            }
          : { action: "pause", why: `Held at ${weight} % (on-unreachable: hold): ${reason}`, failed: true };
      default:
        return undefined;
    }
  }

  private async pause(
    state: RolloutState,
    weight: number,
    reason: string,
    baseline?: VersionCounts,
  ): Promise<RolloutState> {
    return this.ports.traffic.write(
      weight,
      this.transition(state.rolloutId, (previous) =>
        this.stateAfter(
          previous ?? state,
          { status: "paused", reason, lease: undefined, ...(baseline ? { baseline } : {}) },
          "paused",
          reason,
        ),
      ),
    );
  }

  /** Rolls back; when even that fails, says where traffic was left, for the post step and the people. */
  private async rollBackOrExplain(
    reason: string,
    state: RolloutState,
    weight: number,
  ): Promise<RolloutState | undefined> {
    try {
      return await this.rollBack(reason);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      await this.emit({
        type: "warning",
        at: this.now(),
        message: `Rollback failed (${why}); traffic was left at ${weight} % canary for rollout ${state.rolloutId}. The post step retries; or run command: rollback`,
      });
      throw new MeshError(
        `${reason}; then the rollback failed: ${why}. Traffic may still be at ${weight} % canary`,
      );
    }
  }

  private async onWriteFailure(error: unknown, state: RolloutState, index: number): Promise<EngineOutcome> {
    if (error instanceof LeaseHeldError || error instanceof CommandError) throw error;
    const why = `Could not set stage ${index + 1} (${state.stages[index]} %): ${error instanceof Error ? error.message : String(error)}`;
    if (this.s.onUnreachable === "hold") {
      await this.emit({
        type: "warning",
        at: this.now(),
        message: `${why}; holding at ${state.weight} % (on-unreachable: hold)`,
      });
      return this.finish({
        result: "paused",
        weight: state.weight,
        reason: `${why}; held at ${state.weight} %`,
        failed: true,
        state,
      });
    }
    const written = await this.rollBackOrExplain(why, state, state.weight);
    return this.finish({ result: "rolled-back", weight: 0, reason: why, failed: true, state: written });
  }

  private judgeSettings(alpha: number): JudgeSettings {
    return {
      maxErrorRate: this.s.maxErrorRate,
      latencyThresholdMs: this.s.latencyThresholdMs,
      maxSlowFraction: MAX_SLOW_FRACTION,
      minRequests: this.s.minRequests,
      minStageDurationMs: this.s.minStageDurationMs,
      maxStageDurationMs: this.s.maxStageDurationMs,
      alpha,
      beta: BETA,
    };
  }

  /** One stage's analysis: settle, count from there, ask the judge every interval. */
  private async analyse(
    index: number,
    weight: number,
    alpha: number,
    baseline: VersionCounts,
  ): Promise<{ verdict?: Verdict; decision: StageDecision; reason: string }> {
    const { clock, metrics, signal } = this.ports;
    if (this.s.skipAnalysis || !metrics) {
      await clock.sleep(this.s.minStageDurationMs, signal);
      return { decision: "skipped", reason: "analysis skipped (skip-analysis)" };
    }
    await clock.sleep(this.s.settleMs, signal);
    const settings = this.judgeSettings(alpha);
    const unreachableBoundMs = 3 * this.s.intervalMs;
    let start: MetricsStart | undefined;
    let failingSince: number | undefined;
    let alarmed = false;
    const analysisStart = clock.now().getTime();
    for (;;) {
      const now = clock.now();
      const elapsedMs = now.getTime() - analysisStart;
      let verdict: Verdict;
      if (!start) {
        try {
          start = await metrics.start(now);
          verdict = { decision: "continue", rule: "waiting", reason: "Counting from now", signals: [] };
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          verdict = judgeStage(
            {
              weight,
              elapsedMs,
              observation: {
                ok: false,
                problem: (error as { problem?: string }).problem ?? "unreachable",
                message,
              },
            },
            settings,
          );
        }
      } else {
        const observation = await metrics.observeSince(start, now);
        const stableBaseline = {
          requests: baseline.requests + (observation.ok ? (observation.stable?.requests ?? 0) : 0),
          errors: baseline.errors + (observation.ok ? (observation.stable?.errors ?? 0) : 0),
          ...(this.s.latencyThresholdMs !== undefined
            ? { slow: (baseline.slow ?? 0) + (observation.ok ? (observation.stable?.slow ?? 0) : 0) }
            : {}),
        };
        verdict = judgeStage(
          {
            weight,
            elapsedMs,
            observation,
            stableBaseline: stableBaseline.requests > 0 ? stableBaseline : undefined,
          },
          settings,
        );
      }
      await this.emit({ type: "analysis", at: now.toISOString(), stage: index, weight, elapsedMs, verdict });

      if (verdict.rule === "metrics-error") {
        failingSince ??= now.getTime();
        if (now.getTime() - failingSince >= unreachableBoundMs && verdict.decision === "continue") {
          return {
            verdict,
            decision: "unreachable",
            reason: `${verdict.reason} (for ${Math.round((now.getTime() - failingSince) / 1000)} s)`,
          };
        }
      } else failingSince = undefined;

      const split = verdict.split;
      if (
        !alarmed &&
        split &&
        Math.abs(split.zScore) > SPLIT_Z_ALARM &&
        (verdict.canary?.requests ?? 0) + (verdict.stable?.requests ?? 0) >= 200
      ) {
        alarmed = true;
        await this.emit({
          type: "warning",
          at: now.toISOString(),
          message: `The canary got ${(split.observedShare * 100).toFixed(1)} % of requests at weight ${weight} %, far outside chance (z = ${split.zScore.toFixed(1)}): is the VirtualService applied to this traffic, and do the pods have their sidecar?`,
        });
      }
      if (verdict.decision !== "continue")
        return { verdict, decision: verdict.decision, reason: verdict.reason };
      await clock.sleep(this.s.intervalMs, signal);
    }
  }
}
