/**
 * The VirtualService router's preview writes (issue 23): add the preview routes with their
 * annotation, or remove them, each as one guarded JSON Patch through the router's retrying patcher
 * (a conflict re-reads and re-plans; a refusal is never retried).
 */

import type { PatchOperation } from "../rollout/model/routes.ts";
import type { RolloutState } from "../rollout/model/state.ts";
import type { VirtualService } from "../rollout/model/virtual-service.ts";
import type { PreviewRequest, PreviewView, TrafficView } from "../rollout/ports.ts";
import { MeshError } from "./errors.ts";
import {
  PREVIEW_ANNOTATION,
  planPreview,
  planPreviewRemoval,
  previewRecord,
  readPreview,
} from "./preview-routes.ts";
import { planAnnotation } from "./route-patches.ts";
import type { ManagedRoute, Target } from "./routes.ts";

export type View<D> = TrafficView & { managed: ManagedRoute[]; object: D };

/** One guarded write: `plan` runs on every fresh read; `took` says the write is in place. */
export interface Patching<D> {
  mode: "read" | "write" | "rollback";
  budgetMs: number;
  what: string;
  plan: (view: View<D>) => { state: RolloutState; ops: PatchOperation[] };
  took: (view: View<D>) => boolean;
  exhausted?: (error: unknown, conflicts: number, spent: { attempts: number; elapsedMs: number }) => unknown;
  signal: AbortSignal | undefined;
}

interface Patcher {
  patch(o: Patching<VirtualService>): Promise<{ state: RolloutState; response: VirtualService }>;
  where: string;
  target: Target;
  routes: readonly string[];
}

interface Budget {
  budgetMs: number;
  signal: AbortSignal | undefined;
}

/** Adds the preview routes; found already in place for the same header and value, nothing is written. */
export async function addPreviewRoutes(
  patcher: Patcher,
  request: PreviewRequest,
  at: Date,
  { budgetMs, signal }: Budget,
): Promise<PreviewView> {
  const positional = patcher.routes.some((r) => /^#[0-9]+$/.test(r));
  let names: string[] = [];
  const { response } = await patcher.patch({
    mode: "write",
    budgetMs,
    what: "adding the preview route",
    plan: (view) => {
      const planned = planPreview(view.object, view.managed, patcher.target, request, positional);
      names = planned.names;
      const record =
        planned.ops.length === 0
          ? []
          : planAnnotation(view.object, PREVIEW_ANNOTATION, previewRecord(request, at));
      return { state: view.state as RolloutState, ops: [...planned.ops, ...record] };
    },
    took: (view) => view.preview !== undefined,
    signal,
  });
  const found = readPreview(response, patcher.target);
  if (!found || names.some((n) => !found.routes.includes(n)))
    throw new MeshError(
      `${patcher.where}: the preview route was written but the API server's answer does not show it`,
    );
  return found;
}

/** Removes the preview routes and annotation (no weight changes); the names removed. */
export async function removePreviewRoutes(patcher: Patcher, { budgetMs, signal }: Budget): Promise<string[]> {
  let names: string[] = [];
  await patcher.patch({
    mode: "rollback",
    budgetMs,
    what: "removing the preview route",
    plan: (view) => {
      const removal = planPreviewRemoval(view.object, patcher.target);
      names = removal.removed.map((i) => view.object.spec.http?.[i]?.name as string);
      return { state: view.state as RolloutState, ops: removal.ops };
    },
    took: (view) => view.preview === undefined,
    signal,
  });
  return names;
}
