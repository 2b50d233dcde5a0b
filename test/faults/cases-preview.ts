/**
 * Issue 23's preview under faults: a person deletes the kept preview route mid-rollout (their edit
 * wins, and the rollback is as prompt as without a preview), and a forged preview annotation with
 * no preview route to vouch for it (it must not widen the first stage's count to earlier failures).
 * The users' traffic goes through the VirtualService as Istio routes it, so a route ahead of the
 * managed one takes its own requests only.
 */
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import type { Mesh, MeshOptions } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import type { TrafficFlow } from "../mesh/traffic.ts";
import {
  currentVs,
  errors,
  FAILING,
  FIRST_STAGE,
  HEALTHY,
  routesOf,
  runArmed,
  runTimed,
  seconds,
  storedWrites,
  verdictAt,
  within,
  withMesh,
} from "./harness.ts";
import type { FaultCase } from "./table.ts";

const USERS: TrafficFlow[] = [{ source: "mesh", host: SERVICE, share: 1 }];
const PREVIEW_ANNOTATION = "canary.istio-action.dev/preview";
/** The rollout id of the harness' run (commit 0123456, run 1001): the preview's default value. */
const ROLLOUT_ID = "0123456-1001";

const named = (vs: KubeObject | undefined, name: string) => routesOf(vs).find((r) => r.name === name);
const previewNames = (vs: KubeObject | undefined) =>
  routesOf(vs)
    .map((r) => r.name ?? "")
    .filter((n) => n.startsWith("istio-canary-preview"));
/** The managed route's canary weight (0 without a canary destination). */
const primaryCanary = (vs: KubeObject | undefined) =>
  named(vs, "primary")?.route?.find((d) => d.destination.subset === "v2")?.weight ?? 0;

function editVs(mesh: Mesh, edit: (vs: KubeObject) => void): KubeObject {
  return mesh.kube.editOutOfBand("virtualservices", NAMESPACE, SERVICE, edit);
}

/** When the managed route went back to 0 % canary for good after it first carried some. */
function primaryStableAt(mesh: Mesh): number | undefined {
  let since: number | undefined;
  let carried = false;
  for (const w of storedWrites(mesh)) {
    if (primaryCanary(w.object) > 0) {
      carried = true;
      since = undefined;
    } else if (carried) since ??= w.at;
  }
  return primaryCanary(currentVs(mesh)) === 0 ? since : undefined;
}

const withUsers = (options: MeshOptions): MeshOptions => ({ ...options, traffic: USERS });

export const previewCases: FaultCase[] = [
  {
    id: "23a",
    title: "preview: keep, a person deletes the preview route at stage 1, failing canary",
    must: "the route stays deleted (0 edits undone); 100 % stable within 5 s of the verdict",
    run: () =>
      withMesh(withUsers(FAILING), async (mesh) => {
        const inputs = { preview: "keep" };
        const preview = await runTimed(mesh, { inputs: { ...inputs, command: "preview" } });
        const added = previewNames(currentVs(mesh));
        let deletedAt: number | undefined;
        const run = await runArmed(
          mesh,
          (m) => {
            editVs(m, (vs) => {
              const http = (vs.spec as { http: Array<{ name?: string }> }).http;
              (vs.spec as { http: unknown[] }).http = http.filter(
                (r) => !r.name?.startsWith("istio-canary-preview"),
              );
            });
            deletedAt = Date.now();
          },
          { inputs, armOn: FIRST_STAGE },
        );
        const readded = storedWrites(mesh).filter(
          (w) => deletedAt !== undefined && w.at > deletedAt && previewNames(w.object).length > 0,
        ).length;
        const verdict = verdictAt(run);
        const stable = primaryStableAt(mesh);
        return {
          ok:
            added.length === 1 &&
            deletedAt !== undefined &&
            readded === 0 &&
            within(verdict, stable, 5000) &&
            run.outputs.result === "rolled-back",
          figures: { editsUndone: readded > 0 ? 1 : 0 },
          measured:
            `preview step: ${preview.outputs.result ?? "none"} (${added.join(", ") || "no route"}); ` +
            `${readded} write(s) with a preview route after the deletion; verdict → 100 % stable ${seconds(verdict, stable)}; ` +
            `result ${run.outputs.result ?? "none"}${stable === undefined ? `; says: ${errors(run).slice(0, 120)}` : ""}`,
        };
      }),
  },
  {
    id: "23b",
    title:
      "a forged preview annotation (this rollout's id, 10 min old) and no preview route, after 300 failed canary requests",
    must: "the first stage does not count the earlier failures: promoted; the annotation routes nothing",
    run: () =>
      withMesh(withUsers(HEALTHY), async (mesh) => {
        // A person's QA route sends 300 requests to a failing canary, then is removed.
        mesh.traffic.setBehaviour("v2", { errorRate: 0.5 });
        editVs(mesh, (vs) => {
          const http = (vs.spec as { http: unknown[] }).http;
          http.unshift({
            name: "qa",
            match: [{ headers: { "x-qa": { exact: "1" } } }],
            route: [{ destination: { host: SERVICE, subset: "v2" } }],
          });
        });
        const qa = mesh.traffic.request({ source: "mesh", host: SERVICE, headers: { "x-qa": "1" } }, 300);
        await new Promise((done) => setTimeout(done, 2500));
        mesh.traffic.setBehaviour("v2", { errorRate: 0.002 });
        const since = new Date(Date.now() - 600_000).toISOString();
        editVs(mesh, (vs) => {
          (vs.spec as { http: Array<{ name?: string }> }).http = (
            vs.spec as { http: Array<{ name?: string }> }
          ).http.filter((r) => r.name !== "qa");
          vs.metadata.annotations = {
            ...vs.metadata.annotations,
            [PREVIEW_ANNOTATION]: JSON.stringify({
              header: "x-canary",
              value: ROLLOUT_ID,
              rolloutId: ROLLOUT_ID,
              at: since,
            }),
          };
        });
        const run = await runTimed(mesh, { inputs: { stages: "10,100" } });
        const report = JSON.parse(run.outputs.report ?? "{}") as {
          stages?: Array<{ canary?: { requests: number; errors: number } }>;
        };
        const first = report.stages?.[0]?.canary;
        return {
          ok:
            (qa.served.v2 ?? 0) === 300 &&
            run.outputs.result === "promoted" &&
            previewNames(currentVs(mesh)).length === 0,
          measured:
            `QA route: ${qa.served.v2 ?? 0} requests to the failing canary; rollout: ${run.outputs.result ?? "none"}, ` +
            `stage 1 counted ${first ? `${first.errors}/${first.requests} canary errors` : "nothing"}` +
            `${run.outputs.result === "promoted" ? "" : `; says: ${errors(run).slice(0, 120)}`}`,
        };
      }),
  },
];
