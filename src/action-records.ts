/**
 * Where the composition root meets the state annotation, which anyone who may edit the
 * VirtualService can write (issue 20): the commit to report on, and the Deployment names a
 * finalization recorded, are used only where something besides the record vouches for them.
 */
import * as core from "@actions/core";
import { errorMessage } from "./error-message.ts";
import type { Config } from "./inputs/types.ts";
import { MeshError } from "./mesh/errors.ts";
import type { MeshApi } from "./mesh/kubernetes.ts";
import { preflightAll } from "./mesh/lockstep-preflight.ts";
import { PreflightError } from "./mesh/preflight.ts";
import type { Target } from "./mesh/routes.ts";
import type { RolloutState } from "./rollout/model/state.ts";
import type { TrafficPort } from "./rollout/ports.ts";
import { checkRecord } from "./rollout/record-check.ts";
import type { RunContext } from "./run-context.ts";
import { logText } from "./untrusted-text.ts";

/**
 * The Deployment names a record gives are believed only when their pod templates carry the
 * versions' labels (from the DestinationRule, read by preflight): a record could name another
 * app's Deployment. Undefined when the labels are unknown and the inputs do not name both.
 */
export function recordedDeploymentsCheckable(
  config: Config,
  error: PreflightError,
): { stable: Record<string, string>; canary: Record<string, string> } | undefined {
  const labels = error.labels;
  if (labels && Object.keys(labels.canary).length > 0 && Object.keys(labels.stable).length > 0) return labels;
  return config.finalize.stableDeployment && config.finalize.canaryDeployment
    ? { stable: {}, canary: {} }
    : undefined;
}

/**
 * The versions' pod labels from the DestinationRule's subsets, read as preflight reads them (a
 * failed preflight still names them when it got that far); undefined when they cannot be read.
 */
export async function versionLabels(
  api: MeshApi,
  config: Config,
  target: Target,
  signal?: AbortSignal,
): Promise<{ stable: Record<string, string>; canary: Record<string, string> } | undefined> {
  const labels = await preflightAll(api, config.virtualServices, config.split, target, {
    rootNamespace: config.istioRootNamespace,
    kind: config.routeKind,
    signal,
  }).then(
    (all) => ({ stable: all.primary.stableLabels, canary: all.primary.canaryLabels }),
    (error: unknown) => (error instanceof PreflightError ? error.labels : undefined),
  );
  return labels && Object.keys(labels.stable).length > 0 ? labels : undefined;
}

/**
 * promote, rollback and status act on a rollout recorded earlier: they report on its commit (its
 * pull request and commit status), not on the commit the dispatching workflow happens to run at,
 * but only when something besides the record says that commit was rolled out: it is this run's, or
 * a person named the rollout by `rollout-id` (whose id begins with its commit). Anyone who can edit
 * the VirtualService can write a record naming another pull request's commit.
 */
export async function recordedRunContext(
  traffic: TrafficPort,
  config: Config,
  context: RunContext,
): Promise<RunContext> {
  const view = await traffic.read();
  const state = view.state;
  if (!state || state.commit === "unknown" || state.commit === context.commit) return context;
  const check = checkRecord(state, {
    command: config.command,
    stages: config.stages,
    holder: context.holder,
    commit: context.commit,
    rolloutId: config.rolloutId,
    weights: view.weights,
  });
  if (check.commitAttested) return { ...context, commit: state.commit };
  core.warning(
    logText(
      `The state annotation names commit ${state.commit.slice(0, 12)} (rollout ${state.rolloutId}); this run reports on its own commit ${context.commit.slice(0, 12)}, since only the record says so. To report on that commit's pull request, name the rollout with rollout-id`,
    ),
  );
  return context;
}

/** A scale-up by the names a record gave failed: say that the names came from the record. */
export function recordedNamesRefused(
  config: Config,
  previous: RolloutState | undefined,
  failure: unknown,
): unknown {
  const fromRecord = !config.finalize.canaryDeployment || !config.finalize.stableDeployment;
  if (!fromRecord || !previous?.deployments || signalAborted(failure)) return failure;
  return new MeshError(
    `the last finalization recorded on the VirtualService names Deployments ${previous.deployments.stable} (stable) and ${previous.deployments.canary} (canary) to scale the canary back up, and they were not used: ${errorMessage(failure)}. A record is not an order: set stable-deployment and canary-deployment, or scale the canary Deployment up yourself; no weight was written`,
  );
}

const signalAborted = (failure: unknown) => failure instanceof Error && failure.name === "AbortError";
