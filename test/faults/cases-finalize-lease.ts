/**
 * Issue 20, part B: finalization routes only to a stable Deployment that runs the promoted template
 * with ready pods; a passed promotion is never undone by a failed write, a kill or the post step; a
 * dead run's lease is taken over once GitHub says the run is over; the `finalize` default works as
 * the runner passes it; diagnostic reads (events, owner ReplicaSets) never block a rollout.
 */
import type { ChildProcess } from "node:child_process";
import { NAMESPACE } from "../mesh/fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import { actionDefaults } from "../support/action-runner.ts";
import { fastInputs } from "../support/e2e.ts";
import {
  afterTemplateCopy,
  atVsPatch,
  CANARY,
  endOf,
  FINALIZING_WRITE,
  FIRST_RUN,
  IMAGE,
  passUndone,
  reachedFull,
  STABLE,
  unservingStable,
  WITH_DEPLOYMENTS,
} from "./finalize-harness.ts";
import { canaryShare, currentVs, errors, HEALTHY, runTimed, storedWrites, withMesh } from "./harness.ts";
import type { FaultCase, Measured } from "./table.ts";

/** A person changes the stable Deployment while the action waits for it; the action must not route to it. */
function personChangesStable(
  edit: (d: KubeObject) => void,
  manager: string,
  subresource: "scale" | undefined,
  afterwards?: (mesh: Mesh) => Promise<string>,
): () => Promise<Measured> {
  return () =>
    withMesh(WITH_DEPLOYMENTS, async (mesh) => {
      afterTemplateCopy(mesh, (m) => m.apps?.edit(NAMESPACE, STABLE, edit, manager, subresource));
      const run = await runTimed(mesh, { timeoutMs: 150_000 });
      const unserving = unservingStable(mesh);
      const onCanary = canaryShare(currentVs(mesh)) === 100;
      const named = errors(run).includes(manager);
      const then = afterwards && onCanary ? await afterwards(mesh) : "";
      return {
        ok: unserving === 0 && onCanary && named && run.exitCode !== 0 && !then.startsWith("not"),
        figures: { unservingStableRoutes: unserving, passesUndone: passUndone(mesh) },
        measured: `${endOf(mesh, run)}; names ${manager}: ${named ? "yes" : "no"}; says: ${errors(run).slice(0, 160) || "nothing"}${then ? `; ${then}` : ""}`,
      };
    });
}

/** After the stable was scaled to 0: a person scales it back, `command: promote` finishes the finalization. */
async function scaleBackAndPromote(mesh: Mesh): Promise<string> {
  mesh.apps?.edit(
    NAMESPACE,
    STABLE,
    (d) => {
      (d.spec as { replicas: number }).replicas = 2;
    },
    "kubectl-scale",
    "scale",
  );
  const promote = await runTimed(mesh, { inputs: { command: "promote" }, runId: "2002", timeoutMs: 90_000 });
  const finalized = promote.outputs.finalized === "true" && canaryShare(currentVs(mesh)) === 0;
  return `${finalized ? "" : "not "}finalized by promote (${endOf(mesh, promote)})`;
}

