/**
 * What we hand users is valid as written: manifests/ against the Kubernetes and Istio schemas
 * (kubernetes-models, @kubernetes-models/istio), consistent with each other, with a Role that grants
 * exactly what an end-to-end run uses; workflows and action.yml against GitHub's schemas
 * (@action-validator/core), each with the least permissions.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { validateAction, validateWorkflow } from "@action-validator/core";
import { DestinationRule, VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1beta1";
import { PeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1beta1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { STATE_ANNOTATION } from "../src/constants.ts";
import { type Mesh, startMesh } from "./mesh/index.ts";
import { fastInputs, runOnMesh } from "./support/e2e.ts";
import { loadManifests, MANIFESTS, type ManifestDoc, seedManifests } from "./support/manifests.ts";
import { finalizeManifestDeployments } from "./support/workloads.ts";

const docs = loadManifests();
const ofKind = (kind: string) => docs.filter((d) => d.object.kind === kind).map((d) => d.object);

/** Istio's v1 and v1beta1 networking schemas are the same; the model package ships v1beta1. */
const asV1beta1 = (o: ManifestDoc["object"]) => ({
  ...o,
  apiVersion: o.apiVersion.replace(/\/v1$/, "/v1beta1"),
});

const MODELS: Record<string, (o: ManifestDoc["object"]) => { validate(): void }> = {
  Namespace: (o) => new Namespace(o as never),
  Service: (o) => new Service(o as never),
  ServiceAccount: (o) => new ServiceAccount(o as never),
  Deployment: (o) => new Deployment(o as never),
  Role: (o) => new Role(o as never),
  RoleBinding: (o) => new RoleBinding(o as never),
  DestinationRule: (o) => new DestinationRule(asV1beta1(o) as never),
  VirtualService: (o) => new VirtualService(asV1beta1(o) as never),
  PeerAuthentication: (o) => new PeerAuthentication(o as never),
};

