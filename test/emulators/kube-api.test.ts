/** The Kubernetes API emulator, driven by the real @kubernetes/client-node. */
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NAMESPACE, seedRunbook } from "../mesh/fixtures.ts";
import { KubeApiEmulator } from "../mesh/kube-api.ts";

let kube: KubeApiEmulator;
let api: k8s.CustomObjectsApi;
let core: k8s.CoreV1Api;
const vs = {
  group: "networking.istio.io",
  version: "v1",
  namespace: NAMESPACE,
  plural: "virtualservices",
  name: "backend",
};
const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

function client(token: string) {
  const config = new k8s.KubeConfig();
  config.loadFromString(kube.kubeconfig(token));
  return config;
}

async function failure(promise: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof k8s.ApiException) {
      const body = typeof e.body === "string" ? JSON.parse(e.body) : e.body;
      return { code: e.code, body };
    }
    throw e;
  }
  throw new Error("expected the call to fail");
}

beforeAll(async () => {
  kube = await new KubeApiEmulator({
    tokens: {
      "admin-token": { user: "kubernetes-admin", rules: "all" },
      "reader-token": {
        user: "system:serviceaccount:shop:reader",
        namespaces: [NAMESPACE],
        rules: [
          { apiGroups: ["networking.istio.io"], resources: ["virtualservices"], verbs: ["get", "list"] },
        ],
      },
    },
  }).start();
  seedRunbook(kube);
  api = client("admin-token").makeApiClient(k8s.CustomObjectsApi);
  core = client("admin-token").makeApiClient(k8s.CoreV1Api);
});
afterAll(async () => {
  await kube.stop();
});

