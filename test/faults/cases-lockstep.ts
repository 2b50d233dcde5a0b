/**
 * Issue 20, "Several VirtualServices": the mesh's VirtualService and the ingress gateway's for the
 * same service move in lockstep, and stay so in every ending. A rollback that one of them refuses
 * for a while is retried within the rollback budget and finished by the post step; nothing says
 * "nothing to clean up" while a route still sends traffic to the canary; a person's rollback of one
 * rolls the others back; a person's split made while the action adopts or restarts a split wins.
 */
import type { ChildProcess } from "node:child_process";
import { ROLLBACK_RETRY_BUDGET_MS, StateKey } from "../../src/constants.ts";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import {
  CANARY_SUBSET,
  errors,
  FAILING,
  HEALTHY,
  type LogLine,
  routesOf,
  runArmed,
  runTimed,
  seconds,
  type TimedRun,
  withMesh,
} from "./harness.ts";
import type { FaultCase, Measured } from "./table.ts";

const GATEWAY_NS = "istio-system";
const GATEWAY = "backend-gateway";
const BOTH = `${SERVICE}, ${GATEWAY_NS}/${GATEWAY}`;
const HOST = `${SERVICE}.${NAMESPACE}.svc.cluster.local`;

type Destinations = Array<{ destination: { host: string; subset: string }; weight?: number }>;
type Where = { namespace: string; name: string };
const MESH_VS: Where = { namespace: NAMESPACE, name: SERVICE };
const GATEWAY_VS: Where = { namespace: GATEWAY_NS, name: GATEWAY };

const split = (stable: number, canary: number): Destinations => [
  { destination: { host: HOST, subset: "v1" }, weight: stable },
  { destination: { host: HOST, subset: CANARY_SUBSET }, weight: canary },
];

/** The ingress gateway's VirtualService for the same service, seeded at 100 % stable (or `route`). */
function seedGateway(
  mesh: Mesh,
  route: Destinations = [{ destination: { host: HOST, subset: "v1" } }],
): void {
  mesh.kube.seed("virtualservices", {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: GATEWAY, namespace: GATEWAY_NS },
    spec: {
      hosts: ["shop.example.com"],
      gateways: [`${GATEWAY_NS}/public-gateway`],
      http: [{ match: [{ uri: { prefix: "/" } }], route }],
    },
  } as KubeObject);
}

const vsOf = (mesh: Mesh, w: Where) => mesh.kube.get("virtualservices", w.namespace, w.name);

/** The canary's share of the first route of one VirtualService (0 when it is no destination). */
function shareOf(vs: KubeObject | undefined): number {
  const dests = routesOf(vs)[0]?.route ?? [];
  const canary = dests.find((d) => d.destination.subset === CANARY_SUBSET);
  if (!canary) return 0;
  return dests.length === 1 ? 100 : (canary.weight ?? 0);
}

function setRoute(mesh: Mesh, w: Where, route: Destinations): KubeObject {
  return mesh.kube.editOutOfBand("virtualservices", w.namespace, w.name, (vs) => {
    const http = (vs.spec as { http: Array<{ route: Destinations }> }).http;
    (http[0] as { route: Destinations }).route = route;
  });
}

/** Stored writes to one VirtualService, in order, with when they were stored. */
function writesTo(mesh: Mesh, w: Where): Array<{ at: number; vs: KubeObject }> {
  return mesh.kube.audit
    .filter(
      (e) =>
        e.resource === "virtualservices" &&
        e.namespace === w.namespace &&
        e.name === w.name &&
        ["patch", "update"].includes(e.verb) &&
        e.code === 200 &&
        e.object !== undefined,
    )
    .map((e) => ({ at: Date.parse(e.time), vs: e.object as KubeObject }));
}

/** When `w` reached 0 % canary for good after `from` (undefined: it is not at 0 % now). */
function stableAt(mesh: Mesh, w: Where, from: number): number | undefined {
  let since: number | undefined;
  for (const write of writesTo(mesh, w)) {
    if (write.at < from) continue;
    if (shareOf(write.vs) === 0) since ??= write.at;
    else since = undefined;
  }
  return shareOf(vsOf(mesh, w)) === 0 ? since : undefined;
}

