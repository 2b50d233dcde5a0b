/**
 * The router under Kubernetes API faults, against the emulator through the real client, in virtual
 * time (the router's sleep and clock are injected; the emulator's fault windows follow that clock):
 * a rollback survives an outage, a 429's Retry-After is honoured, conflicts are re-planned, a lost
 * answer or a failed read-back is no error, and a rollback works from the routes alone.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { MeshError } from "../../src/mesh/errors.ts";
import { loadKubeConfig } from "../../src/mesh/kubeconfig.ts";
import { KubernetesMeshApi } from "../../src/mesh/kubernetes.ts";
import { LeaseHeldError, type RolloutState } from "../../src/rollout/model/state.ts";
import { NAMESPACE, seedRunbook } from "../mesh/fixtures.ts";
import type { KubeApiEmulator, KubeObject } from "../mesh/kube-api.ts";
import { useKubeEmulator } from "../support/kube-emulator.ts";
import { meshApi, meshRouter, stateTransition } from "../support/mesh-router.ts";
import { virtualClock } from "../support/virtual-clock.ts";

const emulator = useKubeEmulator(seedRunbook);
let kube: KubeApiEmulator;
beforeEach(() => {
  kube = emulator();
});

function router(clock = virtualClock(), routes: string[] = [], timeoutMs = 5000) {
  return meshRouter(meshApi(kube, { timeoutMs }), { routes, clock });
}

/** A minimal state transition (the engine builds the real ones); counts its calls. */
function next(weight: number, holder = "acme/shop run 41 attempt 1") {
  return stateTransition(weight, {
    holder,
    stageIndex: 1,
    leaseBlocksRollback: false,
    holderInHistory: true,
  });
}

type Route = Array<{ weight?: number; destination: { host: string; subset?: string } }>;
const routesOf = (o: KubeObject | undefined) =>
  ((o?.spec ?? {}) as { http: Array<{ name?: string; route: Route }> }).http;
const stored = () => kube.get("virtualservices", NAMESPACE, "backend");
const weightsNow = () => routesOf(stored())[0]?.route.map((d) => d.weight);
const patches = () => kube.audit.filter((e) => e.verb === "patch");
const edit = (change: (o: KubeObject) => void) =>
  kube.editOutOfBand("virtualservices", NAMESPACE, "backend", change);

