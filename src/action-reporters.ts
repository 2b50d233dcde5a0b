/**
 * The engine's event sink in the action: keeps the events for the report, prints progress, tells
 * the post step what is in flight, and updates the PR comment in the background.
 */
import * as core from "@actions/core";
import type { CommitLister } from "./report/commits-github.ts";
import type { GitHubReporter } from "./report/github.ts";
import type { ReportModel } from "./report/model.ts";
import { progressLine } from "./report/progress.ts";
import type { EventSink, RolloutEvent } from "./rollout/events.ts";
import { clearInFlight, type InFlight, recordInFlight } from "./state-helper.ts";

/** Collects events, prints progress, keeps the post step informed, and updates GitHub. */
export class Reporters implements EventSink {
  readonly events: RolloutEvent[] = [];
  private stages = 0;
  private inFlight: InFlight | undefined;
  private readonly github: GitHubReporter | undefined;
  private readonly render: () => { model: ReportModel; markdown: string };
  private readonly commits: CommitLister | undefined;
  private started = false;
  constructor(
    github: GitHubReporter | undefined,
    render: () => { model: ReportModel; markdown: string },
    commits?: CommitLister,
  ) {
    this.github = github;
    this.render = render;
    this.commits = commits;
  }

  /** Sends the report again when something came that no event brought (GitHub's list of commits). */
  refresh(): void {
    if (!this.github || !this.started) return;
    const { model, markdown } = this.render();
    this.github.update(model, markdown);
  }

  async emit(event: RolloutEvent): Promise<void> {
    this.events.push(event);
    if (event.type === "started") {
      this.stages = event.stages.length;
      this.started = true;
      // Asked in the background now, so the list is there when the rollout ends (a `status` reports none).
      if (event.command !== "status") this.commits?.start(event.promotedCommit, event.commit);
    }
    if (event.type === "analysis" || event.type === "stage-end")
      core.debug(
        `${event.type} at ${event.weight} %: ${JSON.stringify(event.type === "analysis" ? event.verdict : event)}`,
      );
    const headline = event.type === "finished" ? this.render().model.headline : undefined;
    const line = progressLine(event, this.stages, headline);
    if (line) (event.type === "warning" ? core.warning : core.info)(line);
    // The post step must know of a weight before it is written: a kill right after the write
    // leaves no chance to say so afterwards.
    if (event.type === "moving") {
      this.inFlight = { rolloutId: event.rolloutId, weight: event.weight, stage: event.stage };
      recordInFlight(this.inFlight);
    }
    // A pass is never undone: a kill from here on leaves the post step only the pass to record.
    if (event.type === "passed" && this.inFlight) {
      this.inFlight = { ...this.inFlight, passed: { reason: event.reason, finalize: event.finalize } };
      recordInFlight(this.inFlight);
    }
    if (event.type === "finished") {
      this.inFlight = undefined;
      clearInFlight();
    }
    // The comment is updated when something a person cares about changes, not at every interval.
    if (this.github && (event.type === "weight" || event.type === "stage-end" || event.type === "finished")) {
      const { model, markdown } = this.render();
      // Returns at once: the report goes out in the background and never holds a traffic decision.
      this.github.update(model, markdown);
    }
  }
}