/** Writes after `from` that changed the routes of `w` (a write of the annotation alone is none). */
function routeWritesAfter(mesh: Mesh, w: Where, from: number, before: KubeObject): number {
  let previous = JSON.stringify(routesOf(before));
  let count = 0;
  for (const write of writesTo(mesh, w)) {
    if (write.at <= from) continue;
    const routes = JSON.stringify(routesOf(write.vs));
    if (routes !== previous) count++;
    previous = routes;
  }
  return count;
}

const shares = (mesh: Mesh) =>
  `mesh VS ${shareOf(vsOf(mesh, MESH_VS))} %, gateway VS ${shareOf(vsOf(mesh, GATEWAY_VS))} % canary`;

const NOTHING_TO_CLEAN = /nothing to clean up/i;
const said = (run: TimedRun, pattern: RegExp) => run.lines.some((l) => pattern.test(l.text));

/** The first time the fault plan answered a write to the gateway's VirtualService with `code`. */
const firstRefusal = (mesh: Mesh, code: string) =>
  mesh.kube.faultPlan.hits.find((h) => h.name === GATEWAY && h.fault === code)?.at;

/**
 * A failing canary at 10 %; from the rollback on, the gateway's VirtualService refuses writes
 * (`refuse` arms the fault plan) for `outageMs`. Main must keep retrying it and reach 100 % stable
 * within a few seconds of the outage's end, well within the rollback budget.
 */
function refusedFor(
  outageMs: number,
  code: "400" | "403",
  refuse: (mesh: Mesh, o: { ms: number; skip: number }) => void,
): () => Promise<Measured> {
  return () =>
    withMesh(FAILING, async (mesh) => {
      seedGateway(mesh);
      // The first write to the gateway sets stage 1; the second is the rollback's.
      refuse(mesh, { ms: outageMs, skip: 1 });
      const run = await runTimed(mesh, { inputs: { "virtual-service": BOTH } });
      const refusedAt = firstRefusal(mesh, code);
      const outageEnd = refusedAt === undefined ? undefined : refusedAt + outageMs;
      const gatewayStable = outageEnd === undefined ? undefined : stableAt(mesh, GATEWAY_VS, refusedAt ?? 0);
      const meshStable = shareOf(vsOf(mesh, MESH_VS)) === 0;
      const lag =
        outageEnd !== undefined && gatewayStable !== undefined ? gatewayStable - outageEnd : undefined;
      const ok =
        refusedAt !== undefined &&
        meshStable &&
        lag !== undefined &&
        lag <= 5_000 &&
        run.outputs.result === "rolled-back";
      return {
        ok,
        measured:
          `${code} for ${outageMs / 1000} s from the rollback (budget ${ROLLBACK_RETRY_BUDGET_MS / 1000} s); ` +
          `gateway VS 100 % stable ${seconds(outageEnd, gatewayStable)} after the outage ended; final ${shares(mesh)}; ` +
          `result ${run.outputs.result ?? "none"}, exit ${run.exitCode}` +
          (ok ? "" : `; says: ${errors(run).slice(0, 160) || "nothing"}`),
      };
    });
}

/**
 * A failing canary at 10 %; the gateway's VirtualService refuses every write from the rollback on;
 * main is killed 6 s into its rollback (the job's timeout, or the runner after a cancel). Then the
 * refusal ends and the post step runs with `postState(main's saved state)`.
 */
