/**
 * Issue 12, items 1 and 3: a person's hand on the VirtualService mid-rollout wins; a corrupt or
 * missing state annotation, a route split by hand or a renamed route never make rollback impossible.
 */
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import {
  canaryShare,
  currentVs,
  errors,
  FAILING,
  FIRST_STAGE,
  firstCanaryWrite,
  HEALTHY,
  routesOf,
  routeWritesAfter,
  runArmed,
  runTimed,
  seconds,
  stableAfterCanary,
  stateOf,
  type TimedRun,
  verdictAt,
  weightsOf,
  within,
  withMesh,
} from "./harness.ts";
import type { FaultCase, Measured } from "./table.ts";

type Destinations = Array<{ destination: { host: string; subset: string }; weight?: number }>;

const dest = (subset: string, weight?: number) => ({
  destination: { host: SERVICE, subset },
  ...(weight === undefined ? {} : { weight }),
});

function editVs(mesh: Mesh, edit: (vs: KubeObject) => void): KubeObject {
  return mesh.kube.editOutOfBand("virtualservices", NAMESPACE, SERVICE, edit);
}

function setFirstRoute(mesh: Mesh, route: Destinations): KubeObject {
  return editVs(mesh, (vs) => {
    const http = (vs.spec as { http: Array<{ route: Destinations }> }).http;
    (http[0] as { route: Destinations }).route = route;
  });
}

/** Mid-stage, a person sets the first route to `route`; the action must leave it there. */
function personEdits(route: Destinations): () => Promise<Measured> {
  return () =>
    withMesh(HEALTHY, async (mesh) => {
      let edited: { at: number; vs: KubeObject } | undefined;
      const run = await runArmed(mesh, (m) => {
        edited = { at: Date.now(), vs: setFirstRoute(m, route) };
      });
      const writes = edited ? routeWritesAfter(mesh, edited.at, edited.vs) : -1;
      const final = weightsOf(currentVs(mesh));
      const expected = weightsOf(edited?.vs);
      // Undone: the canary's share is no longer what the person set (100/0 and 100 are the same).
      const undone = canaryShare(currentVs(mesh)) === canaryShare(edited?.vs) ? 0 : 1;
      const ok = edited !== undefined && undone === 0 && writes === 0 && run.exitCode !== 0;
      return {
        ok,
        figures: { editsUndone: undone },
        measured:
          `final ${final} (person set ${expected}); ${writes} route write(s) after the edit; ` +
          `${undone} edit undone; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}` +
          `; says: ${errors(run).slice(0, 120) || "nothing"}`,
      };
    });
}

/** A failing canary whose state or route is damaged mid-stage: main must still roll back in time. */
function rollbackDespite(damage: (mesh: Mesh) => void): () => Promise<Measured> {
  return () =>
    withMesh(FAILING, async (mesh) => {
      // Damaged once the first stage's weight is written and read back, before any verdict.
      const run = await runArmed(mesh, damage, { armOn: FIRST_STAGE });
      const verdict = verdictAt(run);
      const stable = stableAfterCanary(mesh);
      return {
        ok: within(verdict, stable, 5000) && canaryShare(currentVs(mesh)) === 0,
        measured:
          `final ${weightsOf(currentVs(mesh))}; verdict → 100 % stable ${seconds(verdict, stable)}` +
          (stable === undefined ? `; says: ${errors(run).slice(0, 140)}` : ""),
      };
    });
}

/** Main is killed mid-stage at 10 %; then `damage` hits the state before anyone cleans up. */
async function killedThenDamaged(mesh: Mesh, damage: (mesh: Mesh) => void): Promise<TimedRun> {
  const main = await runArmed(mesh, (m, child) => {
    child?.kill("SIGKILL");
    damage(m);
  });
  return main;
}

const corrupt = (m: Mesh) =>
  editVs(m, (vs) => {
    vs.metadata.annotations = { ...vs.metadata.annotations, [STATE_ANNOTATION]: "{not json" };
  });
const removeState = (m: Mesh) =>
  editVs(m, (vs) => {
    delete vs.metadata.annotations?.[STATE_ANNOTATION];
  });

/** The state, if readable, does not claim what the routes contradict. */
function stateAgrees(mesh: Mesh): boolean {
  const state = stateOf(mesh, STATE_ANNOTATION);
  const share = canaryShare(currentVs(mesh));
  if (!state) return true;
  if (state.status === "rolled-back" || state.status === "promoted") return share === (state.weight ?? share);
  return typeof state.weight !== "number" || state.weight === share;
}

