/**
 * The action's two steps. Each catches everything and ends in `core.setFailed` with a one-line
 * reason; importing this module does no work.
 */
import * as core from "@actions/core";
import { runAction } from "./action.ts";
import { removeLeftPreview, runCleanup } from "./action-post.ts";
import { Output } from "./constants.ts";
import { errorMessage, errorStack } from "./error-message.ts";
import { getConfig } from "./inputs/config.ts";
import { scrub } from "./redact.ts";
import { runContext } from "./run-context.ts";
import {
  getInFlight,
  getLastMove,
  getPreviewAdded,
  markMainStarted,
  savePreviewAdded,
} from "./state-helper.ts";

/** One line for `core.setFailed`: the runner shows it as the step's annotation. */
export function oneLine(error: unknown): string {
  return (
    errorMessage(error)
      .replace(/\s*\n\s*/g, " ")
      .trim() || "unknown error"
  );
}

/**
 * Cancelling a run sends SIGINT, then SIGTERM 7.5 s later, then kills the process: the first
 * signal aborts the engine, which rolls back at once; the post step covers what is left undone.
 */
function cancellation(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    core.warning(`Received ${name}: the job is being cancelled; rolling back to 100 % stable`);
    controller.abort(new Error(`cancelled by ${name}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

async function writeSummary(markdown: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  try {
    await core.summary.addRaw(markdown, true).write();
  } catch (error) {
    core.warning(scrub(`Could not write the job summary: ${oneLine(error)}`));
  }
}

export async function run(): Promise<void> {
  markMainStarted();
  const { signal, dispose } = cancellation();
  try {
    const config = getConfig();
    const { outcome, report, markdown } = await runAction(config, runContext(), signal);
    core.setOutput(Output.result, outcome.result);
    core.setOutput(Output.canaryWeight, String(outcome.weight));
    core.setOutput(Output.finalized, String(outcome.finalized === true));
    core.setOutput(Output.report, JSON.stringify(report));
    if (outcome.preview) {
      core.setOutput(Output.previewHeader, outcome.preview.header);
      core.setOutput(Output.previewValue, outcome.preview.value);
      savePreviewAdded(outcome.preview);
    }
    core.setOutput(Output.checks, JSON.stringify(report.checks ?? []));
    await writeSummary(markdown);
    // The error line leads with what the report leads with: the outcome, the counts, the limit.
    if (outcome.failed) core.setFailed(scrub(oneLine(report.headline ?? outcome.reason)));
  } catch (error) {
    core.setFailed(scrub(oneLine(error)));
    debugStack(error);
  } finally {
    dispose();
  }
}

export async function runPost(): Promise<void> {
  const inFlight = getInFlight();
  const lastMove = inFlight ?? getLastMove();
  const preview = getPreviewAdded();
  if (!lastMove && preview) {
    await runPreviewPost(preview);
    return;
  }
  if (!lastMove) {
    core.info("The main step moved no traffic: the post step has nothing of this job's to undo");
    return;
  }
  try {
    const config = getConfig();
    // After a pass the post step only records it (never a rollback), whatever rollback-on-cancel says.
    if (inFlight && !config.rollbackOnCancel && !inFlight.passed) {
      core.warning(
        `The main step stopped at ${inFlight.weight} % canary (stage ${inFlight.stage + 1}); rollback-on-cancel is false, so traffic stays there`,
      );
      return;
    }
    const { outcome, note } = await runCleanup(config, runContext(), lastMove, inFlight !== undefined);
    if (outcome) {
      core.warning(scrub(note));
      core.setOutput(Output.result, outcome.result);
      core.setOutput(Output.canaryWeight, String(outcome.weight));
    } else core.info(scrub(note));
  } catch (error) {
    // After a clean end the check of the routes is a safety net: failing to make it does not fail
    // a job that succeeded; it is said, with what to do.
    if (inFlight) core.setFailed(scrub(oneLine(error)));
    else
      core.warning(
        scrub(
          `The post step could not check that every managed route left the canary as the main step ended it: ${oneLine(error)}. Run command: status to see where traffic is`,
        ),
      );
    debugStack(error);
  }
}

/** After `command: preview`: the preview route goes unless a rollout of this job took it over. */
async function runPreviewPost(preview: { header: string; value: string }): Promise<void> {
  try {
    core.info(scrub(await removeLeftPreview(getConfig(), preview)));
  } catch (error) {
    core.setFailed(scrub(`The post step could not remove the preview route: ${oneLine(error)}`));
    debugStack(error);
  }
}

/**
 * The stack of an error for the debug log, after its error line. Only with step debugging on
 * (RUNNER_DEBUG): mapping the stack parses the bundle's 2.7 MB source map, about 0.4 s of CPU that
 * a run whose debug lines nobody shows would spend for nothing.
 */
function debugStack(error: unknown): void {
  if (core.isDebug()) core.debug(scrub(errorStack(error)));
}
