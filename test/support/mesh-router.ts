/**
 * The router against the Kubernetes API emulator, through the real client, and a minimal state
 * transition for it to write (the rollout engine builds the real ones).
 */

import { loadKubeConfig } from "../../src/mesh/kubeconfig.ts";
import { KubernetesMeshApi } from "../../src/mesh/kubernetes.ts";
import { type RouterOptions, VirtualServiceRouter } from "../../src/mesh/router.ts";
import { targetOf } from "../../src/mesh/routes.ts";
import type { Split } from "../../src/rollout/model/split.ts";
import { LeaseHeldError, leaseBlocks, type RolloutState } from "../../src/rollout/model/state.ts";
import type { TrafficView } from "../../src/rollout/ports.ts";
import { NAMESPACE } from "../mesh/fixtures.ts";
import type { KubeApiEmulator } from "../mesh/kube-api.ts";

export const SUBSETS: Split = { mode: "subset", stableSubset: "v1", canarySubset: "v2" };

/** The real Kubernetes client on the emulator, as `token` (default: the emulator's first token). */
export function meshApi(kube: KubeApiEmulator, options: { token?: string; timeoutMs?: number } = {}) {
  return new KubernetesMeshApi(loadKubeConfig({ kubeconfig: kube.kubeconfig(options.token) }), {
    timeoutMs: options.timeoutMs ?? 5000,
  });
}

export interface MeshRouterOptions {
  split?: Split;
  /** The VirtualService; default "backend". */
  name?: string;
  routes?: string[];
  /** The router's waits and clock; default: waits end at once, real time. */
  clock?: Pick<RouterOptions, "sleep" | "now" | "random">;
}

export function meshRouter(api: KubernetesMeshApi, options: MeshRouterOptions = {}) {
  const clock = options.clock ?? { sleep: async () => {} };
  return new VirtualServiceRouter(api, {
    namespace: NAMESPACE,
    name: options.name ?? "backend",
    target: targetOf(options.split ?? SUBSETS),
    routes: options.routes ?? [],
    sleep: clock.sleep,
    now: clock.now,
    random: clock.random,
  });
}

export interface TransitionOptions {
  holder: string;
  stageIndex: number;
  /** Whether a rollback (weight 0) is refused too while another holder's lease is live. */
  leaseBlocksRollback: boolean;
  /** Whether each history entry names the holder. */
  holderInHistory: boolean;
}

/** A minimal state transition to `weight`; counts its calls. */
export function stateTransition(weight: number, options: TransitionOptions) {
  const { holder } = options;
  const fn = (previous: RolloutState | undefined, view: TrafficView): RolloutState => {
    fn.calls += 1;
    const blocked =
      weight === 0 && !options.leaseBlocksRollback ? undefined : leaseBlocks(previous, holder, new Date());
    if (blocked) throw new LeaseHeldError("VirtualService shop/backend", blocked);
    const now = new Date().toISOString();
    return {
      schemaVersion: 1,
      rolloutId: previous?.rolloutId ?? "r1",
      commit: "abc123",
      stages: [1, 10, 50, 100],
      stageIndex: options.stageIndex,
      weight,
      status: weight === 0 ? "rolled-back" : "progressing",
      startedAt: previous?.startedAt ?? now,
      updatedAt: now,
      lease: weight === 0 ? undefined : { holder, expiresAt: new Date(Date.now() + 600_000).toISOString() },
      original: previous?.original ?? view.original,
      history: [
        ...(previous?.history ?? []),
        { at: now, weight, event: "weight", ...(options.holderInHistory ? { holder } : {}) },
      ],
    };
  };
  fn.calls = 0;
  return fn;
}