/** A passed last stage, then `fault`; main, then the post step with main's state. Nothing may undo the pass. */
function passThen(
  fault: (mesh: Mesh, child: () => ChildProcess | undefined) => void,
  options: { mainTimeoutMs?: number; thenPromote?: boolean; runStatus?: "completed" } = {},
): () => Promise<Measured> {
  return () =>
    withMesh(WITH_DEPLOYMENTS, async (mesh) => {
      let child: ChildProcess | undefined;
      fault(mesh, () => child);
      const main = await runTimed(mesh, {
        timeoutMs: options.mainTimeoutMs ?? 150_000,
        onSpawn: (c) => {
          child = c;
        },
      });
      const afterMain = endOf(mesh, main);
      const post = await runTimed(mesh, { state: main.state, timeoutMs: 90_000 });
      const afterPost = `post: ${endOf(mesh, post)}`;
      let promoted = "";
      let promoteOk = true;
      if (options.thenPromote) {
        if (options.runStatus)
          mesh.github.runs.set(FIRST_RUN, { status: options.runStatus, conclusion: "cancelled" });
        const started = Date.now();
        const promote = await runTimed(mesh, {
          inputs: { command: "promote" },
          runId: "2002",
          timeoutMs: 90_000,
        });
        promoteOk = promote.outputs.finalized === "true" && canaryShare(currentVs(mesh)) === 0;
        promoted = `; promote after ${((Date.now() - started) / 1000).toFixed(1)} s: ${endOf(mesh, promote)}${promoteOk ? "" : `; says: ${errors(promote).slice(0, 140)}`}`;
      }
      const undone = passUndone(mesh);
      const unserving = unservingStable(mesh);
      const passed = reachedFull(mesh);
      return {
        ok: passed && undone === 0 && unserving === 0 && promoteOk,
        figures: { passesUndone: undone, unservingStableRoutes: unserving },
        measured: `${passed ? "" : "the last stage was never reached; "}main: ${afterMain}; ${afterPost}${promoted}${main.exitCode !== 0 ? `; main says: ${errors(main).slice(0, 120)}` : ""}`,
      };
    });
}

/**
 * A rollout on a mesh with Deployments while `fault` hits a read that only explains problems: it
 * must be promoted and finalized, with a warning that mentions `warns`.
 */
function diagnosticFails(
  fault: (mesh: Mesh) => void,
  warns: string,
  release = true,
): () => Promise<Measured> {
  return () =>
    withMesh({ ...HEALTHY, deployments: { readyDelayMs: 1500 } }, async (mesh) => {
      fault(mesh);
      // A release just set the canary's image: its new pods are starting when the action looks.
      if (release)
        mesh.apps?.edit(NAMESPACE, CANARY, (d) => {
          const spec = d.spec as { template: { spec: { containers: Array<{ image: string }> } } };
          (spec.template.spec.containers[0] as { image: string }).image = `${IMAGE}:v3`;
        });
      const run = await runTimed(mesh, { timeoutMs: 150_000 });
      const warned = run.stdout.split("\n").some((l) => l.startsWith("::warning::") && l.includes(warns));
      const wrote = storedWrites(mesh).some((w) => canaryShare(w.object) > 0);
      return {
        ok: run.outputs.result === "promoted" && run.outputs.finalized === "true" && wrote && warned,
        measured: `${endOf(mesh, run)}; warned: ${warned ? "yes" : "no"}; says: ${errors(run).slice(0, 160) || "nothing"}`,
      };
    });
}

const ORPHAN = `${STABLE}-6f9c8d7b5-orph1`;

const forbiddenEvents = (m: Mesh) =>
  m.kube.faultPlan.reject({
    code: 403,
    reason: "Forbidden",
    message:
      'events is forbidden: User "system:serviceaccount:shop:canary-action" cannot list resource "events" in API group "" in the namespace "shop"',
    resource: "events",
    verbs: ["list"],
  });

