/**
 * Issue 22: the fault cases on a Gateway API HTTPRoute (the runbook's versions as Services
 * backend-v1 and backend-v2, the route attached to the ingress Gateway, gateway-fixtures.ts). A
 * person's edit of the backendRef weights wins; a rollback lands through a 409 storm; the parent
 * Gateway stops accepting the route mid-rollout; a forged record on the route moves nothing by more
 * than one stage. Weights are proportional here: a share is canary / (stable + canary).
 */
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import {
  CANARY_SERVICE,
  GATEWAY,
  GATEWAY_NAMESPACE,
  httpRouteTraffic,
  STABLE_SERVICE,
  seedHttpRouteRunbook,
} from "../mesh/gateway-fixtures.ts";
import type { Mesh, MeshOptions } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import { COMMIT } from "../support/e2e.ts";
import {
  errors,
  FAILING,
  HEALTHY,
  runArmed,
  runTimed,
  seconds,
  type TimedRun,
  verdictAt,
  within,
  withMesh,
} from "./harness.ts";
import type { FaultCase, Measured } from "./table.ts";

type Ref = { name: string; port?: number; weight?: number };
type Spec = { rules: Array<{ backendRefs: Ref[] }> };

const ROUTE = { resource: "httproutes" } as const;

/** The runbook on an HTTPRoute attached to the ingress Gateway, with the canary behaving as `options` says. */
const onRoute = (options: MeshOptions): MeshOptions => ({
  ...options,
  seedWith: (kube) => seedHttpRouteRunbook(kube, "gateway"),
  traffic: httpRouteTraffic("gateway"),
});

/** The harness's fast inputs, for the HTTPRoute: http-route and the versions' Services instead of subsets. */
const ROUTE_INPUTS = {
  "virtual-service": "",
  "stable-subset": "",
  "canary-subset": "",
  "http-route": SERVICE,
  "stable-host": STABLE_SERVICE,
  "canary-host": CANARY_SERVICE,
};

const currentRoute = (mesh: Mesh) => mesh.kube.get("httproutes", NAMESPACE, SERVICE);
const refsOf = (route: KubeObject | undefined): Ref[] =>
  (route?.spec as Spec | undefined)?.rules[0]?.backendRefs ?? [];

/** The canary's share in percent of the managed rule (0 when it is not a backendRef). */
function share(route: KubeObject | undefined): number {
  const refs = refsOf(route);
  const w = (name: string) => {
    const ref = refs.find((r) => r.name === name);
    return ref ? (ref.weight ?? 1) : 0;
  };
  const total = w(STABLE_SERVICE) + w(CANARY_SERVICE);
  return total > 0 ? Number(((w(CANARY_SERVICE) * 100) / total).toFixed(3)) : 0;
}

/** `backend-v1=90 backend-v2=10`. */
const weights = (route: KubeObject | undefined) =>
  refsOf(route)
    .map((r) => `${r.name}=${r.weight ?? 1}`)
    .join(" ");

/** The route's stored writes, in order. */
function storedWrites(mesh: Mesh): Array<{ at: number; object: KubeObject }> {
  return mesh.kube.audit
    .filter(
      (e) =>
        e.resource === "httproutes" && ["patch", "update"].includes(e.verb) && e.code === 200 && e.object,
    )
    .map((e) => ({ at: Date.parse(e.time), object: e.object as KubeObject }));
}

/** When traffic went to 100 % stable for good after the first write that gave the canary traffic. */
function stableAfterCanary(mesh: Mesh): number | undefined {
  const writes = storedWrites(mesh);
  const first = writes.findIndex((w) => share(w.object) > 0);
  if (first < 0 || share(currentRoute(mesh)) !== 0) return undefined;
  let since: number | undefined;
  for (const w of writes.slice(first + 1)) {
    if (share(w.object) === 0) since ??= w.at;
    else since = undefined;
  }
  return since;
}

const says = (run: TimedRun) => errors(run).slice(0, 160) || "nothing";

/** Mid-stage, a person sets the backendRefs to `refs`: the action must leave them as they are. */
function personEdits(refs: Ref[]): () => Promise<Measured> {
  return () =>
    withMesh(onRoute(HEALTHY), async (mesh) => {
      let edited: { at: number; route: KubeObject } | undefined;
      const run = await runArmed(
        mesh,
        (m) => {
          const route = m.kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (r) => {
            ((r.spec as Spec).rules[0] as { backendRefs: Ref[] }).backendRefs = refs;
          });
          edited = { at: Date.now(), route };
        },
        { inputs: ROUTE_INPUTS },
      );
      const after = edited
        ? storedWrites(mesh).filter(
            (w) => w.at > (edited?.at ?? 0) && weights(w.object) !== weights(edited?.route),
          ).length
        : -1;
      const undone = weights(currentRoute(mesh)) === weights(edited?.route) ? 0 : 1;
      return {
        ok: edited !== undefined && undone === 0 && after === 0 && run.exitCode !== 0,
        figures: { editsUndone: undone },
        measured:
          `final ${weights(currentRoute(mesh))} (person set ${weights(edited?.route)}); ${after} weight write(s) after the edit; ` +
          `${undone} edit undone; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; says: ${says(run)}`,
      };
    });
}

