/** What the engine tells the reporters, in order. One renderer turns these into every report. */
import type { Verdict } from "../analysis/judge.ts";
import type { Command } from "./command.ts";
import type { CustomCheckResult } from "./custom-checks.ts";
import type { StageResult } from "./model/state.ts";
import type { Result } from "./result.ts";

export type RolloutEvent =
  | {
      type: "started";
      at: string;
      command: Command;
      rolloutId: string;
      commit: string;
      /** The last promoted release's commit, as the record carries it (unchecked: see model/state.ts). */
      promotedCommit?: string;
      stages: number[];
      fromStage: number;
      weight: number;
    }
  /** Sent before a weight is written, so the post step knows to clean up even if the write is the last thing this process does. */
  | { type: "moving"; at: string; rolloutId: string; stage: number; weight: number }
  | { type: "weight"; at: string; stage: number; weight: number }
  /**
   * The last stage passed (or was promoted by on-inconclusive), before anything is written about
   * it: from here on nothing may roll the canary back, so the post step is told at once.
   */
  | { type: "passed"; at: string; rolloutId: string; reason: string; finalize: boolean }
  | { type: "analysis"; at: string; stage: number; weight: number; elapsedMs: number; verdict: Verdict }
  | {
      type: "stage-end";
      at: string;
      stage: number;
      weight: number;
      durationMs: number;
      verdict?: Verdict;
      decision: "pass" | "fail" | "inconclusive" | "skipped" | "unreachable" | "aborted" | "halted";
      reason: string;
    }
  /** A stage an earlier run analysed, from the state on the VirtualService. */
  | { type: "recorded-stage"; at: string; result: StageResult }
  | { type: "warning"; at: string; message: string }
  /** `command: preview` added (or found) the preview routes: requests with `header: value` reach the canary. */
  | { type: "preview"; at: string; header: string; value: string; routes: string[] }
  /** Every custom check's standing after a read (issue 23). */
  | { type: "checks"; at: string; stage: number; checks: CustomCheckResult[] }
  /** A step of finalizing a promotion onto the stable Deployment, or of readying the canary before stage 1. */
  | { type: "finalize"; at: string; step: FinalizeStep; message: string }
  | {
      type: "finished";
      at: string;
      result: Result;
      weight: number;
      reason: string;
      failed: boolean;
      /** With finalize: copy, whether the promotion was finalized (undefined when no finalization was due). */
      finalized?: boolean;
    };

export type FinalizeStep =
  | "started"
  | "copied"
  | "stable-ready"
  | "traffic-on-stable"
  | "canary-scaled-down"
  | "failed"
  | "canary-scaled-up";

export interface EventSink {
  emit(event: RolloutEvent): void | Promise<void>;
}
