/**
 * Issue 12, items 2 and 9: Kubernetes API blips when a failing canary's rollback is due or a stage
 * write is due, writes applied but unanswered, and a concurrent writer's annotation.
 */
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import {
  atRollbackWrite,
  canaryShare,
  currentVs,
  errors,
  FAILING,
  HEALTHY,
  runArmed,
  runTimed,
  seconds,
  stableAfterCanary,
  verdictAt,
  weightsOf,
  within,
  withMesh,
} from "./harness.ts";
import type { FaultCase, Measured } from "./table.ts";

const VS = { resource: "virtualservices" } as const;

/**
 * A failing canary whose rollback meets `arm`'s fault, set off by the rollback's write as it arrives
 * (and applied to it). Measures verdict and outage to 100 % stable.
 */
async function rollbackUnder(
  arm: (mesh: Mesh) => void,
  limitFrom: "verdict" | "outage-end",
  outageMs?: number,
): Promise<Measured> {
  return withMesh(FAILING, async (mesh) => {
    atRollbackWrite(mesh, arm);
    const run = await runTimed(mesh);
    const verdict = verdictAt(run);
    const stable = stableAfterCanary(mesh);
    const hits = mesh.kube.faultPlan.hits;
    // A window's outage ends when the window does, whether or not the action was still asking.
    const outageEnd = outageMs === undefined ? hits.at(-1)?.at : (hits[0]?.at ?? 0) + outageMs;
    const from = limitFrom === "verdict" ? verdict : outageEnd;
    const ok = within(from, stable, 5000) && canaryShare(currentVs(mesh)) === 0;
    return {
      ok,
      measured:
        `final ${weightsOf(currentVs(mesh))}; verdict → 100 % stable ${seconds(verdict, stable)}` +
        `; ${hits.length} faulted request(s), last ${seconds(verdict, outageEnd)} after the verdict (outage end)` +
        `; outage end → stable ${seconds(outageEnd, stable)}` +
        (stable === undefined ? `; error: ${errors(run).slice(0, 160)}` : ""),
    };
  });
}

/** A healthy canary whose next stage write meets `arm`'s fault: it must still be promoted. */
async function promotedDespite(
  arm: (mesh: Mesh) => void,
  inputs: Record<string, string> = {},
): Promise<Measured> {
  return withMesh(HEALTHY, async (mesh) => {
    const run = await runArmed(mesh, arm, { inputs: { stages: "10,100", ...inputs } });
    const final = weightsOf(currentVs(mesh));
    const ok = run.outputs.result === "promoted" && final === "0/100";
    return {
      ok,
      measured:
        `result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; final ${final}; ` +
        `${mesh.kube.faultPlan.hits.length} faulted request(s)` +
        (ok ? "" : `; error: ${errors(run).slice(0, 160)}`),
    };
  });
}

