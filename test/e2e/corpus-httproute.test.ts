/**
 * The corpus of published HTTPRoutes (issue 22): every `*.yaml` in test/corpus/fixtures/httproute/
 * (each citing its source and saying what the action should do) run through the bundled action on
 * the local mesh with real Prometheus, judged by test/corpus/http-route-harness.ts. The cases run
 * a few at a time, as the VirtualService corpus does.
 */
import { describe, expect, it } from "vitest";
import { httpRouteCases } from "../corpus/http-route-expectations.ts";
import { httpRouteInputs, httpRouteProblems, startHttpRouteMesh } from "../corpus/http-route-harness.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import { runOnMesh } from "../support/e2e.ts";
import { slots } from "../support/slots.ts";

const MESHES_AT_ONCE = 4;
const slot = slots(MESHES_AT_ONCE);

describe.concurrent("published HTTPRoutes", () => {
  for (const given of httpRouteCases()) {
    it(`${given.fixture}: ${given.expect.slice(0, 120)}`, { timeout: 240_000 }, () =>
      slot(async () => {
        const { mesh, route, versions, skipped, c } = await startHttpRouteMesh(given);
        try {
          await mesh.scraped(c.outcome.kind === "refused" ? 4_000 : 15_000).catch(() => undefined);
          const before = mesh.kube.get(
            "httproutes",
            route.metadata.namespace ?? "default",
            route.metadata.name,
          ) as KubeObject;
          const run = await runOnMesh(mesh, { inputs: httpRouteInputs(c, mesh, route), timeoutMs: 100_000 });
          const note = skipped.length > 0 ? `the emulator does not serve ${skipped.join(", ")}` : undefined;
          expect(httpRouteProblems(c, run, mesh, before, versions.canary), note).toEqual([]);
        } finally {
          await mesh.stop();
        }
      }),
    );
  }
});
