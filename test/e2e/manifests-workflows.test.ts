/**
 * What we hand users is valid as written: manifests/ against the Kubernetes and Istio schemas
 * (kubernetes-models, @kubernetes-models/istio), consistent with each other, with a Role that grants
 * exactly what an end-to-end run uses; workflows with the least permissions, giving the action only
 * its inputs; the example workflows release every version with unchanged inputs, never hold a
 * rollback behind a release, and use current actions. (GitHub's parsers and actionlint check the
 * workflows and action.yml in test/unit/workflows-validate.test.ts.)
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DestinationRule, VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1beta1";
import { PeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1beta1";
import { load } from "js-yaml";
import { Deployment } from "kubernetes-models/apps/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { type Mesh, startMesh } from "../mesh/index.ts";
import { fastInputs, runOnMesh } from "../support/e2e.ts";
import { loadManifests, MANIFESTS, type ManifestDoc, seedManifests } from "../support/manifests.ts";
import {
  deployGuardInputs,
  evaluateIf,
  expressionsIn,
  groupsOf,
  isOurAction,
  type Job,
  kubectlLines,
  NODE24_MAJORS,
  outputsRead,
  ROOT,
  readmeYaml,
  readWorkflow,
  resolveInputs,
  type Step,
  targetOf,
  type Workflow,
  without,
} from "../support/workflows.ts";
import { finalizeManifestDeployments } from "../support/workloads.ts";

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
    const kustomization = load(readFileSync(join(MANIFESTS, "kustomization.yaml"), "utf8")) as {
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
    rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>;
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
    // deploy.yml's check before it touches the canary, with its own inputs: passes at rest, stops
    // the release while a paused rollout keeps traffic on the canary.
    const guard = async (runId: string) =>
      (await runOnMesh(mesh, { inputs: deployGuardInputs(inputs().kubeconfig as string), runId })).outputs;
    expect(await guard("0")).toMatchObject({ result: "unchanged", "canary-weight": "0" });
    const paused = await runOnMesh(mesh, { inputs: inputs({ "pause-after": "10" }) });
    expect(paused.outputs.result, paused.stdout).toBe("paused");
    expect((await guard("1"))["canary-weight"]).toBe("10");
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
    // The emulator enforces resourceNames as RBAC does: every write went to an object the Role names.
    const written = mesh.kube.audit.filter(
      (e) => e.user === "system:serviceaccount:shop:canary-action" && e.verb === "patch",
    );
    expect(written.length).toBeGreaterThan(0);
    expect(new Set(written.map((e) => `${e.resource}/${e.name}`))).toEqual(
      new Set(["virtualservices/backend", "deployments/backend-v1", "deployments/scale/backend-v2"]),
    );
  });

  it("scopes every write with resourceNames to the objects the manifests and deploy.yml name", () => {
    const writes = role.rules.filter((r) => r.verbs.some((v) => ["patch", "update", "create"].includes(v)));
    expect(writes.length).toBeGreaterThan(0);
    for (const rule of writes) expect(rule.resourceNames, rule.resources.join()).toBeDefined();
    const named = (resource: string) =>
      role.rules.filter((r) => r.resources.includes(resource)).flatMap((r) => r.resourceNames ?? []);
    expect(named("virtualservices")).toEqual(ofKind("VirtualService").map((o) => o.metadata.name));
    expect(new Set(named("deployments"))).toEqual(new Set(ofKind("Deployment").map((o) => o.metadata.name)));
    const deploy = readWorkflow("deploy.yml").workflow;
    for (const step of Object.values(deploy.jobs)
      .flatMap((j) => j.steps)
      .filter(isOurAction)) {
      const target = targetOf(step);
      expect(named("virtualservices")).toContain(target["virtual-service"]);
      for (const input of ["stable-deployment", "canary-deployment"])
        if (target[input]) expect(named("deployments")).toContain(target[input]);
    }
  });
});

describe("workflows and action.yml", () => {
  const workflows = readdirSync(join(ROOT, ".github/workflows")).filter((f) => f.endsWith(".yml"));
  const action = load(readFileSync(join(ROOT, "action.yml"), "utf8")) as {
    inputs: Record<string, unknown>;
    outputs: Record<string, unknown>;
  };
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const deploy = readWorkflow("deploy.yml").workflow;
  const deployJob = Object.values(deploy.jobs)[0] as Job;
  const deploySteps = deployJob.steps.filter(isOurAction);
  const rolloutStep = deploySteps.find((s) => (s.with?.command ?? "rollout") === "rollout") as Step;
  const statusStep = deploySteps.find((s) => s.with?.command === "status") as Step;
  const promote = readWorkflow("promote.yml").workflow;
  const dispatchValues = (command: string) => ({ "vars.CANARY_CLUSTER": "true", "inputs.command": command });

  it.each(workflows)("%s declares least permissions", (file) => {
    const { workflow } = readWorkflow(file);
    expect(typeof workflow.permissions).toBe("object");
    const permissions = workflow.permissions as Record<string, string>;
    expect(permissions.contents).toBe("read");
    const writes = Object.entries(permissions)
      .filter(([, v]) => v === "write")
      .map(([k]) => k)
      .sort();
    // Steps given an empty `github-token` (e2e-cluster.yml tests the action, it reports nowhere) need no write.
    const steps = Object.values(workflow.jobs)
      .flatMap((j) => j.steps.filter(isOurAction))
      .filter((s) => s.with?.["github-token"] !== "");
    // The action writes the comment and the commit status; a deployment only with its
    // `environment` input (GitHub creates the job's own, without the token).
    const expected = steps.length === 0 ? [] : ["pull-requests", "statuses"];
    if (steps.some((s) => s.with?.environment)) expected.unshift("deployments");
    expect(writes).toEqual(expected);
  });

  it.each(workflows)("%s uses each action at its current major, which runs on node24", (file) => {
    const { workflow } = readWorkflow(file);
    const remote = Object.values(workflow.jobs)
      .flatMap((j) => j.steps.map((s) => s.uses))
      .filter((u): u is string => u !== undefined && u !== "./");
    for (const uses of remote) {
      const [, name, major] = /^([\w.-]+\/[\w.-]+)@v(\d+)$/.exec(uses) ?? [];
      expect(name, `${uses}: owner/name@vN`).toBeDefined();
      expect(NODE24_MAJORS[name as string], `${uses}: known current major`).toBeDefined();
      expect(Number(major), uses).toBe(NODE24_MAJORS[name as string]);
    }
  });

  it.each(workflows)("%s gives the action only its inputs and reads only its outputs", (file) => {
    const { workflow } = readWorkflow(file);
    const inputs = new Set(Object.keys(action.inputs));
    const outputs = new Set(Object.keys(action.outputs));
    for (const job of Object.values(workflow.jobs)) {
      for (const step of job.steps.filter(isOurAction)) {
        for (const name of Object.keys(step.with ?? {})) expect(inputs, `input ${name}`).toContain(name);
        if (step.id)
          for (const name of outputsRead(job, step.id)) expect(outputs, `output ${name}`).toContain(name);
      }
    }
  });

  it.each(workflows)(
    "%s never makes two deployments: a job's environment or the action's, not both",
    (file) => {
      const { workflow } = readWorkflow(file);
      for (const job of Object.values(workflow.jobs)) {
        if (job.environment !== undefined)
          expect(job.steps.filter((s) => isOurAction(s) && s.with?.environment)).toEqual([]);
      }
    },
  );

  it("deploy.yml gives the action the same inputs at every release, on one canary", () => {
    expect(Object.keys(deploy.jobs)).toHaveLength(1);
    expect(rolloutStep).toBeDefined();
    expect(statusStep).toBeDefined();
    // Nothing that differs between releases reaches the action: no commit, event, variable or
    // earlier step's output (a subset swap per release would need one). Secrets only.
    for (const step of deploySteps)
      for (const [name, value] of Object.entries(step.with ?? {}))
        for (const expression of expressionsIn(value))
          expect(expression, `${name} of step '${step.name}'`).toMatch(/^secrets\.[\w-]+$/);
    const target = targetOf(rolloutStep);
    expect(target["stable-subset"]).not.toBe(target["canary-subset"]);
    expect(target["stable-deployment"]).toBeDefined();
    expect(target["stable-deployment"]).not.toBe(target["canary-deployment"]);
    for (const step of deploySteps) expect(targetOf(step), step.name).toEqual(target);
    // Only the default ending makes the next release possible with these inputs.
    expect(["auto", "copy"]).toContain(rolloutStep.with?.finalize ?? "auto");
  });

  it("deploy.yml puts the new image on the canary Deployment only, after checking it carries no traffic", () => {
    const target = targetOf(rolloutStep);
    const steps = deployJob.steps;
    const setImage = steps.findIndex((s) => /kubectl\b.*\bset image\b/.test(s.run ?? ""));
    const guard = steps.findIndex((s) =>
      s.if?.includes(`steps.${statusStep.id}.outputs.canary-weight != '0'`),
    );
    expect(steps.indexOf(statusStep)).toBeGreaterThanOrEqual(0);
    expect(steps.indexOf(statusStep)).toBeLessThan(guard);
    expect(steps[guard]?.run).toMatch(/\bexit 1\b/);
    expect(guard).toBeLessThan(setImage);
    expect(setImage).toBeLessThan(steps.indexOf(rolloutStep));
    expect(statusStep.with?.["github-token"]).toBe("");

    const kubectl = kubectlLines(deployJob);
    for (const line of kubectl) {
      expect(line).toContain(`-n ${target.namespace} `);
      expect([...line.matchAll(/deployment\/([\w-]+)/g)].map((m) => m[1])).toEqual([
        target["canary-deployment"],
      ]);
    }
    // The container it sets exists in that Deployment, and the canary subset selects its pods.
    const [, deployment, container] =
      /set image deployment\/([\w-]+) ([\w-]+)=/.exec(kubectl.join("\n")) ?? [];
    const manifest = ofKind("Deployment").find(
      (d) => d.metadata.name === deployment,
    ) as ManifestDoc["object"];
    const template = (
      manifest.spec as {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: Array<{ name: string }> };
        };
      }
    ).template;
    expect(template.spec.containers.map((c) => c.name)).toContain(container);
    const rule = ofKind("DestinationRule")[0] as ManifestDoc["object"];
    const subsets = (rule.spec as { subsets: Array<{ name: string; labels: Record<string, string> }> })
      .subsets;
    const labels = subsets.find((s) => s.name === target["canary-subset"])?.labels ?? { none: "" };
    expect(template.metadata.labels).toMatchObject(labels);
  });

  it("deploy.yml waits in one concurrency group and never cancels the release in flight", () => {
    const groups = groupsOf(deploy, deployJob);
    expect(groups).toHaveLength(1);
    const concurrency = deploy.concurrency ?? deployJob.concurrency;
    expect(typeof concurrency === "object" ? concurrency["cancel-in-progress"] : false).toBe(false);
  });

  it("promote.yml runs each command in one job; rollback and status wait in no group of deploy.yml and for no reviewer", () => {
    const deployGroups = Object.values(deploy.jobs).flatMap((j) => groupsOf(deploy, j));
    const command = (promote.on.workflow_dispatch as { inputs: { command: { options: string[] } } }).inputs
      .command;
    expect([...command.options].sort()).toEqual(["promote", "rollback", "status"]);
    for (const choice of command.options) {
      const running = Object.values(promote.jobs).filter((j) => evaluateIf(j.if, dispatchValues(choice)));
      expect(running, choice).toHaveLength(1);
      const job = running[0] as Job;
      const steps = job.steps.filter(isOurAction);
      expect(steps).toHaveLength(1);
      expect(resolveInputs(steps[0]?.with?.command, { command: choice })).toBe(choice);
      if (choice === "promote") continue;
      expect(
        groupsOf(promote, job).filter((g) => deployGroups.includes(g)),
        choice,
      ).toEqual([]);
      // Protection rules (a required reviewer) must pass before a job that names an environment starts.
      expect(job.environment, choice).toBeUndefined();
      expect(job.needs, choice).toBeUndefined();
    }
    for (const job of Object.values(promote.jobs))
      expect(evaluateIf(job.if, { "vars.CANARY_CLUSTER": "", "inputs.command": "rollback" })).toBe(false);
  });

  it("promote.yml acts on deploy.yml's targets with deploy.yml's analysis settings", () => {
    for (const choice of ["promote", "rollback", "status"]) {
      const job = Object.values(promote.jobs).find((j) => evaluateIf(j.if, dispatchValues(choice))) as Job;
      const step = job.steps.find(isOurAction) as Step;
      const given = without(step.with, "command", "rollout-id", "skip-analysis");
      const like = choice === "promote" ? rolloutStep : statusStep;
      expect(given, choice).toEqual(without(like.with, "command", "github-token"));
    }
  });

  it("the README's example is deploy.yml with the published action", () => {
    const example = load(readmeYaml(readme, "Example workflow")) as Workflow;
    expect(example.permissions).toEqual(deploy.permissions);
    expect(example.concurrency).toEqual(deploy.concurrency);
    const job = Object.values(example.jobs)[0] as Job;
    expect(job.environment).toEqual(deployJob.environment);
    const steps = job.steps.filter(isOurAction);
    for (const step of steps) expect(step.uses).toMatch(/^[\w-]+\/istio-canary-action@v\d+$/);
    expect(steps.map((s) => s.with)).toEqual(deploySteps.map((s) => s.with));
    expect(kubectlLines(job)).toEqual(kubectlLines(deployJob));
  });
});