export const kubeApiCases: FaultCase[] = [
  {
    id: "2a",
    title: "500s for 5 s when a failing canary's rollback is due",
    must: "100 % stable within 5 s of the outage's end (it starts at the verdict)",
    run: () =>
      rollbackUnder((m) => m.kube.faultPlan.failFor(5000, { ...VS, status: 500 }), "outage-end", 5000),
  },
  {
    id: "2b",
    title: "one 429 with Retry-After: 3 when the rollback is due",
    must: "100 % stable within 5 s of the verdict",
    run: () => rollbackUnder((m) => m.kube.faultPlan.throttle({ ...VS, retryAfterSeconds: 3 }), "verdict"),
  },
  {
    id: "2c",
    title: "a storm of 409 Conflict on every write for 2 s when the rollback is due",
    must: "100 % stable within 5 s of the verdict",
    run: () => rollbackUnder((m) => m.kube.faultPlan.conflictStorm({ ...VS, ms: 2000 }), "verdict"),
  },
  {
    id: "2d",
    title: "the rollback's write is applied but its answer is dropped",
    must: "100 % stable within 5 s of the verdict",
    run: () => rollbackUnder((m) => m.kube.faultPlan.applyThenDrop({ ...VS, outcome: "drop" }), "verdict"),
  },
  {
    id: "2e",
    title: "the rollback's first request hangs (never answered)",
    must: "100 % stable within 5 s of the verdict",
    run: () => rollbackUnder((m) => m.kube.faultPlan.hold({ ...VS, count: 1 }), "verdict"),
  },
  {
    id: "2f",
    title: "one 500 on the read-back after a successful stage write (healthy canary)",
    must: "promoted, 0/100: a failed read-back is retried, not blamed on the canary",
    run: () =>
      promotedDespite((m) =>
        m.kube.faultPlan.fail({ ...VS, status: 500, verbs: ["get"], after: "patch", count: 1 }),
      ),
  },
  {
    id: "2g",
    title: "503 for 3 s when the next stage's write is due (healthy canary)",
    must: "promoted, 0/100: stage writes retry transient failures",
    run: () =>
      promotedDespite((m) => m.kube.faultPlan.failFor(3000, { ...VS, status: 503, fromFirstMatch: true })),
  },
  {
    id: "2h",
    title: "one 429 with Retry-After: 2 when the next stage's write is due (healthy canary)",
    must: "promoted, 0/100",
    run: () => promotedDespite((m) => m.kube.faultPlan.throttle({ ...VS, retryAfterSeconds: 2 })),
  },
  {
    id: "2i",
    title: "503 on every write for 65 s from the rollback's write (longer than a minute)",
    must: "100 % stable within 5 s of the outage's end, by main or else by the post step",
    run: () =>
      withMesh(FAILING, async (mesh) => {
        const OUTAGE_MS = 65_000;
        atRollbackWrite(mesh, (m) =>
          m.kube.faultPlan.failFor(OUTAGE_MS, { ...VS, status: 503, verbs: ["patch", "update"] }),
        );
        const main = await runTimed(mesh, { timeoutMs: 120_000 });
        const outageEnd = (mesh.kube.faultPlan.hits[0]?.at ?? 0) + OUTAGE_MS;
        let by = "main";
        if (canaryShare(currentVs(mesh)) !== 0) {
          // The runner starts the post step right after main ends, with main's saved state.
          by = "the post step";
          await runTimed(mesh, { state: main.state, timeoutMs: 120_000 });
        }
        const stable = stableAfterCanary(mesh);
        return {
          ok: within(outageEnd, stable, 5000),
          measured:
            `outage end → 100 % stable ${seconds(outageEnd, stable)} (${stable === undefined ? "never" : by}); ` +
            `main ended ${seconds(outageEnd, main.endedAt)} after the outage's end; final ${weightsOf(currentVs(mesh))}`,
        };
      }),
  },
  {
    id: "9",
    title: "another writer adds an annotation just before the action's first write (none before)",
    must: "the other writer's annotation survives every write: 0 person's edits undone",
    run: () =>
      withMesh(FAILING, async (mesh) => {
        let edited = false;
        mesh.kube.faultPlan.onRequest((info) => {
          if (edited || info.verb !== "patch" || info.resource !== "virtualservices") return;
          edited = true;
          mesh.kube.editOutOfBand("virtualservices", NAMESPACE, SERVICE, (o) => {
            o.metadata.annotations = { ...o.metadata.annotations, "team.example.com/owner": "payments" };
          });
        });
        const run = await runTimed(mesh);
        const kept = currentVs(mesh)?.metadata.annotations?.["team.example.com/owner"] === "payments";
        return {
          ok: edited && kept,
          figures: { editsUndone: kept ? 0 : 1 },
          measured: `annotation ${kept ? "kept" : "dropped"} (${kept ? 0 : 1} edit undone); result ${run.outputs.result ?? "none"}; final ${weightsOf(currentVs(mesh))}`,
        };
      }),
  },
];
