/** What every part of the engine shares: the settings, who this run is, the ports, and the outcome type. */
import type { AnalysisSettings } from "../analysis/types.ts";
import type { Command } from "./command.ts";
import type { CustomChecksPort } from "./custom-checks.ts";
import type {
  FinalizeConfig,
  InconclusivePolicy,
  PreviewConfig,
  SplitPolicy,
  UnreachablePolicy,
} from "./model/settings.ts";
import type { RolloutState } from "./model/state.ts";
import type {
  Clock,
  EventSink,
  MetricsPort,
  PlannedPatch,
  RolloutEvent,
  RunStatusPort,
  TrafficPort,
  WorkloadPort,
} from "./ports.ts";
import type { Result } from "./result.ts";
import { type Recorder, stateAfter } from "./transitions.ts";

export interface EngineSettings {
  command: Command;
  stages: readonly number[];
  pauseAfter?: number;
  skipAnalysis: boolean;
  /** The analysis inputs, handed to the judge as one object (src/action.ts builds it once). */
  analysis: AnalysisSettings;
  intervalMs: number;
  settleMs: number;
  onInconclusive: InconclusivePolicy;
  onUnreachable: UnreachablePolicy;
  /** Routes already split with no live rollout: continue from the next stage above, or restart. */
  onSplit: SplitPolicy;
  rollbackOnCancel: boolean;
  rolloutId?: string;
  dryRun: boolean;
  /** What a promotion does to the Deployments (issue 14). */
  finalize: FinalizeConfig;
  /** `command: preview`'s header and value (issue 23). */
  preview: PreviewConfig;
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
  /** The promotion was finalized: the stable Deployment runs the canary's template and carries all traffic. */
  finalized?: boolean;
  /** `command: preview`: the header and value that reach the canary. */
  preview?: { header: string; value: string };
  /** For dry runs: the patch of each stage. */
  plan?: Array<{ weight: number; patches: PlannedPatch[] }>;
}

export interface EnginePorts {
  traffic: TrafficPort;
  metrics?: MetricsPort;
  /** Custom checks (issue 23), judged beside the built-in signals. */
  checks?: CustomChecksPort;
  /** The Deployments behind the versions; without it (or with finalize: none) a promotion ends at 100 % canary. */
  workloads?: WorkloadPort;
  clock: Clock;
  events: EventSink;
  /** Whether a lease holder's workflow run is over (GitHub), to take over a dead run's lease at once. */
  runs?: RunStatusPort;
  /** Aborts the run (the job was cancelled): the engine rolls back and stops. */
  signal?: AbortSignal;
}

/** The shared context, with the small helpers every part uses. */
export class EngineContext implements Recorder {
  readonly settings: EngineSettings;
  readonly id: EngineIdentity;
  readonly ports: EnginePorts;
  readonly where: string;
  readonly holder: string;

  constructor(settings: EngineSettings, identity: EngineIdentity, ports: EnginePorts, where: string) {
    this.settings = settings;
    this.id = identity;
    this.ports = ports;
    this.where = where;
    this.holder = identity.holder;
  }

  now(): string {
    return this.ports.clock.now().toISOString();
  }

  async emit(event: RolloutEvent): Promise<void> {
    await this.ports.events.emit(event);
  }

  after(previous: RolloutState, patch: Partial<RolloutState>, event: string, reason?: string): RolloutState {
    return stateAfter(this, previous, patch, event, reason);
  }

  leaseUntil(): string {
    const ttl = this.settings.analysis.maxStageDurationMs + this.settings.settleMs + 5 * 60_000;
    return new Date(this.ports.clock.now().getTime() + ttl).toISOString();
  }

  /** Whether a promotion copies the canary onto the stable Deployment (copy, or auto with one Deployment per version). */
  get finalizing(): boolean {
    return this.settings.finalize.policy !== "none" && this.ports.workloads !== undefined;
  }

  async finish(outcome: EngineOutcome): Promise<EngineOutcome> {
    await this.emit({
      type: "finished",
      at: this.now(),
      result: outcome.result,
      weight: outcome.weight,
      reason: outcome.reason,
      failed: outcome.failed,
      ...(outcome.finalized !== undefined ? { finalized: outcome.finalized } : {}),
    });
    return outcome;
  }
}