export const finalizeAndLeaseCases: FaultCase[] = [
  {
    id: "11a",
    title: "a person scales the stable Deployment to 0 while finalization waits for it; then promote",
    must: "traffic stays on the canary; the error names kubectl-scale; after scaling back, promote finalizes",
    run: personChangesStable(
      (d) => {
        (d.spec as { replicas: number }).replicas = 0;
      },
      "kubectl-scale",
      "scale",
      scaleBackAndPromote,
    ),
  },
  {
    id: "11b",
    title: "a person sets another image on the stable Deployment while finalization waits for it",
    must: "traffic stays on the canary, never on the other image; the error names kubectl-set",
    run: personChangesStable(
      (d) => {
        const spec = d.spec as { template: { spec: { containers: Array<{ image: string }> } } };
        (spec.template.spec.containers[0] as { image: string }).image = `${IMAGE}:v9`;
      },
      "kubectl-set",
      undefined,
    ),
  },
  {
    id: "11c",
    title: "130 s Kubernetes API outage from the write that records `finalizing`, then the post step",
    must: "the passed canary is not rolled back (0 passes undone); traffic never on an unready stable",
    timeoutMs: 330_000,
    run: passThen(
      (mesh) => atVsPatch(mesh, FINALIZING_WRITE, (m) => m.kube.faultPlan.failFor(130_000, { status: 503 })),
      { mainTimeoutMs: 300_000 },
    ),
  },
  {
    id: "11d",
    title: "an admission webhook answers 422 once to the write that records `finalizing`, then the post step",
    must: "the passed canary is not rolled back; it is finalized",
    run: passThen((mesh) =>
      mesh.kube.faultPlan.reject({
        code: 422,
        reason: "Invalid",
        message:
          'admission webhook "validation.istio.io" denied the request: configuration is invalid: the webhook timed out reaching istiod',
        resource: "virtualservices",
        verbs: ["patch"],
        skip: FINALIZING_WRITE - 1,
        count: 1,
      }),
    ),
  },
  {
    id: "11e",
    title: "main killed while the `finalizing` write is in flight (not stored), then the post step",
    must: "the post step does not roll back the canary that passed",
    run: passThen((mesh, child) =>
      atVsPatch(mesh, FINALIZING_WRITE, (m) => {
        child()?.kill("SIGKILL");
        m.kube.faultPlan.fail({ status: 503, resource: "virtualservices", count: 1 });
      }),
    ),
  },
  {
    id: "11f",
    title:
      "main killed while the `finalizing` write is in flight (stored); GitHub says the run completed; `promote`",
    must: "promote takes over the dead run's lease at once and finalizes",
    run: passThen(
      (mesh, child) =>
        atVsPatch(mesh, FINALIZING_WRITE, () => {
          child()?.kill("SIGKILL");
        }),
      { thenPromote: true, runStatus: "completed" },
    ),
  },
  {
    id: "11g",
    title:
      "main killed mid-write (not stored), the post step, then `promote` once GitHub says the run completed",
    must: "not rolled back; promote finalizes",
    run: passThen(
      (mesh, child) =>
        atVsPatch(mesh, FINALIZING_WRITE, (m) => {
          child()?.kill("SIGKILL");
          m.kube.faultPlan.fail({ status: 503, resource: "virtualservices", count: 1 });
        }),
      { thenPromote: true, runStatus: "completed" },
    ),
  },
  {
    id: "11n",
    title:
      "main killed mid-write (stored); GitHub cannot say whether the run is over (404, no `actions: read`); `promote`",
    must: "promote refused by the lease with a warning naming actions: read; the canary keeps the traffic",
    run: () =>
      withMesh(WITH_DEPLOYMENTS, async (mesh) => {
        let child: ChildProcess | undefined;
        atVsPatch(mesh, FINALIZING_WRITE, () => child?.kill("SIGKILL"));
        await runTimed(mesh, {
          timeoutMs: 150_000,
          onSpawn: (c) => {
            child = c;
          },
        });
        const promote = await runTimed(mesh, { inputs: { command: "promote" }, runId: "2002" });
        const asked = mesh.github.requests.filter((r) =>
          r.path.includes("/actions/runs/1001/attempts/1"),
        ).length;
        const warning = promote.stdout
          .split("\n")
          .find((l) => l.startsWith("::warning::") && l.includes("actions: read"));
        const refused = promote.exitCode !== 0 && errors(promote).includes("being rolled out by");
        return {
          ok: refused && warning !== undefined && asked > 0 && passUndone(mesh) === 0,
          figures: { passesUndone: passUndone(mesh), unservingStableRoutes: unservingStable(mesh) },
          measured: `GitHub asked ${asked}×; ${endOf(mesh, promote)}; warning: ${warning?.slice(11, 120) ?? "none"}; says: ${errors(promote).slice(0, 120)}`,
        };
      }),
  },
  {
    id: "11h",
    title: "409 Conflict once on the template copy onto the stable Deployment",
    must: "re-planned and finalized",
    run: () =>
      withMesh(WITH_DEPLOYMENTS, async (mesh) => {
        mesh.kube.faultPlan.reject({
          code: 409,
          reason: "Conflict",
          message: `Operation cannot be fulfilled on deployments.apps "${STABLE}": the object has been modified; please apply your changes to the latest version and try again`,
          resource: "deployments",
          verbs: ["patch"],
          count: 1,
        });
        const run = await runTimed(mesh, { timeoutMs: 150_000 });
        const conflicts = mesh.kube.faultPlan.hits.filter((h) => h.fault === "409").length;
        return {
          ok: run.outputs.finalized === "true" && conflicts === 1 && unservingStable(mesh) === 0,
          figures: { unservingStableRoutes: unservingStable(mesh) },
          measured: `${conflicts} conflict(s) answered; ${endOf(mesh, run)}; says: ${errors(run).slice(0, 140) || "nothing"}`,
        };
      }),
  },
  {
    id: "11i",
    title:
      "every action.yml default passed as the runner does, on a mesh without Deployments (finalize not set)",
    must: "promoted to 100 % canary with a warning that names finalize; not refused",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        const run = await runTimed(mesh, {
          inputs: { ...actionDefaults({ "github.token": "ghs_bot_token" }), ...fastInputs(mesh) },
        });
        const warning = run.stdout
          .split("\n")
          .find((l) => l.startsWith("::warning::") && l.includes("finalize"));
        return {
          ok: run.outputs.result === "promoted" && run.exitCode === 0 && warning !== undefined,
          measured: `${endOf(mesh, run)}; warning: ${warning?.slice(11, 150) ?? "none"}; says: ${errors(run).slice(0, 140) || "nothing"}`,
        };
      }),
  },
  {
    id: "11j",
    title:
      "explicit `finalize: copy` on a mesh without Deployments (every other default as the runner passes it)",
    must: "refused before any weight write, naming the finalize input",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        const run = await runTimed(mesh, {
          inputs: {
            ...actionDefaults({ "github.token": "ghs_bot_token" }),
            ...fastInputs(mesh),
            finalize: "copy",
          },
        });
        const writes = storedWrites(mesh).length;
        return {
          ok: run.exitCode !== 0 && writes === 0 && errors(run).includes("finalize"),
          measured: `${writes} VirtualService write(s); exit ${run.exitCode}; says: ${errors(run).slice(0, 160) || "nothing"}`,
        };
      }),
  },
  {
    id: "11k",
    title: "listing events answers 403 while the canary's new pods start",
    must: "a warning naming the events; the rollout runs, is promoted and finalized",
    run: diagnosticFails(forbiddenEvents, "events"),
  },
  {
    id: "11l",
    title: "listing events answers 404 while the canary's new pods start",
    must: "a warning naming the events; the rollout runs, is promoted and finalized",
    run: diagnosticFails(
      (m) =>
        m.kube.faultPlan.reject({
          code: 404,
          reason: "NotFound",
          message: "the server could not find the requested resource",
          resource: "events",
          verbs: ["list"],
        }),
      "events",
    ),
  },
  {
    id: "11m",
    title: "a stable pod whose owner ReplicaSet is gone (orphaned by `kubectl delete rs --cascade=orphan`)",
    must: "a warning naming the pod; the rollout runs, is promoted and finalized",
    run: diagnosticFails(
      (m) => {
        const pod = structuredClone(m.apps?.pods(NAMESPACE, STABLE)[0]) as KubeObject;
        const owners = pod.metadata.ownerReferences as Array<{ name: string; uid: string }>;
        (owners[0] as { name: string }).name = `${STABLE}-6f9c8d7b5`;
        (owners[0] as { uid: string }).uid = "00000000-0000-4000-8000-000000000000";
        pod.metadata = {
          ...pod.metadata,
          name: ORPHAN,
          ownerReferences: owners,
        };
        for (const f of ["uid", "resourceVersion", "creationTimestamp"]) delete pod.metadata[f];
        m.kube.seed("pods", pod);
      },
      ORPHAN,
      false,
    ),
  },
];
