/**
 * The header-routed preview (issue 23): the routes it plans, checked by routing requests through
 * them as Istio does (test/mesh/istio-routing.ts), the refusals, and the router's writes against
 * the Kubernetes API emulator: added in one guarded patch, removed by a rollout's first write
 * (preview: remove), kept through the stages (keep) and removed at 100 % and by every rollback,
 * also without the state annotation.
 */
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { beforeEach, describe, expect, it } from "vitest";
import {
  PREVIEW_ANNOTATION,
  planPreview,
  planPreviewRemoval,
  readPreview,
  shiftOriginal,
} from "../../src/mesh/preview-routes.ts";
import { VirtualServiceRouter } from "../../src/mesh/router.ts";
import { findManagedRoutes, targetOf } from "../../src/mesh/routes.ts";
import type { PatchOperation } from "../../src/rollout/model/routes.ts";
import type { VirtualService } from "../../src/rollout/model/virtual-service.ts";
import { NAMESPACE, seedRunbook } from "../mesh/fixtures.ts";
import { type RouteMatch, selectRoute, type VirtualServiceSpec } from "../mesh/istio-routing.ts";
import type { KubeApiEmulator } from "../mesh/kube-api.ts";
import { useKubeEmulator } from "../support/kube-emulator.ts";
import { meshApi, SUBSETS, stateTransition } from "../support/mesh-router.ts";

const target = targetOf(SUBSETS);
const toV1 = [{ destination: { host: "backend", subset: "v1", port: { number: 8080 } } }];
const request = { header: "x-canary", value: "abc1234-42", rolloutId: "abc1234-42" };

function vs(http: unknown[]): VirtualService {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: "backend", namespace: NAMESPACE, resourceVersion: "1", annotations: {} },
    spec: { hosts: ["backend"], http: http as VirtualService["spec"]["http"] },
  };
}

function apply(object: VirtualService, ops: PatchOperation[]): VirtualService {
  return fastJsonPatch.applyPatch(structuredClone(object), ops as Operation[], true, false).newDocument;
}

function plan(object: VirtualService, routes: string[] = []) {
  const managed = findManagedRoutes(object, target, routes);
  return planPreview(
    object,
    managed,
    target,
    request,
    routes.some((r) => r.startsWith("#")),
  );
}

/** Where Istio sends a request: the route index and its first destination's subset. */
function routed(object: VirtualService, uri: string, headers: Record<string, string> = {}) {
  const picked = selectRoute(
    object.spec as VirtualServiceSpec,
    { source: "mesh", host: "backend", uri, headers },
    NAMESPACE,
  );
  return picked && { index: picked.index, subset: picked.route.route?.[0]?.destination.subset };
}

describe("the preview route's plan", () => {
  it("puts a header route to the canary alone ahead of the default route; users stay on stable", () => {
    const before = vs([{ name: "primary", timeout: "3s", route: toV1 }]);
    const after = apply(before, plan(before).ops);
    expect(after.spec.http?.[0]).toEqual({
      name: "istio-canary-preview",
      match: [{ headers: { "x-canary": { exact: "abc1234-42" } } }],
      timeout: "3s",
      route: [{ destination: { host: "backend", subset: "v2", port: { number: 8080 } } }],
    });
    expect(after.spec.http?.[1]).toEqual(before.spec.http?.[0]);
    expect(routed(after, "/", { "x-canary": "abc1234-42" })).toEqual({ index: 0, subset: "v2" });
    expect(routed(after, "/", { "x-canary": "other" })).toEqual({ index: 1, subset: "v1" });
    expect(routed(after, "/")).toEqual({ index: 1, subset: "v1" });
    expect(readPreview(after, target)).toEqual({
      routes: ["istio-canary-preview"],
      header: "x-canary",
      value: "abc1234-42",
    });
  });

  it("carries the managed route's own matches (uri, gateways): it catches only what that route catches", () => {
    const match: RouteMatch[] = [{ uri: { prefix: "/api" }, gateways: ["mesh"] }];
    const before = vs([
      { name: "api", match, route: toV1 },
      { name: "web", route: [{ destination: { host: "web" } }] },
    ]);
    const after = apply(before, plan(before, ["api"]).ops);
    expect(after.spec.http?.[0]?.match).toEqual([
      { uri: { prefix: "/api" }, gateways: ["mesh"], headers: { "x-canary": { exact: "abc1234-42" } } },
    ]);
    expect(routed(after, "/api/items", { "x-canary": "abc1234-42" })).toEqual({ index: 0, subset: "v2" });
    // The header alone does not pull another route's requests to the canary.
    expect(routed(after, "/home", { "x-canary": "abc1234-42" })?.index).toBe(2);
  });

  it("adds one preview route ahead of each of several managed routes", () => {
    const before = vs([
      { name: "a", match: [{ uri: { prefix: "/a" } }], route: toV1 },
      { name: "b", match: [{ uri: { prefix: "/b" } }], route: toV1 },
    ]);
    const planned = plan(before, ["a", "b"]);
    const after = apply(before, planned.ops);
    expect(after.spec.http?.map((r) => r.name)).toEqual([
      "istio-canary-preview-1",
      "a",
      "istio-canary-preview-2",
      "b",
    ]);
    expect(routed(after, "/b/x", { "x-canary": "abc1234-42" })).toEqual({ index: 2, subset: "v2" });
    expect(routed(after, "/b/x")).toEqual({ index: 3, subset: "v1" });
  });

  it("guards the insert with a test of the http list it was planned against", () => {
    const before = vs([{ name: "primary", route: toV1 }]);
    const { ops } = plan(before);
    const edited = vs([
      { name: "primary", route: toV1 },
      { name: "new", route: toV1 },
    ]);
    expect(() => apply(edited, ops)).toThrow();
  });

  it("beside the managed route's own header match, finds its preview again and names its header from the annotation", () => {
    const before = vs([{ name: "beta", match: [{ headers: { "a-team": { exact: "beta" } } }], route: toV1 }]);
    const after = apply(before, plan(before, ["beta"]).ops);
    // The API server may store the match's headers in any key order (Go sorts map keys).
    const headers = after.spec.http?.[0]?.match?.[0] as { headers: Record<string, unknown> };
    headers.headers = Object.fromEntries(
      Object.entries(headers.headers).sort(([a], [b]) => a.localeCompare(b)),
    );
    expect(plan(after, ["beta"]).ops).toEqual([]);
    after.metadata.annotations = {
      [PREVIEW_ANNOTATION]: JSON.stringify({ ...request, at: "2026-12-06T10:00:00.000Z" }),
    };
    expect(readPreview(after, target)).toMatchObject({
      header: "x-canary",
      value: "abc1234-42",
      rolloutId: "abc1234-42",
    });
    // Only what the managed route takes: without its own header, neither route takes the request.
    expect(routed(after, "/", { "x-canary": "abc1234-42" })).toBeUndefined();
    expect(routed(after, "/", { "x-canary": "abc1234-42", "a-team": "beta" })).toEqual({
      index: 0,
      subset: "v2",
    });
  });

  it("finds its own preview in place (same header and value) and plans nothing", () => {
    const before = vs([{ name: "primary", route: toV1 }]);
    const after = apply(before, plan(before).ops);
    expect(plan(after).ops).toEqual([]);
  });
});

