/**
 * What `ACTIONS_STEP_DEBUG=true` shows of a run of the bundled action: a crash's stack trace
 * mapped back to src/ files and lines (dist/index.js.map), and at each decision the PromQL sent,
 * the counts read, the JSON Patch written and the verdict with its rule, never a credential.
 */
import { describe, expect, it } from "vitest";
import { NAMESPACE } from "../mesh/fixtures.ts";
import { runAction } from "../support/action-runner.ts";
import { fastInputs, runOnMesh, useMesh } from "../support/e2e.ts";

// @actions/core writes `::debug::` lines whatever the environment; the runner shows them when step
// debug is on, which these variables say as a runner would.
const DEBUG_ENV = { RUNNER_DEBUG: "1", ACTIONS_STEP_DEBUG: "true" };

/** The `::debug::` lines of a run, with the runner's command escaping undone. */
function debugLines(stdout: string): string[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("::debug::"))
    .map((line) =>
      line.slice("::debug::".length).replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%"),
    );
}

const meshWith = useMesh();

/** Stages that do not increase: the input parser throws after the action started. */
const CRASHING_INPUTS = {
  "virtual-service": "backend",
  "stable-subset": "v1",
  "canary-subset": "v2",
  "prometheus-url": "http://127.0.0.1:9",
  stages: "50,10,100",
};

describe("debug output of the bundled action", () => {
  it("logs a crash's stack with src/ file names and lines, and keeps the error line to one line", async () => {
    const run = await runAction({
      inputs: CRASHING_INPUTS,
      env: DEBUG_ENV,
    });
    expect(run.exitCode).toBe(1);
    const stack = debugLines(run.stdout).find((line) => /\n\s+at /.test(line));
    expect(stack, run.stdout).toBeDefined();
    // Node rewrote the minified bundle's frames through the source map.
    expect(stack).toMatch(/\bsrc\/[\w/-]+\.ts:\d+:\d+/);
    expect(stack).not.toMatch(/dist\/index\.js:\d+/);
    const errors = run.stdout.split("\n").filter((line) => line.startsWith("::error::"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("stages");
    expect(errors[0]).not.toMatch(/%0A|\(\S+:\d+:\d+\)|\.ts:\d+/);
  });

  it("without step debugging the same crash logs no stack (the source map is not parsed for it)", async () => {
    const run = await runAction({ inputs: CRASHING_INPUTS });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain("::error::");
    expect(debugLines(run.stdout).filter((line) => /\n\s+at /.test(line))).toEqual([]);
  });

  it("shows the PromQL, the counts, the JSON Patch and the verdict, and no credential", async () => {
    const m = await meshWith();
    const headerSecret = "prom-header-secret-debug-7";
    // A destination that sets a credential upstream: the JSON Patch's `test` of the route carries it.
    const routeSecret = "route-header-secret-debug-9";
    const vs = structuredClone(m.kube.get("virtualservices", NAMESPACE, "backend"));
    if (!vs) throw new Error("the mesh has no VirtualService backend");
    const spec = vs.spec as { http: Array<{ route: Array<Record<string, unknown>> }> };
    spec.http[0]!.route[0]!.headers = { request: { set: { authorization: `Bearer ${routeSecret}` } } };
    m.kube.seed("virtualservices", vs);
    const run = await runOnMesh(m, {
      inputs: fastInputs(m, {
        stages: "20,100",
        "pause-after": "20",
        "prometheus-headers": `X-Scope-OrgID: ${headerSecret}`,
      }),
    });
    expect(run.outputs.result, run.stdout).toBe("paused");
    const debug = debugLines(run.stdout).join("\n");
    expect(debug).toMatch(/PromQL at \S+: .*istio_requests_total\{[^}]*destination_version="v2"/);
    expect(debug).toMatch(/counts over \d+ ms since .*"canary":\{"requests":\d+/);
    expect(debug).toMatch(
      /JSON Patch for shop\/backend .*"path":"\/spec\/http\/0\/route\/0\/weight","value":80\b/,
    );
    expect(debug).toMatch(/analysis at 20 %: .*"rule":"[a-z-]+"/);
    expect(debug).toContain("(headers elided)");
    for (const secret of [headerSecret, routeSecret, "admin-token", "ghs_bot_token"])
      expect(debug).not.toContain(secret);
  }, 90_000);
});