describe("Kubernetes API emulator through @kubernetes/client-node", () => {
  it("gets a VirtualService in every served version from one storage", async () => {
    const objects = await Promise.all(
      ["v1", "v1beta1", "v1alpha3"].map((version) => api.getNamespacedCustomObject({ ...vs, version })),
    );
    expect(objects.map((o) => o.apiVersion)).toEqual([
      "networking.istio.io/v1",
      "networking.istio.io/v1beta1",
      "networking.istio.io/v1alpha3",
    ]);
    expect(new Set(objects.map((o) => o.metadata.resourceVersion)).size).toBe(1);
    expect(objects[0].metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(objects[0].spec.http[0].route[0].weight).toBe(100);
  });

  it("applies a JSON Patch with test, moving resourceVersion and generation", async () => {
    const before = await api.getNamespacedCustomObject(vs);
    const after = await api.patchNamespacedCustomObject(
      {
        ...vs,
        body: [
          { op: "test", path: "/spec/http/0/route", value: before.spec.http[0].route },
          {
            op: "replace",
            path: "/spec/http/0/route",
            value: [
              { destination: { host: "backend", subset: "v1" }, weight: 90 },
              { destination: { host: "backend", subset: "v2" }, weight: 10 },
            ],
          },
        ],
      },
      jsonPatch,
    );
    expect(after.spec.http[0].route.map((r: { weight: number }) => r.weight)).toEqual([90, 10]);
    expect(Number(after.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
    expect(after.metadata.generation).toBe(before.metadata.generation + 1);
    expect(after.metadata.uid).toBe(before.metadata.uid);
  });

  it("answers a patch whose test no longer holds after a concurrent edit with 422 Invalid", async () => {
    const seen = await api.getNamespacedCustomObject(vs);
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      (o.spec as { http: Array<Record<string, unknown>> }).http[0]!.timeout = "5s";
      (o.spec as { http: Array<{ route: Array<{ weight: number }> }> }).http[0]!.route[0]!.weight = 80;
      (o.spec as { http: Array<{ route: Array<{ weight: number }> }> }).http[0]!.route[1]!.weight = 20;
    });
    const { code, body } = await failure(
      api.patchNamespacedCustomObject(
        {
          ...vs,
          body: [
            { op: "test", path: "/spec/http/0/route", value: seen.spec.http[0].route },
            { op: "replace", path: "/spec/http/0/route/1/weight", value: 50 },
            { op: "replace", path: "/spec/http/0/route/0/weight", value: 50 },
          ],
        },
        jsonPatch,
      ),
    );
    expect(code).toBe(422);
    expect(body).toMatchObject({
      kind: "Status",
      status: "Failure",
      reason: "Invalid",
      code: 422,
      message: "the server rejected our request due to an error in our request",
    });
    const now = await api.getNamespacedCustomObject(vs);
    expect(now.spec.http[0].timeout).toBe("5s");
    expect(now.spec.http[0].route.map((r: { weight: number }) => r.weight)).toEqual([80, 20]);
  });

  it("answers a replace with a stale resourceVersion with 409 Conflict", async () => {
    const seen = await api.getNamespacedCustomObject(vs);
    await api.patchNamespacedCustomObject(
      { ...vs, body: { metadata: { labels: { touched: "yes" } } } },
      mergePatch,
    );
    const { code, body } = await failure(api.replaceNamespacedCustomObject({ ...vs, body: seen }));
    expect(code).toBe(409);
    expect(body).toMatchObject({
      kind: "Status",
      reason: "Conflict",
      code: 409,
      details: { name: "backend", group: "networking.istio.io", kind: "virtualservices" },
    });
    expect(body.message).toContain("the object has been modified");
  });

  it("applies a JSON merge patch (RFC 7386), where an array is replaced whole", async () => {
    const after = await api.patchNamespacedCustomObject(
      {
        ...vs,
        body: {
          metadata: { annotations: { note: "x" }, labels: { touched: null } },
          spec: { gateways: ["mesh"] },
        },
      },
      mergePatch,
    );
    expect(after.metadata.annotations).toEqual({ note: "x" });
    expect(after.metadata.labels?.touched).toBeUndefined();
    expect(after.spec.gateways).toEqual(["mesh"]);
    expect(after.spec.hosts).toEqual(["backend"]);
  });

  it("answers 404 with a NotFound Status naming the object", async () => {
    const { code, body } = await failure(api.getNamespacedCustomObject({ ...vs, name: "nope" }));
    expect(code).toBe(404);
    expect(body).toMatchObject({
      kind: "Status",
      reason: "NotFound",
      message: 'virtualservices.networking.istio.io "nope" not found',
      details: { name: "nope" },
    });
  });

  it("answers 403 for a verb the token lacks, as RBAC words it", async () => {
    const reader = client("reader-token").makeApiClient(k8s.CustomObjectsApi);
    expect((await reader.getNamespacedCustomObject(vs)).metadata.name).toBe("backend");
    const { code, body } = await failure(reader.patchNamespacedCustomObject({ ...vs, body: [] }, jsonPatch));
    expect(code).toBe(403);
    expect(body).toMatchObject({ kind: "Status", reason: "Forbidden", code: 403 });
    expect(body.message).toBe(
      'virtualservices.networking.istio.io "backend" is forbidden: User "system:serviceaccount:shop:reader" cannot patch resource "virtualservices" in API group "networking.istio.io" in the namespace "shop"',
    );
  });

  it("answers 401 without a valid token", async () => {
    // The generated client keeps no body for 401 (the OpenAPI spec declares none); the code is what it surfaces.
    const { code } = await failure(
      client("wrong").makeApiClient(k8s.CustomObjectsApi).getNamespacedCustomObject(vs),
    );
    expect(code).toBe(401);
  });

  it("rejects what istiod's webhook and the CRD schema reject", async () => {
    const current = await api.getNamespacedCustomObject(vs);
    const weights = await failure(
      api.patchNamespacedCustomObject(
        { ...vs, body: [{ op: "replace", path: "/spec/http/0/route/1/weight", value: 30 }] },
        jsonPatch,
      ),
    );
    expect(weights.code).toBe(400);
    expect(weights.body.message).toMatch(
      /admission webhook "validation.istio.io" denied the request: configuration is invalid: total destination weight \d+ != 100/,
    );
    const schema = await failure(
      api.patchNamespacedCustomObject(
        { ...vs, body: [{ op: "replace", path: "/spec/http/0/route/1/weight", value: "20" }] },
        jsonPatch,
      ),
    );
    expect(schema.code).toBe(422);
    expect(schema.body).toMatchObject({ reason: "Invalid" });
    expect(schema.body.message).toContain("spec.http[0].route[1].weight");
    expect((await api.getNamespacedCustomObject(vs)).metadata.resourceVersion).toBe(
      current.metadata.resourceVersion,
    );
  });

  it("lists pods by label selector and reads namespaces", async () => {
    const pods = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: "app=backend,version=v2",
    });
    expect(pods.items.map((p) => p.metadata?.labels?.version)).toEqual(["v2"]);
    expect(pods.items[0]?.status?.containerStatuses?.map((c) => c.name)).toEqual(["backend", "istio-proxy"]);
    const set = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: "version in (v1,v2),app",
    });
    expect(set.items).toHaveLength(2);
    const ns = await core.readNamespace({ name: NAMESPACE });
    expect(ns.metadata?.labels?.["istio-injection"]).toBe("enabled");
  });

  it("creates, lists and refuses a duplicate create with 409 AlreadyExists", async () => {
    const dr = {
      apiVersion: "networking.istio.io/v1beta1",
      kind: "DestinationRule",
      metadata: { name: "other" },
      spec: { host: "other", subsets: [] },
    };
    const created = await api.createNamespacedCustomObject({
      group: "networking.istio.io",
      version: "v1beta1",
      namespace: NAMESPACE,
      plural: "destinationrules",
      body: dr,
    });
    expect(created.metadata.uid).toBeDefined();
    const dup = await failure(
      api.createNamespacedCustomObject({
        group: "networking.istio.io",
        version: "v1beta1",
        namespace: NAMESPACE,
        plural: "destinationrules",
        body: dr,
      }),
    );
    expect(dup).toMatchObject({ code: 409, body: { reason: "AlreadyExists" } });
    const list = await api.listNamespacedCustomObject({
      group: "networking.istio.io",
      version: "v1alpha3",
      namespace: NAMESPACE,
      plural: "destinationrules",
    });
    expect(list.items.map((o: { metadata: { name: string } }) => o.metadata.name).sort()).toEqual([
      "backend",
      "other",
    ]);
  });

  it("injects faults and keeps an audit log of every request", async () => {
    kube.injectFault({ status: 500, count: 2, match: { verb: "get" } });
    expect((await failure(api.getNamespacedCustomObject(vs))).code).toBe(500);
    expect((await failure(api.getNamespacedCustomObject(vs))).body).toMatchObject({
      kind: "Status",
      reason: "InternalError",
    });
    expect((await api.getNamespacedCustomObject(vs)).metadata.name).toBe("backend");
    const last = kube.audit.slice(-3);
    expect(last.map((e) => [e.verb, e.code, e.resource, e.name])).toEqual([
      ["get", 500, "virtualservices", "backend"],
      ["get", 500, "virtualservices", "backend"],
      ["get", 200, "virtualservices", "backend"],
    ]);
    expect(kube.audit.filter((e) => e.verb === "patch" && e.code === 200).every((e) => e.object)).toBe(true);
  });
});
