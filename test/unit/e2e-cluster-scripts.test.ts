/**
 * The real-cluster workflow's scripts (scripts/e2e-cluster/), checked where they can run here: the
 * manifests against their schemas; shellcheck over every script; route-weights.sh on the scenario
 * manifests and on shapes a cluster may hold; the inputs inputs.sh prints are the ones the
 * workflow's two action steps pass; and assert-outcome.sh reading the route and the Deployments with
 * the real kubectl from the Kubernetes API emulator (a VirtualService and an HTTPRoute), for outcomes it must accept and ones it must
 * refuse. Nothing here has a container runtime: the scripts that need Docker, kind and istioctl are
 * not run (docs/e2e-cluster.md).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DestinationRule, VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1beta1";
import { load, loadAll } from "js-yaml";
import { Deployment } from "kubernetes-models/apps/v1";
import { ConfigMap, Service } from "kubernetes-models/v1";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KubeApiEmulator, type KubeObject } from "../mesh/kube-api.ts";
import { kubectlInstalled } from "../support/kube-emulator.ts";
import { type Job, ROOT, type Workflow } from "../support/workflows.ts";

const DIR = join(ROOT, "scripts/e2e-cluster");
const SCENARIOS = ["sidecar-virtualservice", "sidecar-httproute", "ambient-httproute"] as const;

const manifest = (file: string): KubeObject[] =>
  (loadAll(readFileSync(join(DIR, "manifests", file), "utf8")) as KubeObject[]).filter(Boolean);
const routeOf = (file: string): KubeObject =>
  manifest(file).find((o) => o.kind === "VirtualService" || o.kind === "HTTPRoute") as KubeObject;

/** Runs a script with bash; `env` on top of this process's. */
function script(
  name: string,
  args: string[],
  options: { input?: string; env?: Record<string, string> } = {},
) {
  const run = spawnSync("bash", [join(DIR, name), ...args], {
    input: options.input,
    encoding: "utf8",
    env: { ...process.env, ...options.env },
    timeout: 60_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

function installed(tool: string, args: string[]): boolean {
  try {
    execFileSync(tool, args, { stdio: "ignore" });
    return true;
  } catch {
    console.warn(`${tool} is not installed: skipping its checks (sudo apt-get install -y ${tool})`);
    return false;
  }
}

/** Istio's v1 and v1beta1 networking schemas are the same; the model package ships v1beta1. */
const asV1beta1 = (o: KubeObject) => ({
  ...o,
  apiVersion: String(o.apiVersion).replace(/\/v1$/, "/v1beta1"),
});
const MODELS: Record<string, (o: KubeObject) => { validate(): void }> = {
  ConfigMap: (o) => new ConfigMap(o as never),
  Service: (o) => new Service(o as never),
  Deployment: (o) => new Deployment(o as never),
  DestinationRule: (o) => new DestinationRule(asV1beta1(o) as never),
  VirtualService: (o) => new VirtualService(asV1beta1(o) as never),
};
const manifests = readdirSync(join(DIR, "manifests")).flatMap((file) =>
  manifest(file).map((o) => [`${file}: ${o.kind} ${o.metadata.name}`, o] as const),
);

describe("the manifests", () => {
  it.each(manifests)("%s is in namespace e2e (or istio-system) and validates against its schema", (_, o) => {
    expect(["e2e", "istio-system"]).toContain(o.metadata.namespace);
    // No published schema package for the Gateway API here: HTTPRoute and Gateway are read by the tests below.
    if (o.kind === "HTTPRoute" || o.kind === "Gateway") return;
    const model = MODELS[String(o.kind)];
    expect(model, `a schema for ${o.kind}`).toBeDefined();
    expect(() => model?.(o).validate()).not.toThrow();
  });
});

describe.skipIf(!installed("shellcheck", ["--version"]))("shellcheck", () => {
  it("finds nothing in any script", () => {
    const scripts = readdirSync(DIR).filter((f) => f.endsWith(".sh"));
    expect(scripts.length).toBeGreaterThanOrEqual(9);
    const run = spawnSync("shellcheck", scripts, { cwd: DIR, encoding: "utf8" });
    expect(run.stdout + run.stderr).toBe("");
    expect(run.status).toBe(0);
  });
});

describe("route-weights.sh", () => {
  const weights = (route: unknown, stable: string, canary: string) =>
    script("route-weights.sh", [stable, canary], { input: JSON.stringify(route) });

  it("reads the scenarios' routes as they are deployed: all traffic on stable", () => {
    expect(weights(routeOf("virtualservice.yaml"), "v1", "v2").stdout).toBe(
      "http[0]:primary stable=100 canary=0\n",
    );
    expect(weights(routeOf("httproute.yaml"), "web-v1", "web-v2").stdout).toBe(
      "rules[0] stable=100 canary=0\n",
    );
  });

  it("reads HTTPRoute weights as proportions: sub-1 % stages, and the default weight 1", () => {
    const route = structuredClone(routeOf("httproute.yaml")) as KubeObject & {
      spec: { rules: Array<{ name?: string; backendRefs: Array<{ name: string; weight?: number }> }> };
    };
    const [stable, canary] = route.spec.rules[0]?.backendRefs ?? [];
    Object.assign(stable ?? {}, { weight: 999 });
    Object.assign(canary ?? {}, { weight: 1 });
    route.spec.rules.push(
      { name: "unweighted", backendRefs: [{ name: "web-v1" }, { name: "web-v2" }] },
      { backendRefs: [{ name: "elsewhere" }] },
    );
    expect(weights(route, "web-v1", "web-v2").stdout).toBe(
      "rules[0] stable=99.9 canary=0.1\nrules[1]:unweighted stable=50 canary=50\n",
    );
  });

  it("gives a lone VirtualService destination without weight 100, and skips routes to other hosts", () => {
    const route = structuredClone(routeOf("virtualservice.yaml")) as KubeObject & {
      spec: {
        http: Array<{ route: Array<{ destination: { host: string; subset?: string }; weight?: number }> }>;
      };
    };
    route.spec.http.push(
      { route: [{ destination: { host: "web", subset: "v2" } }] },
      { route: [{ destination: { host: "other" } }] },
    );
    expect(weights(route, "v1", "v2").stdout).toBe(
      "http[0]:primary stable=100 canary=0\nhttp[1] stable=0 canary=100\n",
    );
  });

  it("refuses what is neither a VirtualService nor an HTTPRoute", () => {
    const run = weights({ kind: "Service", spec: {} }, "web-v1", "web-v2");
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("not a VirtualService or HTTPRoute: kind Service");
  });
});

describe("inputs.sh and the workflow", () => {
  const workflow = load(readFileSync(join(ROOT, ".github/workflows/e2e-cluster.yml"), "utf8")) as Workflow & {
    jobs: { e2e: Job & { strategy: { matrix: { scenario: string[] } } } };
  };
  const job = workflow.jobs.e2e;
  const inputsOf = (scenario: string) =>
    Object.fromEntries(
      script("inputs.sh", [scenario])
        .stdout.trim()
        .split("\n")
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );

  it("runs every scenario, and inputs.sh knows no other", () => {
    expect(job.strategy.matrix.scenario).toEqual([...SCENARIOS]);
    const unknown = script("inputs.sh", ["sidecar-gateway"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain(`scenario 'sidecar-gateway' is not one of: ${SCENARIOS.join(" ")}`);
  });

  it("passes each of inputs.sh's inputs to both action steps, from the step that printed them", () => {
    const actionSteps = job.steps.filter((s) => s.uses === "./");
    expect(actionSteps.map((s) => s.id)).toEqual(["healthy", "failing"]);
    const names = Object.keys(inputsOf("sidecar-virtualservice"));
    for (const step of actionSteps) {
      const expected = Object.fromEntries(names.map((n) => [n, `\${{ steps.inputs.outputs.${n} }}`]));
      expect(step.with).toEqual({ ...expected, "github-token": "" });
    }
  });

  it("names the route, the versions, the stages (below 1 % on HTTPRoutes) and the reporter each scenario needs", () => {
    const pick = ({
      "virtual-service": vs,
      "http-route": route,
      reporter,
      stages,
      ...rest
    }: Record<string, string>) => ({
      vs,
      route,
      reporter,
      stages,
      split: [rest["stable-subset"], rest["canary-subset"], rest["stable-host"], rest["canary-host"]].join(
        ",",
      ),
    });
    expect(pick(inputsOf("sidecar-virtualservice"))).toEqual({
      vs: "web",
      route: "",
      reporter: "destination",
      stages: "10,50,100",
      split: "v1,v2,,",
    });
    expect(pick(inputsOf("sidecar-httproute"))).toEqual({
      vs: "",
      route: "web",
      reporter: "destination",
      stages: "0.5,10,50,100",
      split: ",,web-v1,web-v2",
    });
    expect(pick(inputsOf("ambient-httproute"))).toEqual({
      vs: "",
      route: "web",
      reporter: "waypoint",
      stages: "0.5,10,50,100",
      split: ",,web-v1,web-v2",
    });
  });
});

interface AppDeployment extends KubeObject {
  spec: {
    replicas?: number;
    template: {
      metadata: { annotations?: Record<string, string> };
      spec: { volumes: Array<{ name: string; configMap: { name: string } }> };
    };
  };
}

/** A Deployment of manifests/app.yaml running `release` with ConfigMap web-<variant>. */
function deployment(name: string, release: string, variant: "healthy" | "failing", replicas = 1): KubeObject {
  const d = structuredClone(
    manifest("app.yaml").find((o) => o.kind === "Deployment" && o.metadata.name === name),
  ) as AppDeployment;
  d.spec.replicas = replicas;
  d.spec.template.metadata.annotations = { "e2e.istio-canary/release": release };
  const conf = d.spec.template.spec.volumes.find((v) => v.name === "conf");
  if (conf) conf.configMap.name = `web-${variant}`;
  return d;
}

/** The scenario's route with the canary at `canary` percent (stable the rest). */
function routeAt(kind: "virtualservice" | "httproute", canary: number): KubeObject {
  const route = structuredClone(routeOf(`${kind}.yaml`)) as KubeObject & {
    spec: {
      http?: Array<{ route: Array<{ weight: number }> }>;
      rules?: Array<{ backendRefs: Array<{ weight: number }> }>;
    };
  };
  const targets = route.spec.http?.[0]?.route ?? route.spec.rules?.[0]?.backendRefs ?? [];
  Object.assign(targets[0] ?? {}, { weight: 100 - canary });
  Object.assign(targets[1] ?? {}, { weight: canary });
  return route;
}

// Both route kinds, as the emulator serves both (the ambient scenario asserts as sidecar-httproute does).
const kinds = [
  {
    kind: "virtualservice" as const,
    resource: "virtualservices",
    scenario: "sidecar-virtualservice",
    rule: "http[0]:primary",
  },
  { kind: "httproute" as const, resource: "httproutes", scenario: "sidecar-httproute", rule: "rules[0]" },
] as const;

describe.skipIf(!kubectlInstalled("assert-outcome.sh against the emulator"))(
  "assert-outcome.sh, with kubectl, on the emulator",
  () => {
    let kube: KubeApiEmulator;
    let dir: string;
    beforeEach(async () => {
      kube = await new KubeApiEmulator().start();
      kube.seed("namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: "e2e" } });
      dir = mkdtempSync(join(tmpdir(), "e2e-cluster-"));
      writeFileSync(join(dir, "kubeconfig"), kube.kubeconfig());
    });
    afterEach(async () => {
      await kube.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    /** The cluster after a run: the route, web-v1 and web-v2; then assert-outcome.sh's verdict. */
    async function judge(
      k: (typeof kinds)[number],
      cluster: { canary: number; stable: KubeObject; canaryDeployment: KubeObject },
      args: [expected: string, result: string, finalized: string],
    ) {
      kube.seed(k.resource, routeAt(k.kind, cluster.canary));
      kube.seed("deployments", cluster.stable);
      kube.seed("deployments", cluster.canaryDeployment);
      // Asynchronously: the emulator answers kubectl from this process's event loop.
      const { execFile } = await import("node:child_process");
      return await new Promise<{ code: number; stdout: string }>((done) =>
        execFile(
          "bash",
          [join(DIR, "assert-outcome.sh"), k.scenario, ...args],
          {
            env: { ...process.env, E2E_KUBECONFIG: join(dir, "kubeconfig") },
            encoding: "utf8",
            timeout: 60_000,
          },
          (error, stdout) => done({ code: error ? Number(error.code ?? 1) : 0, stdout }),
        ),
      );
    }
    const promoted = {
      stable: deployment("web-v1", "healthy-1", "healthy"),
      canaryDeployment: deployment("web-v2", "healthy-1", "healthy", 0),
    };
    const rolledBack = {
      stable: deployment("web-v1", "initial", "healthy"),
      canaryDeployment: deployment("web-v2", "failing-2", "failing"),
    };

    describe.each(kinds)("$kind", (k) => {
      it("accepts a promotion: finalized, stable runs the canary's release, canary at zero, 100 % stable", async () => {
        const run = await judge(k, { canary: 0, ...promoted }, ["promoted", "promoted", "true"]);
        expect(run.stdout).toContain(`ok   route web ${k.rule}: stable=100 canary=0`);
        expect(run.stdout).toContain("ok   web-v1 runs the canary's release: healthy-1 web-healthy");
        expect(run.code).toBe(0);
      });

      it("refuses a promotion that left the traffic on the canary", async () => {
        const run = await judge(k, { canary: 100, ...promoted }, ["promoted", "promoted", "true"]);
        expect(run.stdout).toContain(
          `FAIL route web ${k.rule}: stable=0 canary=100 (wanted stable=100 canary=0)`,
        );
        expect(run.code).toBe(1);
      });

      it("refuses a promotion that was not finalized, or whose stable still runs the old release", async () => {
        const stale = { ...promoted, stable: deployment("web-v1", "initial", "healthy") };
        const run = await judge(k, { canary: 0, ...stale }, ["promoted", "promoted", "false"]);
        expect(run.stdout).toContain("FAIL the action's finalized output: false (wanted true)");
        expect(run.stdout).toContain(
          "FAIL web-v1 runs the canary's release: initial web-healthy (wanted healthy-1 web-healthy)",
        );
        expect(run.code).toBe(1);
      });

      it("accepts a rollback with 100 % stable and the stable release untouched", async () => {
        const run = await judge(k, { canary: 0, ...rolledBack }, ["rolled-back", "rolled-back", "false"]);
        expect(run.stdout).toContain(`ok   route web ${k.rule}: stable=100 canary=0`);
        expect(run.code).toBe(0);
      });

      it("refuses a rollback that left canary traffic, or a failing release on stable, or another result", async () => {
        const leaked = await judge(k, { canary: 10, ...rolledBack }, ["rolled-back", "rolled-back", "false"]);
        expect(leaked.stdout).toContain(`FAIL route web ${k.rule}: stable=90 canary=10`);
        expect(leaked.code).toBe(1);
        kube.remove("deployments", "e2e", "web-v1");
        const copied = { ...rolledBack, stable: deployment("web-v1", "failing-2", "failing") };
        const bad = await judge(k, { canary: 0, ...copied }, ["rolled-back", "promoted", "true"]);
        expect(bad.stdout).toContain("FAIL the action's result: promoted (wanted rolled-back)");
        expect(bad.stdout).toContain(
          "FAIL web-v1 runs a healthy configuration: web-failing (wanted web-healthy)",
        );
        expect(bad.code).toBe(1);
      });
    });
  },
);