/** A failing canary; the rollback's write on the HTTPRoute meets a 409 storm for `ms`. */
function rollbackThroughConflicts(ms: number): () => Promise<Measured> {
  return () =>
    withMesh(onRoute(FAILING), async (mesh) => {
      let writes = 0;
      mesh.kube.faultPlan.onRequest((info) => {
        if (info.resource !== "httproutes" || !["patch", "update"].includes(info.verb)) return;
        writes += 1;
        if (writes === 2) mesh.kube.faultPlan.conflictStorm({ ...ROUTE, ms });
      });
      const run = await runTimed(mesh, { inputs: ROUTE_INPUTS });
      const verdict = verdictAt(run);
      const stable = stableAfterCanary(mesh);
      return {
        ok: within(verdict, stable, 5000) && share(currentRoute(mesh)) === 0,
        measured:
          `final ${weights(currentRoute(mesh))}; verdict → 100 % stable ${seconds(verdict, stable)}; ` +
          `${mesh.kube.faultPlan.hits.length} request(s) answered 409; result ${run.outputs.result ?? "none"}` +
          (stable === undefined ? `; says: ${says(run)}` : ""),
      };
    });
}

/** A record as the action writes it, forged: a rollout of this commit `progressing` at its last stage. */
function forgedRecord(): string {
  const at = new Date(Date.now() - 600_000).toISOString();
  return JSON.stringify({
    schemaVersion: 1,
    rolloutId: `${COMMIT.slice(0, 7)}-990`,
    commit: COMMIT,
    stages: [10, 50, 100],
    stageIndex: 2,
    weight: 100,
    status: "progressing",
    startedAt: at,
    updatedAt: at,
    original: [{ index: 0, name: "primary", canaryAdded: true }],
    history: [],
    lease: { holder: "acme/shop run 990 attempt 1", expiresAt: new Date(Date.now() - 60_000).toISOString() },
  });
}

export const httpRouteCases: FaultCase[] = [
  {
    id: "14a",
    title: "HTTPRoute: a person sets the backendRef weights to 70/30 mid-stage",
    must: "their weights stay: 0 writes after the edit, 0 edits undone, the step fails",
    run: personEdits([
      { name: STABLE_SERVICE, port: 8080, weight: 70 },
      { name: CANARY_SERVICE, port: 8080, weight: 30 },
    ]),
  },
  {
    id: "14b",
    title: "HTTPRoute: a person removes the canary's backendRef mid-stage (a rollback by hand)",
    must: "their route stays: 0 writes after the edit, 0 edits undone, the step fails",
    run: personEdits([{ name: STABLE_SERVICE, port: 8080 }]),
  },
  {
    id: "14c",
    title: "HTTPRoute: a storm of 409 Conflict on every write for 2 s when the rollback is due",
    must: "100 % stable within 5 s of the verdict",
    run: rollbackThroughConflicts(2000),
  },
  {
    id: "14d",
    title:
      "HTTPRoute: the parent Gateway stops accepting the route mid-stage (its class changed: Accepted False)",
    must: "no stage passes after the flip, not promoted, and 100 % stable at the end (the weights of a route no parent accepts carry nothing)",
    run: () =>
      withMesh(onRoute(HEALTHY), async (mesh) => {
        let flippedAt: number | undefined;
        const run = await runArmed(
          mesh,
          (m) => {
            m.kube.editOutOfBand("gateways", GATEWAY_NAMESPACE, GATEWAY, (g) => {
              (g.spec as { gatewayClassName: string }).gatewayClassName = "eg";
            });
            flippedAt = Date.now();
          },
          { inputs: ROUTE_INPUTS },
        );
        // The emulator reports the route's status.parents as istiod would: a Gateway of a class that
        // is not istiod's does not accept the route (gateway-api.ts).
        const gateway = mesh.kube.get("gateways", GATEWAY_NAMESPACE, GATEWAY);
        const flipped =
          (gateway?.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName === "eg";
        // Stages that passed after the flip, when the route carried no request to either version:
        // before the router read the parents' status at every interval, two did (10 -> 50 -> 100 %).
        const passedAfter = run.lines.filter(
          (l) =>
            l.at > (flippedAt ?? Number.POSITIVE_INFINITY) &&
            /^■ stage \d+\/\d+ \([\d.]+ %\): pass/.test(l.text),
        ).length;
        return {
          ok:
            flipped &&
            passedAfter === 0 &&
            run.outputs.result !== "promoted" &&
            share(currentRoute(mesh)) === 0,
          measured:
            `the Gateway's class changed (Accepted False): ${flipped}; ${passedAfter} stage(s) passed after it; ` +
            `result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; final ${weights(currentRoute(mesh))}; says: ${says(run)}`,
        };
      }),
  },
  {
    id: "14e",
    title:
      "HTTPRoute: forged record, a rollout of this commit `progressing` at its last stage (100 %), route at 0 %",
    must: "no write moves the canary more than one configured stage (0 → at most 10 %)",
    run: () =>
      withMesh(onRoute(HEALTHY), async (mesh) => {
        mesh.kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (r) => {
          r.metadata.annotations = { ...r.metadata.annotations, [STATE_ANNOTATION]: forgedRecord() };
        });
        const run = await runTimed(mesh, { inputs: ROUTE_INPUTS, runId: "3003" });
        let previous = 0;
        let largest = { from: 0, to: 0 };
        for (const w of storedWrites(mesh)) {
          const now = share(w.object);
          if (now - previous > largest.to - largest.from) largest = { from: previous, to: now };
          previous = now;
        }
        const next = [10, 50, 100].find((s) => s > largest.from) ?? 100;
        return {
          ok: largest.to <= next,
          measured: `largest step ${largest.from} → ${largest.to} % (one stage allows ${next} %); final ${weights(currentRoute(mesh))}; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; says: ${says(run)}`,
        };
      }),
  },
];
