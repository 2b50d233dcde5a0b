/**
 * The post step: after main stopped in the middle of a stage (cancelled or crashed), or ended with
 * a rollback some VirtualService refused, it restores 100 % stable and reports why; after a pass it
 * only records the pass.
 */
import { describeVirtualServices, meshApiFor, trafficPortFor } from "./action-ports.ts";
import { REPORT_FLUSH_ON_CANCEL_MS } from "./constants.ts";
import type { Config } from "./inputs/types.ts";
import { createGitHubReporter } from "./report/github.ts";
import { renderMarkdown } from "./report/markdown.ts";
import { buildReport } from "./report/model.ts";
import { systemClock } from "./rollout/clock.ts";
import { type EngineOutcome, RolloutEngine } from "./rollout/engine.ts";
import type { RolloutEvent } from "./rollout/events.ts";
import { isLive } from "./rollout/model/state.ts";
import type { TrafficView } from "./rollout/ports.ts";
import type { RunContext } from "./run-context.ts";
import { engineSettings } from "./settings.ts";
import type { InFlight } from "./state-helper.ts";

export interface Cleanup {
  /** What the post step wrote, when it restored 100 % stable. */
  outcome?: EngineOutcome;
  /** One line for the log: what it did, or why nothing was left to do. */
  note: string;
}

/**
 * The post step's work. `inFlight`: main stopped in the middle of a stage; otherwise `lastMove` is
 * the last weight main moved to before it ended. Either way the routes decide, not the saved
 * state: when any VirtualService is still on the canary in a rollout that is progressing there
 * (main stopped, or one of several refused the rollback until main ended), restore 100 % stable
 * and record why.
 */
export async function runCleanup(
  config: Config,
  context: RunContext,
  lastMove: InFlight,
  inFlight: boolean,
): Promise<Cleanup> {
  const traffic = trafficPortFor(meshApiFor(config), config);
  const events: RolloutEvent[] = [];
  const engine = new RolloutEngine(
    { ...engineSettings(config), command: "rollback", dryRun: false },
    { holder: context.holder, commit: context.commit, newRolloutId: "" },
    { traffic, clock: systemClock, events: { emit: (e) => void events.push(e) } },
    describeVirtualServices(config),
  );
  const several = config.virtualServices.length > 1;
  const reason = (left: string) =>
    inFlight
      ? `The job stopped during stage ${lastMove.stage + 1} (${lastMove.weight} % canary), cancelled or crashed; the post step restored 100 % stable${several ? `; left on the canary: ${left}` : ""}`
      : `The main step ended rollout ${lastMove.rolloutId} with a rollback, but ${left} had not taken it (refused until the main step ended); the post step restored 100 % stable`;
  // After the last stage passed nothing rolls the canary back: the pass is recorded if main could not.
  const outcome = lastMove.passed
    ? await engine.recordPass(lastMove.rolloutId, lastMove.passed.reason, lastMove.passed.finalize)
    : await engine.abandon(lastMove.rolloutId, reason, [lastMove.weight], !inFlight);
  if (!outcome) return { note: leftAsItIs(await traffic.read()) };
  const github = createGitHubReporter(config, {
    ...context,
    commit: outcome.state?.commit ?? context.commit,
  });
  const model = buildReport(events, {
    namespace: config.namespace,
    virtualService: config.virtualService,
    runUrl: context.runUrl,
  });
  github?.update(model, renderMarkdown(model));
  await github?.flush(REPORT_FLUSH_ON_CANCEL_MS);
  return { outcome, note: outcome.reason };
}

/** Why the post step left the routes alone: all on stable, or on the canary as recorded. */
function leftAsItIs(view: TrafficView): string {
  if (view.weights.every((w) => w === 0))
    return "Every managed route sends all traffic to stable: nothing to clean up";
  const state = view.state;
  const recorded = state
    ? `rollout ${state.rolloutId} is recorded as ${state.status}`
    : "no rollout is recorded";
  return `The managed routes send ${view.weights.join(", ")} % to the canary and ${recorded}: the post step leaves them as they are (a paused or promoted rollout, another run's, or someone else's weights)`;
}

/**
 * The post step of `command: preview`: removes the preview route main added (the same header and
 * value), unless a rollout is live on the VirtualService (it keeps or removes the route itself).
 * A job that failed or was cancelled before its rollout leaves no preview behind.
 */
export async function removeLeftPreview(
  config: Config,
  added: { header: string; value: string },
): Promise<string> {
  const traffic = trafficPortFor(meshApiFor(config), config);
  const view = await traffic.read();
  const found = view.preview;
  if (!found) return "No preview route is left: nothing to clean up";
  if (found.header !== added.header || found.value !== added.value)
    return `The preview route on the VirtualService is for ${found.header}: ${found.value}, not this job's: left as it is`;
  if (isLive(view.state))
    return `Rollout ${view.state.rolloutId} is ${view.state.status}: it keeps or removes the preview route itself`;
  const removed = (await traffic.removePreview?.()) ?? [];
  return `The post step removed the preview route (${removed.join(", ") || "already gone"})`;
}