describe("manifests/", () => {
  it("lists every manifest in kustomization.yaml", () => {
    const kustomization = parse(readFileSync(join(MANIFESTS, "kustomization.yaml"), "utf8")) as {
      resources: string[];
    };
    const files = readdirSync(MANIFESTS).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    expect([...kustomization.resources].sort()).toEqual(files.sort());
  });

  it.each(docs.map((d) => [`${d.file}: ${d.object.kind} ${d.object.metadata.name}`, d] as const))(
    "%s validates against its schema",
    (_, d) => {
      const model = MODELS[d.object.kind];
      expect(model, `a schema for ${d.object.kind}`).toBeDefined();
      expect(() => model?.(d.object).validate()).not.toThrow();
    },
  );

  it("the schemas catch a broken manifest", () => {
    const vs = structuredClone(ofKind("VirtualService")[0]) as ManifestDoc["object"];
    (vs.spec as { http: Array<{ route: Array<{ weight: unknown }> }> }).http[0]!.route[0]!.weight = "all";
    expect(() => MODELS.VirtualService?.(vs).validate()).toThrow();
    const deployment = structuredClone(ofKind("Deployment")[0]) as ManifestDoc["object"];
    (deployment.spec as { replicas: unknown }).replicas = "two";
    expect(() => MODELS.Deployment?.(deployment).validate()).toThrow();
  });

  it("the subsets select the Deployments' pods, and the Service selects both", () => {
    const rule = ofKind("DestinationRule")[0] as ManifestDoc["object"];
    const service = ofKind("Service")[0] as ManifestDoc["object"];
    const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    const podLabels = ofKind("Deployment").map(
      (d) =>
        (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels,
    );
    for (const subset of (rule.spec as { subsets: Array<{ name: string; labels: Record<string, string> }> })
      .subsets) {
      expect(
        podLabels.filter((l) => selects(subset.labels, l)),
        `pods of subset ${subset.name}`,
      ).toHaveLength(1);
    }
    for (const labels of podLabels)
      expect(selects((service.spec as { selector: Record<string, string> }).selector, labels)).toBe(true);
    expect((rule.spec as { host: string }).host).toBe(service.metadata.name);
  });

  it("the VirtualService routes only to the DestinationRule's subsets, 100 % stable", () => {
    const rule = ofKind("DestinationRule")[0] as ManifestDoc["object"];
    const subsets = (rule.spec as { subsets: Array<{ name: string }> }).subsets.map((s) => s.name);
    const vs = ofKind("VirtualService")[0] as ManifestDoc["object"];
    const routes = (
      vs.spec as {
        http: Array<{ route: Array<{ destination: { host: string; subset: string }; weight: number }> }>;
      }
    ).http;
    for (const d of routes.flatMap((r) => r.route)) {
      expect(d.destination.host).toBe((rule.spec as { host: string }).host);
      expect(subsets).toContain(d.destination.subset);
    }
    expect(routes[0]?.route.map((d) => [d.destination.subset, d.weight])).toEqual([
      ["v1", 100],
      ["v2", 0],
    ]);
  });

  it("the namespace enables injection and mTLS is STRICT", () => {
    expect((ofKind("Namespace")[0] as ManifestDoc["object"]).metadata.labels).toMatchObject({
      "istio-injection": "enabled",
    });
    expect((ofKind("PeerAuthentication")[0] as ManifestDoc["object"]).spec).toEqual({
      mtls: { mode: "STRICT" },
    });
  });
});

describe("the Role grants exactly what the action uses", () => {
  let mesh: Mesh;
  const role = ofKind("Role")[0] as ManifestDoc["object"] & {
    rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
  };
  const granted = new Set(
    role.rules.flatMap((r) =>
      r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${g}/${res}`))),
    ),
  );

  beforeAll(async () => {
    mesh = await startMesh({
      requestsPerSecond: 300,
      stable: { errorRate: 0.002 },
      canary: { errorRate: 0.002 },
      seedWith: seedManifests,
    });
    mesh.kube.grant("role-token", {
      user: "system:serviceaccount:shop:canary-action",
      namespaces: ["shop"],
      rules: role.rules,
    });
    await mesh.scraped();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it("on the manifests' objects: rollout, pause, promote, status, a cancelled run's post step, rollback", async () => {
    const inputs = (extra: Record<string, string> = {}) =>
      fastInputs(mesh, { kubeconfig: mesh.kube.kubeconfig("role-token", "shop"), ...extra });
    const paused = await runOnMesh(mesh, { inputs: inputs({ "pause-after": "10" }) });
    expect(paused.outputs.result, paused.stdout).toBe("paused");
    const promoted = await runOnMesh(mesh, { inputs: inputs({ command: "promote" }), runId: "2" });
    expect(promoted.outputs.result).toBe("promoted");
    const status = await runOnMesh(mesh, { inputs: inputs({ command: "status" }), runId: "3" });
    expect(status.outputs.result).toBe("unchanged");
    // A post step with a rollout in flight reads and writes like a rollback.
    const vs = mesh.kube.get("virtualservices", "shop", "backend");
    const id = JSON.parse(vs?.metadata.annotations?.[STATE_ANNOTATION] as string).rolloutId;
    const post = await runOnMesh(mesh, {
      inputs: inputs(),
      state: { isPost: "true", rolloutInFlight: JSON.stringify({ rolloutId: id, stage: 2, weight: 100 }) },
      runId: "4",
    });
    expect(post.exitCode).toBe(0);
    const rollback = await runOnMesh(mesh, { inputs: inputs({ command: "rollback" }), runId: "5" });
    expect(rollback.outputs.result).toBe("rolled-back");
    // A promotion's finalization (src/workloads/) with the same identity.
    await finalizeManifestDeployments(mesh.kube, mesh.kube.kubeconfig("role-token", "shop"));

    const used = new Set(
      mesh.kube.audit
        .filter((e) => e.user === "system:serviceaccount:shop:canary-action")
        .map((e) => `${e.verb} ${e.group}/${e.resource}`),
    );
    expect(mesh.kube.audit.filter((e) => e.code === 403)).toEqual([]);
    expect([...used].sort()).toEqual([...granted].sort());
  });
});

describe("workflows and action.yml", () => {
  const root = join(import.meta.dirname, "..");
  const workflows = readdirSync(join(root, ".github/workflows")).filter((f) => f.endsWith(".yml"));

  it("include CI, deploy and promote", () => {
    expect(workflows.sort()).toEqual(["ci.yml", "deploy.yml", "promote.yml"]);
  });

  it.each(workflows)(
    "%s validates against GitHub's workflow schema and declares least permissions",
    (file) => {
      const text = readFileSync(join(root, ".github/workflows", file), "utf8");
      expect(validateWorkflow(text).errors).toEqual([]);
      const workflow = parse(text) as { permissions?: Record<string, string> | string };
      expect(typeof workflow.permissions).toBe("object");
      const permissions = workflow.permissions as Record<string, string>;
      expect(permissions.contents).toBe("read");
      const writes = Object.entries(permissions)
        .filter(([, v]) => v === "write")
        .map(([k]) => k)
        .sort();
      expect(writes).toEqual(file === "ci.yml" ? [] : ["deployments", "pull-requests", "statuses"]);
    },
  );

  it("the validator catches a broken workflow", () => {
    expect(
      validateWorkflow("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps: nope\n").errors.length,
    ).toBeGreaterThan(0);
  });

  it("action.yml validates against GitHub's action schema", () => {
    const text = readFileSync(join(root, "action.yml"), "utf8");
    // The validator's bundled schema predates the node24 runtime (runs.using allows up to node20),
    // so it rejects only that enum; with the runtime swapped for one it knows, nothing else fails.
    expect(text).toMatch(/\n {2}using: node24\n/);
    expect(validateAction(text.replace("using: node24", "using: node20")).errors).toEqual([]);
    expect(
      validateAction(
        text.replace("using: node24", "using: node20").replace("main: dist/index.js", "mian: dist/index.js"),
      ).errors.length,
    ).toBeGreaterThan(0);
  });
});
