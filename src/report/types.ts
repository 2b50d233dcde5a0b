/**
 * The report's model, shared by its builder (model.ts), its headline (headline.ts) and its renderers:
 * at the bottom of the folder, so none of them import each other in a loop.
 */
import type { VersionCounts } from "../analysis/types.ts";
import type { CustomCheckResult } from "../rollout/custom-checks.ts";
import type { Result } from "../rollout/result.ts";

/** What made a stage fail, in the terms the headline uses. */
export interface Harm {
  signal: "errors" | "latency";
  /** harm-limit: above the limit; harm-stable: worse than stable by more than max-ratio-to-stable. */
  rule: "harm-limit" | "harm-stable";
  limit: number;
  /** Convicted for a change in its latest windows (the judge's `late`): the rates over the rollout look fine. */
  late?: boolean;
  /** The two versions' rates over the windows both served (the comparison harm-stable made). */
  pairedCanaryRate?: number;
  stableRate?: number;
}

/** The settings a headline names; both optional (a report built without them omits the figure). */
export interface HeadlineSettings {
  maxErrorRate?: number;
  maxRatio?: number;
}

export interface StageRow {
  index: number;
  weight: number;
  decision?: "pass" | "fail" | "inconclusive" | "skipped" | "unreachable" | "aborted" | "halted" | "running";
  reason?: string;
  startedAt?: string;
  durationMs?: number;
  canary?: VersionCounts;
  stable?: VersionCounts;
  /** The limit the canary is tested against (max-error-rate) and the stable baseline rate used. */
  limit?: number;
  baseline?: number;
  /** The stable version's observed rate the test compared with (earlier stages' when stable had no traffic). */
  stableBaselineRate?: number;
  /** Log-likelihood ratio and the rejection boundary, for the record. */
  llr?: number;
  rejectAt?: number;
  latency?: { canarySlow: number; stableSlow?: number };
  /** What made the stage fail, for the headline's plain why. */
  harm?: Harm;
}

/** One commit of the release, as GitHub's compare answered it (the text is untrusted, unescaped). */
export interface ListedCommit {
  sha: string;
  /** The message's first line, cut to a readable length. */
  title: string;
  /** The git author's name. */
  author: string;
  /** The GitHub account GitHub matched the author to, when it did. */
  login?: string;
}

/**
 * The commits between the last promoted release and this one (GitHub's compare API), or why there is
 * no list: what a reader of a rollback needs to find who can fix it, and a promotion's release notes.
 */
export type CommitList =
  /** The record names no promoted release: nothing to compare with. */
  | { kind: "first" }
  /** Asked, not answered yet. */
  | { kind: "pending"; base: string; head: string }
  /** Not listed, and why (no token, a record that is not a sha, GitHub's error or an answer that does not add up). */
  | { kind: "unavailable"; why: string }
  | {
      kind: "listed";
      base: string;
      head: string;
      /** GitHub's `status` of head compared with base. */
      status: "ahead" | "behind" | "diverged" | "identical";
      /** Commits in this release and not in the last promoted one (GitHub's `total_commits`). */
      total: number;
      /** Commits of the last promoted release that this one lacks (`behind_by`). */
      behindBy: number;
      /** The newest commits, newest first, at most MAX_LISTED_COMMITS. */
      commits: ListedCommit[];
      /** GitHub's compare page, built from the checked shas (not GitHub's `html_url`). */
      compareUrl: string;
      /** Where each commit's page is: `${commitUrl}/${sha}`. */
      commitUrl: string;
    };

export interface ReportModel {
  schema: 1;
  namespace: string;
  virtualService: string;
  command?: string;
  rolloutId?: string;
  commit?: string;
  stagesPlanned: number[];
  stages: StageRow[];
  result?: Result;
  /** The engine's reason for the outcome, as it said it. */
  reason?: string;
  /** The sentence that leads the report: the outcome, the counts and rates, the limit (./headline.ts). */
  headline?: string;
  failed: boolean;
  weight: number;
  warnings: string[];
  startedAt?: string;
  updatedAt?: string;
  links: { run?: string; prometheus?: { canary: string; stable: string } };
  latencyThresholdMs?: number;
  /**
   * With finalize: copy, whether the promotion was finalized (the stable Deployment runs the
   * promoted version and carries all traffic); undefined when no finalization was due.
   */
  finalized?: boolean;
  /** The finalization's steps as they happened (copy, stable ready, traffic back, canary scaled). */
  finalization: string[];
  /** `command: preview`: the header (and value) whose requests reach the canary, and the routes added. */
  preview?: { header: string; value: string; routes: string[] };
  next: string[];
  /** Custom checks' latest standing (issue 23); absent without checks. */
  checks?: CustomCheckResult[];
  /** The commits since the last promoted release; absent where no rollout started (status). */
  commits?: CommitList;
}