describe("refusals, naming why", () => {
  const cases: Array<[string, unknown[], string[], RegExp]> = [
    [
      "an earlier route without match takes every request first",
      [
        { name: "all", route: [{ destination: { host: "other" } }] },
        { name: "main", route: toV1 },
      ],
      ["main"],
      /http route "all", ahead of it, has no match/,
    ],
    [
      "an earlier route matches on the header",
      [
        {
          name: "qa",
          match: [{ headers: { "x-canary": { prefix: "" } } }],
          route: [{ destination: { host: "qa" } }],
        },
        { name: "main", route: toV1 },
      ],
      [],
      /matches on the header x-canary itself/,
    ],
    [
      "an earlier route's match is wider",
      [
        {
          name: "wide",
          match: [{ uri: { prefix: "/" } }, { method: { exact: "POST" } }],
          route: [{ destination: { host: "x" } }],
        },
        { name: "api", match: [{ uri: { prefix: "/api" } }], route: toV1 },
      ],
      ["api"],
      /"wide", ahead of it, matches every request the preview would/,
    ],
    [
      "a route delegates",
      [
        { name: "d", match: [{ uri: { prefix: "/d" } }], delegate: { name: "child" } },
        { name: "main", route: toV1 },
      ],
      [],
      /delegates to another VirtualService/,
    ],
    ["routes are chosen by position", [{ route: toV1 }], ["#0"], /by position \(#N\)/],
    [
      "the managed route already sends traffic to the canary",
      [
        {
          name: "main",
          route: [
            { ...toV1[0], weight: 90 },
            { destination: { host: "backend", subset: "v2" }, weight: 10 },
          ],
        },
      ],
      ["main"],
      /already sends traffic to the canary/,
    ],
    [
      "the managed route matches on the header",
      [{ name: "main", match: [{ headers: { "x-canary": { exact: "y" } } }], route: toV1 }],
      ["main"],
      /already matches on the header x-canary/,
    ],
    [
      "another rollout's preview is there",
      [
        {
          name: "istio-canary-preview",
          match: [{ headers: { "x-canary": { exact: "other-run" } } }],
          route: [{ destination: { host: "backend", subset: "v2" } }],
        },
        { name: "main", route: toV1 },
      ],
      [],
      /already has a preview route .* for x-canary: other-run\), from another rollout; command: rollback removes it/,
    ],
  ];
  it.each(cases)("%s", (_, http, routes, why) => {
    expect(() => plan(vs(http), routes)).toThrow(why);
  });

  it("allows an earlier route that takes only part of the managed route's requests", () => {
    const before = vs([
      {
        name: "admin",
        match: [{ uri: { prefix: "/api/admin" } }],
        route: [{ destination: { host: "admin" } }],
      },
      { name: "api", match: [{ uri: { prefix: "/api" } }], route: toV1 },
    ]);
    const after = apply(before, plan(before, ["api"]).ops);
    expect(routed(after, "/api/x", { "x-canary": "abc1234-42" })).toEqual({ index: 1, subset: "v2" });
  });
});

describe("removal, from the routes alone", () => {
  it("removes every preview route and the annotation, and shifts recorded indices", () => {
    const before = vs([
      { name: "a", match: [{ uri: { prefix: "/a" } }], route: toV1 },
      { name: "b", match: [{ uri: { prefix: "/b" } }], route: toV1 },
    ]);
    const withPreview = apply(before, plan(before, ["a", "b"]).ops);
    withPreview.metadata.annotations = { [PREVIEW_ANNOTATION]: "{}" };
    const removal = planPreviewRemoval(withPreview, target);
    expect(removal.removed).toEqual([0, 2]);
    const after = apply(withPreview, removal.ops);
    expect(after.spec.http).toEqual(before.spec.http);
    expect(after.metadata.annotations).toEqual({});
    expect(
      shiftOriginal(
        [
          { index: 1, canaryAdded: true },
          { index: 3, canaryAdded: true },
        ],
        removal.removed,
      ),
    ).toEqual([
      { index: 0, canaryAdded: true },
      { index: 1, canaryAdded: true },
    ]);
  });

  it("leaves a route of that name a person pointed at stable", () => {
    const object = vs([
      { name: "istio-canary-preview", match: [{ headers: { "x-canary": { exact: "v" } } }], route: toV1 },
      { name: "main", route: toV1 },
    ]);
    expect(planPreviewRemoval(object, target).ops).toEqual([]);
  });
});

describe("the router's preview writes (Kubernetes API emulator)", () => {
  const emulator = useKubeEmulator();
  let kube: KubeApiEmulator;
  beforeEach(() => {
    kube = emulator();
    seedRunbook(kube);
  });
  const next = (weight: number) =>
    stateTransition(weight, {
      holder: "run-1",
      stageIndex: 0,
      leaseBlocksRollback: true,
      holderInHistory: false,
    });
  const router = (preview: "keep" | "remove") =>
    new VirtualServiceRouter(meshApi(kube), {
      namespace: NAMESPACE,
      name: "backend",
      target,
      routes: [],
      preview,
      sleep: async () => {},
    });
  const http = () =>
    (kube.get("virtualservices", NAMESPACE, "backend")?.spec as VirtualServiceSpec | undefined)?.http ?? [];
  const annotations = () => kube.get("virtualservices", NAMESPACE, "backend")?.metadata.annotations ?? {};

  it("preview: remove — the first stage's write removes it and records the routes' indices without it", async () => {
    const before = http();
    const added = await router("remove").addPreview(request, new Date("2026-12-06T10:00:00Z"));
    expect(added).toMatchObject({
      routes: ["istio-canary-preview"],
      rolloutId: "abc1234-42",
      since: "2026-12-06T10:00:00.000Z",
    });
    expect(http().length).toBe(before.length + 1);
    const state = await router("remove").write(1, next(1));
    expect(http().map((r) => r.name)).toEqual(before.map((r) => r.name));
    expect(annotations()[PREVIEW_ANNOTATION]).toBeUndefined();
    expect(state.original.map((o) => o.index)).toEqual([0]);
    await router("remove").write(0, next(0));
    expect(http()).toEqual(before);
  });

  it("preview: keep — it stays through the stages and goes with the move to 100 %", async () => {
    await router("keep").addPreview(request, new Date());
    await router("keep").write(10, next(10));
    expect(http()[0]?.name).toBe("istio-canary-preview");
    expect(http()[1]?.route?.map((d) => d.weight)).toEqual([90, 10]);
    await router("keep").write(100, next(100));
    expect(http().some((r) => r.name === "istio-canary-preview")).toBe(false);
  });

  it("a rollback removes it without the state annotation (by name and shape)", async () => {
    const before = http();
    await router("keep").addPreview(request, new Date());
    await router("keep").write(10, next(10));
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      o.metadata.annotations = {};
    });
    await router("keep").write(0, next(0));
    expect(http().map((r) => r.name)).toEqual(before.map((r) => r.name));
    expect(http()[0]?.route?.every((d) => d.destination.subset === "v1" || (d.weight ?? 0) === 0)).toBe(true);
  });

  it("a person who deleted the preview route mid-rollout wins: the next write re-reads and goes on", async () => {
    await router("keep").addPreview(request, new Date());
    await router("keep").write(10, next(10));
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      (o.spec as VirtualServiceSpec).http?.shift();
    });
    await router("keep").write(50, next(50));
    expect(http().map((r) => r.name)).not.toContain("istio-canary-preview");
    expect(http()[0]?.route?.map((d) => d.weight)).toEqual([50, 50]);
  });

  it("removePreview removes it and changes no weight", async () => {
    const before = http();
    await router("keep").addPreview(request, new Date());
    expect(await router("keep").removePreview()).toEqual(["istio-canary-preview"]);
    expect(http()).toEqual(before);
  });
});