function refusedBeyondMain(postState: (saved: Record<string, string>) => Record<string, string>) {
  return () =>
    withMesh(FAILING, async (mesh) => {
      seedGateway(mesh);
      mesh.kube.faultPlan.deny({ ms: 10 * 60_000, skip: 1, resource: "virtualservices", name: GATEWAY });
      let killer: NodeJS.Timeout | undefined;
      const main = await runTimed(mesh, {
        inputs: { "virtual-service": BOTH },
        onLine: (_line: LogLine, child: ChildProcess | undefined) => {
          if (killer || firstRefusal(mesh, "400") === undefined) return;
          killer = setTimeout(() => child?.kill("SIGKILL"), 6_000);
        },
      });
      clearTimeout(killer);
      const afterMain = shares(mesh);
      mesh.kube.faultPlan.clear();
      // The runner gives the post step the same inputs as main.
      const post = await runTimed(mesh, {
        inputs: { "virtual-service": BOTH },
        state: postState(main.state),
      });
      const stable = shareOf(vsOf(mesh, MESH_VS)) === 0 && shareOf(vsOf(mesh, GATEWAY_VS)) === 0;
      const claimed = said(post, NOTHING_TO_CLEAN);
      const postSaid = post.lines
        .map((l) => l.text)
        .filter((t) => !t.startsWith("::debug::") && !t.startsWith("::add-mask::"))
        .join(" | ")
        .slice(0, 240);
      return {
        ok: stable && !claimed && post.exitCode === 0,
        measured:
          `after main: ${afterMain}; after the post step: ${shares(mesh)}; ` +
          `post ${claimed ? 'said "nothing to clean up"' : "did not claim there was nothing to clean up"}, exit ${post.exitCode}` +
          `; post said: ${postSaid}`,
      };
    });
}

/**
 * A healthy canary at 50 % on both VirtualServices; a person sets `person` back to 100 % stable by
 * hand. The action must stop, leave that one as the person set it, and roll the other back.
 */
function personRollsBackOne(person: Where, other: Where): () => Promise<Measured> {
  return () =>
    withMesh(HEALTHY, async (mesh) => {
      seedGateway(mesh);
      let edited: { at: number; vs: KubeObject } | undefined;
      const run = await runArmed(
        mesh,
        (m) => {
          edited = { at: Date.now(), vs: setRoute(m, person, split(100, 0)) };
        },
        { inputs: { "virtual-service": BOTH }, armOn: /^\s+stage 2\/\d+ · / },
      );
      const from = edited?.at ?? Date.now();
      const otherStable = stableAt(mesh, other, from);
      const touched = edited ? routeWritesAfter(mesh, person, from, edited.vs) : -1;
      const ok =
        edited !== undefined &&
        otherStable !== undefined &&
        otherStable - from <= 5_000 &&
        touched === 0 &&
        shareOf(vsOf(mesh, person)) === 0 &&
        run.exitCode !== 0;
      return {
        ok,
        figures: { editsUndone: touched === 0 ? 0 : 1 },
        measured:
          `${person.name} set to 100/0 at 50 %; ${other.name} 100 % stable ${seconds(from, otherStable)} after the edit; ` +
          `${touched} route write(s) to ${person.name} after the edit; final ${shares(mesh)}; ` +
          `result ${run.outputs.result ?? "none"}, exit ${run.exitCode}`,
      };
    });
}

/**
 * Both VirtualServices split by hand and no rollout recorded; the action adopts the split (or, with
 * `on-split: restart`, rolls it back first). A person sets the mesh VirtualService to `person` just
 * as the action's first write to it arrives: their split must win like any other edit.
 */
function personEditsWhile(onSplit: "continue" | "restart", person: Destinations): () => Promise<Measured> {
  return () =>
    withMesh(HEALTHY, async (mesh) => {
      setRoute(mesh, MESH_VS, split(80, 20));
      seedGateway(mesh, split(70, 30));
      let edited: { at: number; vs: KubeObject } | undefined;
      mesh.kube.faultPlan.onRequest((info) => {
        if (edited || info.verb !== "patch" || info.name !== SERVICE || info.resource !== "virtualservices")
          return;
        edited = { at: Date.now(), vs: setRoute(mesh, MESH_VS, person) };
      });
      const run = await runTimed(mesh, { inputs: { "virtual-service": BOTH, "on-split": onSplit } });
      const touched = edited ? routeWritesAfter(mesh, MESH_VS, edited.at, edited.vs) : -1;
      const kept = shareOf(vsOf(mesh, MESH_VS)) === shareOf(edited?.vs);
      const ok = edited !== undefined && touched === 0 && kept && run.exitCode !== 0;
      const set = `${person.map((d) => d.weight).join("/")}`;
      return {
        ok,
        figures: { editsUndone: kept && touched === 0 ? 0 : 1 },
        measured:
          `person set ${set} at the action's first write (${onSplit === "restart" ? "the restart's rollback" : "the adoption's first stage"}); ` +
          `${touched} route write(s) to it after the edit; final ${shares(mesh)}; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; ` +
          `says: ${errors(run).slice(0, 110) || "nothing"}`,
      };
    });
}