describe("transient failures are retried for a bounded time", () => {
  it("a rollback during 5 s of 500s succeeds within 2 s of the outage's end", async () => {
    const clock = virtualClock();
    const r = router(clock);
    await r.write(10, next(10));
    const outageEnds = clock.now() + 5000;
    kube.injectMeshFault({
      match: { verb: "patch" },
      active: () => clock.now() < outageEnds,
      answer: { status: 500 },
    });
    await r.write(0, next(0));
    expect(weightsNow()).toEqual([100]);
    const codes = patches().map((p) => p.code);
    expect(codes.at(-1)).toBe(200);
    expect(codes.filter((c) => c === 500).length).toBeGreaterThanOrEqual(3);
    expect(clock.now() - outageEnds).toBeLessThanOrEqual(2000);
    expect(Math.max(...clock.waits)).toBeLessThanOrEqual(2000);
  });

  it("a rollback outlasts an outage longer than a stage write's budget; past its own, it says where traffic is", async () => {
    // The longest waits (2 s) keep the number of real requests down over 13 virtual minutes.
    const clock = virtualClock({ random: () => 1 });
    const r = router(clock);
    await r.write(10, next(10));
    let outageEnds = clock.now() + 3 * 60_000;
    kube.injectMeshFault({
      match: { verb: "patch" },
      active: () => clock.now() < outageEnds,
      answer: { status: 503 },
    });
    const stageWrite = await r.write(50, next(50)).catch((e) => e);
    expect(stageWrite).toBeInstanceOf(MeshError);
    expect(stageWrite.message).toMatch(
      /^Setting canary weight 50 of VirtualService shop\/backend failed after/,
    );
    await r.write(0, next(0));
    expect(weightsNow()).toEqual([100]);

    await r.write(10, next(10));
    outageEnds = clock.now() + 10 * 60_000;
    const started = clock.now();
    const error = await r.write(0, next(0)).catch((e) => e);
    expect(clock.now() - started).toBeLessThanOrEqual(5 * 60_000);
    expect(clock.now() - started).toBeGreaterThan(4.9 * 60_000);
    expect(error.message).toMatch(
      /^Rollback of VirtualService shop\/backend failed after \d+ attempts in \d+ s/,
    );
    expect(error.message).toContain('http route "primary": stable 90, canary 10');
  });

  it("one 429 with Retry-After: 3 is waited out, then the write goes through", async () => {
    const clock = virtualClock();
    const r = router(clock);
    await r.write(10, next(10));
    let once = 1;
    kube.injectMeshFault({
      match: { verb: "patch" },
      active: () => once-- > 0,
      answer: { status: 429, headers: { "Retry-After": "3" } },
    });
    await r.write(0, next(0));
    expect(clock.waits).toHaveLength(1);
    expect(clock.waits[0]).toBeGreaterThanOrEqual(3000);
    expect(weightsNow()).toEqual([100]);
  });

  it("a storm of 409s is re-read and re-planned every time, never overwriting", async () => {
    const clock = virtualClock();
    const r = router(clock);
    await r.write(10, next(10));
    kube.injectFault({ status: 409, count: 20, match: { verb: "patch" } });
    const transition = next(50);
    await r.write(50, transition);
    expect(patches().map((p) => p.code)).toEqual([200, ...Array(20).fill(409), 200]);
    expect(transition.calls).toBe(21);
    expect(weightsNow()).toEqual([50, 50]);
  });

  it("a 500 on the read-back after a successful write is retried, not an error", async () => {
    const clock = virtualClock();
    const r = router(clock);
    let failures = 1;
    kube.injectMeshFault({
      match: { verb: "get" },
      active: () => patches().some((p) => p.code === 200) && failures-- > 0,
      answer: { status: 500 },
    });
    await r.write(10, next(10));
    expect(failures).toBeLessThan(0);
    expect(kube.audit.filter((e) => e.verb === "get").map((e) => e.code)).toEqual([200, 500, 200]);
    expect(weightsNow()).toEqual([90, 10]);
  });

  it("a write applied but unanswered is found done on retry: `next` runs once, no second patch", async () => {
    const clock = virtualClock();
    const r = router(clock);
    await r.write(10, next(10));
    let once = 1;
    kube.injectMeshFault({ match: { verb: "patch" }, active: () => once-- > 0, answer: "apply-then-reset" });
    const transition = next(50);
    const state = await r.write(50, transition);
    expect(transition.calls).toBe(1);
    expect(patches().map((p) => p.code)).toEqual([200, 0]);
    expect(weightsNow()).toEqual([50, 50]);
    expect(state.weight).toBe(50);
    expect(state.history).toHaveLength(2);
  });

  it("recording a person's edit retries a 500 and changes no route", async () => {
    const clock = virtualClock();
    const r = router(clock);
    await r.write(10, next(10));
    edit((o) => {
      const route = routesOf(o)[0]?.route as Route;
      (route[0] as { weight: number }).weight = 70;
      (route[1] as { weight: number }).weight = 30;
    });
    kube.injectFault({ status: 500, count: 2, match: { verb: "patch" } });
    const state = await r.record((previous) => ({
      ...(previous as RolloutState),
      status: "paused",
      reason: "a person set 70/30",
    }));
    expect(state.status).toBe("paused");
    expect(weightsNow()).toEqual([70, 30]);
    expect(JSON.parse(stored()?.metadata.annotations?.[STATE_ANNOTATION] as string).reason).toBe(
      "a person set 70/30",
    );
  });

  it("an abort ends a hung request at once, for reads and writes", async () => {
    // The request timeout (60 s) is past the test's (30 s): only the abort can end a call in time.
    const r = router(virtualClock(), [], 60_000);
    for (const [verb, call] of [
      ["get", (signal: AbortSignal) => r.read(signal)],
      ["patch", (signal: AbortSignal) => r.write(10, next(10), signal)],
    ] as const) {
      kube.injectFault({ status: "hang", count: 1, match: { verb } });
      const held = () => kube.audit.filter((e) => e.verb === verb && e.code === 0).length;
      const heldBefore = held();
      const controller = new AbortController();
      const calling = call(controller.signal).catch((e) => e);
      await vi.waitFor(() => expect(held()).toBe(heldBefore + 1), { timeout: 10_000 });
      controller.abort(new Error("cancelled by SIGINT"));
      const error = await calling;
      expect(error.message).toBe("cancelled by SIGINT");
    }
  });
});