function describeEnd(mesh: Mesh, run: TimedRun): string {
  const state = stateOf(mesh, STATE_ANNOTATION);
  return (
    `final ${weightsOf(currentVs(mesh))}; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; ` +
    `state ${state ? `${state.status} at ${state.weight}` : "none"}${stateAgrees(mesh) ? "" : " (contradicts the routes)"}`
  );
}

export const peopleAndStateCases: FaultCase[] = [
  {
    id: "1a",
    title: "a person sets 100/0 mid-stage (emergency rollback by hand)",
    must: "no weight write after the edit; 0 edits undone; the step fails saying so",
    run: personEdits([dest("v1", 100), dest("v2", 0)]),
  },
  {
    id: "1b",
    title: "a person removes the canary destination mid-stage",
    must: "no weight write after the edit; 0 edits undone; the step fails saying so",
    run: personEdits([dest("v1")]),
  },
  {
    id: "1c",
    title: "a person sets 70/30 mid-stage",
    must: "no weight write after the edit; 0 edits undone; the step fails saying so",
    run: personEdits([dest("v1", 70), dest("v2", 30)]),
  },
  {
    id: "3a",
    title: "`{not json` in the state annotation mid-stage, failing canary",
    must: "main: 100 % stable within 5 s of the verdict",
    run: rollbackDespite(corrupt),
  },
  {
    id: "3b",
    title: "main killed at 10 %, state annotation corrupted, then the post step",
    must: "the post step restores 100 % stable",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        const main = await killedThenDamaged(mesh, corrupt);
        const post = await runTimed(mesh, { state: main.state });
        return { ok: canaryShare(currentVs(mesh)) === 0, measured: `post step: ${describeEnd(mesh, post)}` };
      }),
  },
  {
    id: "3c",
    title: "state annotation corrupted at 10 %, then `command: rollback`",
    must: "100 % stable; result rolled-back",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        await killedThenDamaged(mesh, corrupt);
        const rollback = await runTimed(mesh, { inputs: { command: "rollback" }, runId: "2002" });
        return {
          ok: canaryShare(currentVs(mesh)) === 0 && rollback.outputs.result === "rolled-back",
          measured: describeEnd(mesh, rollback),
        };
      }),
  },
  {
    id: "3d",
    title: "state annotation removed at 10 %, `command: rollback`, then a new rollout",
    must: "100 % stable; the state never contradicts the routes; the next rollout is not refused",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        await killedThenDamaged(mesh, removeState);
        const rollback = await runTimed(mesh, { inputs: { command: "rollback" }, runId: "2002" });
        const stable = canaryShare(currentVs(mesh)) === 0;
        const agrees = stateAgrees(mesh);
        const end = describeEnd(mesh, rollback);
        const before = Date.now();
        const next = await runTimed(mesh, { inputs: { stages: "10,100" }, runId: "3003" });
        const wrote = (firstCanaryWriteAfter(mesh, before) ?? 0) > 0;
        return {
          ok: stable && agrees && wrote,
          measured: `${end}; next rollout ${wrote ? "started" : `refused: ${errors(next).slice(0, 100)}`}`,
        };
      }),
  },
  {
    id: "3e",
    title: "a route split 80/20 by hand (no state), `command: rollback`",
    must: "100 % stable; result rolled-back",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        setFirstRoute(mesh, [dest("v1", 80), dest("v2", 20)]);
        const rollback = await runTimed(mesh, { inputs: { command: "rollback" } });
        return {
          ok: canaryShare(currentVs(mesh)) === 0 && rollback.outputs.result === "rolled-back",
          measured: `${describeEnd(mesh, rollback)}; says: ${errors(rollback).slice(0, 100) || "nothing"}`,
        };
      }),
  },
  {
    id: "3f",
    title: "someone renames the managed route mid-stage, failing canary",
    must: "main: 100 % stable within 5 s of the verdict",
    run: rollbackDespite((m) =>
      editVs(m, (vs) => {
        const first = routesOf(vs)[0];
        if (first) first.name = "primary-v2";
      }),
    ),
  },
];

function firstCanaryWriteAfter(mesh: Mesh, after: number): number | undefined {
  const t = firstCanaryWrite(mesh);
  if (t !== undefined && t > after) return t;
  return mesh.kube.audit
    .filter(
      (e) => e.resource === "virtualservices" && e.code === 200 && e.object && Date.parse(e.time) > after,
    )
    .map((e) => ({ at: Date.parse(e.time), share: canaryShare(e.object) }))
    .find((w) => w.share > 0)?.at;
}