/**
 * Both VirtualServices paused at 10 % (pause-after), then `command: rollback` while the gateway's
 * refuses writes for `outageMs` (an admission webhook): it must be retried, not reported as failed.
 */
function requestedRollbackRefused(outageMs: number): () => Promise<Measured> {
  return () =>
    withMesh(HEALTHY, async (mesh) => {
      seedGateway(mesh);
      const first = await runTimed(mesh, { inputs: { "virtual-service": BOTH, "pause-after": "10" } });
      const paused = shares(mesh);
      mesh.kube.faultPlan.deny({ ms: outageMs, resource: "virtualservices", name: GATEWAY });
      const rollback = await runTimed(mesh, {
        inputs: { "virtual-service": BOTH, command: "rollback" },
        runId: "2002",
      });
      const refusedAt = firstRefusal(mesh, "400");
      const outageEnd = refusedAt === undefined ? undefined : refusedAt + outageMs;
      const gatewayStable = refusedAt === undefined ? undefined : stableAt(mesh, GATEWAY_VS, refusedAt);
      const lag =
        outageEnd !== undefined && gatewayStable !== undefined ? gatewayStable - outageEnd : undefined;
      const ok =
        first.outputs.result === "paused" &&
        lag !== undefined &&
        lag <= 5_000 &&
        shareOf(vsOf(mesh, MESH_VS)) === 0 &&
        rollback.outputs.result === "rolled-back" &&
        rollback.exitCode === 0;
      return {
        ok,
        measured:
          `paused: ${paused}; 400 for ${outageMs / 1000} s; gateway VS 100 % stable ${seconds(outageEnd, gatewayStable)} after the outage ended; ` +
          `final ${shares(mesh)}; result ${rollback.outputs.result ?? "none"}, exit ${rollback.exitCode}` +
          (ok ? "" : `; says: ${errors(rollback).slice(0, 160) || "nothing"}`),
      };
    });
}

/**
 * A failing canary at 10 %; for `windowMs` from the rollback on, a controller (a GitOps tool's
 * self-heal) puts the gateway's VirtualService back at 90/10 as soon as anything reads it after a
 * write: the rollback's read-back sees its weights undone. Main must keep trying until it stops.
 */
function revertedFor(windowMs: number): () => Promise<Measured> {
  return () =>
    withMesh(FAILING, async (mesh) => {
      seedGateway(mesh);
      let writes = 0;
      let until: number | undefined;
      let reverts = 0;
      let lastRevert: number | undefined;
      mesh.kube.faultPlan.onRequest((info) => {
        if (info.resource !== "virtualservices" || info.name !== GATEWAY) return;
        if (info.verb === "patch" && ++writes === 2) until = info.at + windowMs;
        if (until === undefined || info.at > until || info.verb !== "get") return;
        if (shareOf(vsOf(mesh, GATEWAY_VS)) !== 0) return;
        reverts += 1;
        lastRevert = info.at;
        mesh.kube.editOutOfBand("virtualservices", GATEWAY_NS, GATEWAY, (vs) => {
          const http = (vs.spec as { http: Array<{ route: Destinations }> }).http;
          (http[0] as { route: Destinations }).route = split(90, 10);
          vs.metadata.managedFields = [{ manager: "argocd-controller", time: new Date().toISOString() }];
        });
      });
      const run = await runTimed(mesh, { inputs: { "virtual-service": BOTH } });
      // The rollback write that stuck is the first one after the controller's last undo, which may
      // land just before its window closes (then the gateway is stable when it stops: lag 0).
      const stuck = lastRevert === undefined ? undefined : stableAt(mesh, GATEWAY_VS, lastRevert);
      const stable = until === undefined || stuck === undefined ? undefined : Math.max(stuck, until);
      const lag = until !== undefined && stable !== undefined ? stable - until : undefined;
      const ok =
        reverts > 0 &&
        lag !== undefined &&
        lag <= 5_000 &&
        shareOf(vsOf(mesh, MESH_VS)) === 0 &&
        run.outputs.result === "rolled-back";
      return {
        ok,
        measured:
          `the gateway's rollback undone ${reverts} time(s) in ${windowMs / 1000} s; 100 % stable ${seconds(until, stable)} after the controller stopped; ` +
          `final ${shares(mesh)}; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}` +
          (ok ? "" : `; says: ${errors(run).slice(0, 160) || "nothing"}`),
      };
    });
}