describe("a rollback works from the routes alone", () => {
  it("with '{not json' as the state: read reports the problem, rollback sets 100/0", async () => {
    const r = router();
    await r.write(10, next(10));
    edit((o) => {
      o.metadata.annotations = { [STATE_ANNOTATION]: "{not json" };
    });
    const view = await r.read();
    expect(view.state).toBeUndefined();
    expect(view.stateProblem).toMatch(/is not JSON/);
    expect(view.weight).toBe(10);
    await r.write(0, next(0));
    // Only the weights changed: the canary destination stays at 0.
    expect(routesOf(stored())[0]?.route).toEqual([
      { destination: { host: "backend", subset: "v1" }, weight: 100 },
      { destination: { host: "backend", subset: "v2" }, weight: 0 },
    ]);
    const saved = JSON.parse(stored()?.metadata.annotations?.[STATE_ANNOTATION] as string);
    // The recorded original matches the routes as left: a later rollback finds it consistent.
    expect(saved.original).toEqual([
      { index: 0, name: "primary", canaryAdded: false, stableWeight: 100, canaryWeight: 0 },
    ]);
  });

  it("with the annotation removed from a route at 10 %", async () => {
    const r = router();
    await r.write(10, next(10));
    edit((o) => {
      delete o.metadata.annotations;
    });
    await r.write(0, next(0));
    expect(weightsNow()).toEqual([100, 0]);
    expect((await r.read()).weights).toEqual([0]);
  });

  it("on a route someone split 80/20 by hand, restoring the recorded original", async () => {
    const before = structuredClone(stored()?.spec);
    const r = router();
    await r.write(10, next(10));
    edit((o) => {
      const route = routesOf(o)[0]?.route as Route;
      (route[0] as { weight: number }).weight = 80;
      (route[1] as { weight: number }).weight = 20;
    });
    await r.write(0, next(0));
    expect(stored()?.spec).toEqual(before);
  });

  it("after the managed route was renamed", async () => {
    const r = router(virtualClock(), ["primary"]);
    await r.write(10, next(10));
    edit((o) => {
      (routesOf(o)[0] as { name: string }).name = "main";
    });
    expect((await r.read()).weight).toBe(10);
    const refused = await r.write(50, next(50)).catch((e) => e);
    expect(refused.message).toMatch(/has no http route named "primary" \(it has main\)/);
    await r.write(0, next(0));
    expect(weightsNow()).toEqual([100, 0]);
  });
});

describe("concurrent writers", () => {
  it("an annotation another writer adds to an object that had none is kept", async () => {
    const realApi = new KubernetesMeshApi(loadKubeConfig({ kubeconfig: kube.kubeconfig() }));
    const racingApi = Object.create(realApi) as KubernetesMeshApi;
    let raced = false;
    racingApi.patchVirtualService = async (...args) => {
      if (!raced) {
        raced = true;
        edit((o) => {
          o.metadata.annotations = { "team.example.com/owner": "payments" };
        });
      }
      return realApi.patchVirtualService(...args);
    };
    expect(stored()?.metadata.annotations).toBeUndefined();
    const clock = virtualClock();
    const r = meshRouter(racingApi, { clock });
    await r.write(10, next(10));
    expect(patches().map((p) => p.code)).toEqual([422, 200]);
    const annotations = stored()?.metadata.annotations ?? {};
    expect(annotations["team.example.com/owner"]).toBe("payments");
    expect(JSON.parse(annotations[STATE_ANNOTATION] as string).weight).toBe(10);
  });

  it("a re-run attempt of the same run takes over the lease; other runs and earlier attempts do not", async () => {
    const r = router();
    await r.write(10, next(10, "acme/shop run 41 attempt 1"));
    await r.write(50, next(50, "acme/shop run 41 attempt 2"));
    expect(weightsNow()).toEqual([50, 50]);
    for (const holder of [
      "acme/shop run 41 attempt 1",
      "acme/shop run 42 attempt 3",
      "acme/other run 41 attempt 3",
    ]) {
      const error = await r.write(100, next(100, holder)).catch((e) => e);
      expect(error).toBeInstanceOf(LeaseHeldError);
      expect(error.message).toContain("being rolled out by acme/shop run 41 attempt 2");
    }
    expect(weightsNow()).toEqual([50, 50]);
  });
});
