/**
 * What the inputs choose for the engine: the policies for an inconclusive stage, an unreachable
 * backend and a split found in progress, and what a promotion does to the Deployments. The core owns
 * these types; src/inputs/ parses the inputs into them and src/action.ts hands them to the engine.
 */
import type {
  FINALIZE_POLICIES,
  INCONCLUSIVE_POLICIES,
  SPLIT_POLICIES,
  UNREACHABLE_POLICIES,
} from "../../constants.ts";

export type InconclusivePolicy = (typeof INCONCLUSIVE_POLICIES)[number];
export type UnreachablePolicy = (typeof UNREACHABLE_POLICIES)[number];
/** What a rollout does with routes already split between stable and canary (no live rollout recorded). */
export type SplitPolicy = (typeof SPLIT_POLICIES)[number];
/** After a promotion: copy the canary's pod template onto the stable Deployment (auto, copy), or leave the stable to someone else (none). */
export type FinalizePolicy = (typeof FINALIZE_POLICIES)[number];

export interface FinalizeConfig {
  readonly policy: FinalizePolicy;
  /** How long the stable (and a scaled-up canary) may take to become ready; undefined: the Deployment's progressDeadlineSeconds. */
  readonly timeoutMs?: number;
  readonly scaleDownCanary: boolean;
  /** The canary's replicas when a rollout scales it back up; undefined: the stable's count. */
  readonly canaryReplicas?: number;
  readonly stableDeployment?: string;
  readonly canaryDeployment?: string;
}

/** `command: preview` and what a rollout does with the preview route (issue 23). */
export interface PreviewConfig {
  /** The request header the preview route matches (lowercase, as Istio requires). */
  readonly header: string;
  /** Its exact value; undefined: the rollout id. */
  readonly value?: string;
  /** At a rollout's first write: remove the preview route, or keep it until the rollout ends. */
  readonly policy: "keep" | "remove";
}
