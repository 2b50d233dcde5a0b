/**
 * `command: preview` (issue 23): before a rollout, the requests carrying the preview header go to
 * the canary and no user's request does. The core decides whether a preview may be added (no
 * rollout is live, the traffic port supports one); the traffic port plans the routes and refuses
 * what is unsafe in their shape (src/mesh/preview-routes.ts).
 */
import type { EngineContext, EngineOutcome } from "./context.ts";
import { isLive, type RolloutState } from "./model/state.ts";
import type { TrafficView } from "./ports.ts";
import { CommandError } from "./transitions.ts";

export async function runPreview(context: EngineContext, rolloutId: string): Promise<EngineOutcome> {
  const { traffic, signal, clock } = context.ports;
  const { header, value = rolloutId } = context.settings.preview;
  // A port without addPreview is one that cannot carry a preview: today, several routes moved in
  // lockstep (an HTTPRoute's preview is refused with the inputs, before any port exists).
  if (!traffic.addPreview)
    throw new CommandError(
      `command: preview is not yet supported for ${context.where}: a preview route is added to a single VirtualService, not to several routes moved in lockstep; nothing was changed`,
    );
  const view = await traffic.read(signal);
  const state = view.state;
  if (isLive(state))
    throw new CommandError(
      `preview refused: ${context.where} records rollout ${state.rolloutId} as ${state.status}; a preview comes before a rollout (command: rollback ends it); nothing was changed`,
    );
  if (view.weights.some((w) => w > 0))
    throw new CommandError(
      `preview refused: the managed routes of ${context.where} already send ${view.weights.join(", ")} % to the canary; a preview comes before a rollout; nothing was changed`,
    );
  if (context.settings.dryRun)
    return context.finish({
      result: "unchanged",
      weight: 0,
      reason: `dry run: a preview route for ${header}: ${value} would be added`,
      failed: false,
      state,
    });
  const preview = await traffic.addPreview({ header, value, rolloutId }, clock.now(), signal);
  await context.emit({ type: "preview", at: context.now(), header, value, routes: preview.routes });
  return context.finish({
    result: "unchanged",
    weight: 0,
    reason: `Preview: requests with the header ${header}: ${value} go to the canary (${preview.routes.join(", ")}); users' requests stay on stable`,
    failed: false,
    state,
    preview: { header, value },
  });
}

/** A preview older than this is not counted: its requests would make the first stage's window too long to mean "this release". */
const PREVIEW_COUNT_MAX_AGE_MS = 3_600_000;

/**
 * When the first stage of rollout `rolloutId` counts from: the preview's start, where the routes
 * carry a preview for this very rollout (the annotation agreeing with the routes) that began within
 * the last hour; otherwise undefined (count from the first write). The annotation is anyone's to
 * write, so it only ever widens the count to requests the canary's own pods served.
 */
export function previewStart(view: TrafficView, rolloutId: string, now: Date): Date | undefined {
  const preview = view.preview;
  if (!preview?.since || preview.rolloutId !== rolloutId) return undefined;
  const since = Date.parse(preview.since);
  const age = now.getTime() - since;
  return age >= 0 && age <= PREVIEW_COUNT_MAX_AGE_MS ? new Date(since) : undefined;
}

/** For `command: status`: the preview route found, and what it sends to the canary. */
export function previewNote(view: TrafficView): string {
  const p = view.preview;
  if (!p) return "";
  return `; the preview route ${p.routes.join(", ")} sends requests with ${p.header ?? "a header"}: ${p.value ?? "?"} to the canary`;
}

/**
 * `previewStart` for a fresh rollout's state, recorded in its history (so the state annotation and
 * a later run's reports say where stage 1 counted from).
 */
export function countFromPreview(fresh: RolloutState, view: TrafficView, now: Date): Date | undefined {
  const since = previewStart(view, fresh.rolloutId, now);
  if (since)
    fresh.history.push({
      at: now.toISOString(),
      weight: 0,
      event: "preview",
      reason: `stage 1 counts the canary's requests from the preview of ${view.preview?.header}: ${view.preview?.value}, added ${since.toISOString()}`,
    });
  return since;
}