const withoutInFlight = (saved: Record<string, string>) => {
  const { [StateKey.rolloutInFlight]: _, ...rest } = saved;
  return rest;
};

export const lockstepCases: FaultCase[] = [
  {
    id: "12a",
    title: "two VirtualServices; the gateway's refuses the rollback (admission webhook) for 15 s",
    must: "main retries it: both 100 % stable, the refusing one within 5 s of the outage's end; result rolled-back",
    run: refusedFor(15_000, "400", (mesh, o) =>
      mesh.kube.faultPlan.deny({ ...o, resource: "virtualservices", name: GATEWAY }),
    ),
  },
  {
    id: "12b",
    title: "two VirtualServices; the gateway's refuses the rollback (RBAC 403) for 10 s",
    must: "main retries it: both 100 % stable, the refusing one within 5 s of the outage's end; result rolled-back",
    run: refusedFor(10_000, "403", (mesh, o) =>
      mesh.kube.faultPlan.forbid({ ...o, resource: "virtualservices", name: GATEWAY }),
    ),
  },
  {
    id: "12c",
    title:
      "two VirtualServices; the gateway's refuses the rollback beyond main's life (main killed), then the post step",
    must: 'the post step brings both to 100 % stable and never says "nothing to clean up"',
    run: refusedBeyondMain((saved) => saved),
  },
  {
    id: "12d",
    title:
      "as 12c, but main's saved state says done (no rollout in flight) while the gateway's route is still on the canary",
    must: 'the post step looks at the routes: both 100 % stable, never "nothing to clean up"',
    run: refusedBeyondMain(withoutInFlight),
  },
  {
    id: "12e",
    title: "a person rolls the gateway's VirtualService back by hand at 50 %",
    must: "the mesh's VirtualService 100 % stable within 5 s; the person's left as they set it; the step fails",
    run: personRollsBackOne(GATEWAY_VS, MESH_VS),
  },
  {
    id: "12f",
    title: "a person rolls the mesh's (primary) VirtualService back by hand at 50 %",
    must: "the gateway's VirtualService 100 % stable within 5 s; the person's left as they set it; the step fails",
    run: personRollsBackOne(MESH_VS, GATEWAY_VS),
  },
  {
    id: "12g",
    title: "a person sets 70/30 while the action adopts a split (mesh 80/20, gateway 70/30)",
    must: "0 edits undone: no route write after the edit; the step fails saying so",
    run: personEditsWhile("continue", split(70, 30)),
  },
  {
    id: "12h",
    title: "a person sets 60/40 while the action restarts a split (on-split: restart)",
    must: "0 edits undone: no route write after the edit; the step fails saying so",
    run: personEditsWhile("restart", split(60, 40)),
  },
  {
    id: "12i",
    title:
      "two VirtualServices paused at 10 %; `command: rollback` while the gateway's refuses writes for 10 s",
    must: "both 100 % stable, the refusing one within 5 s of the outage's end; result rolled-back, exit 0",
    run: requestedRollbackRefused(10_000),
  },
  {
    id: "12j",
    title: "two VirtualServices; a controller undoes the gateway's rollback for 10 s (self-heal to 90/10)",
    must: "main keeps trying: both 100 % stable, the gateway's within 5 s of the controller stopping; result rolled-back",
    run: revertedFor(10_000),
  },
];
