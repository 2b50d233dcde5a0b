/**
 * End-to-end runs of the bundled action on the local mesh, as the runner runs it: every input as
 * INPUT_*, the runner's files, the GitHub API emulator behind GITHUB_API_URL.
 */
import type { ChildProcess } from "node:child_process";
import { afterEach } from "vitest";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import { CANARY_SERVICE, STABLE_SERVICE } from "../mesh/gateway-fixtures.ts";
import { type Mesh, type MeshOptions, startMesh } from "../mesh/index.ts";
import { type ActionRun, type ActionRunOptions, runAction } from "./action-runner.ts";

export const REPOSITORY = "acme/shop";
export const COMMIT = "0123456789abcdef0123456789abcdef01234567";
export const PULL_REQUEST = 42;

/** The inputs a workflow must give, pointed at the local mesh; nothing else. */
export function requiredInputs(mesh: Mesh): Record<string, string> {
  return {
    "virtual-service": "backend",
    namespace: NAMESPACE,
    "stable-subset": "v1",
    "canary-subset": "v2",
    "prometheus-url": mesh.prometheus?.url ?? "",
    kubeconfig: mesh.kube.kubeconfig("admin-token", NAMESPACE),
    "github-token": "ghs_bot_token",
  };
}

/** Fast timings for tests: a 1 s Prometheus scrape, so seconds instead of minutes. */
export function fastInputs(mesh: Mesh, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    ...requiredInputs(mesh),
    stages: "10,50,100",
    "max-error-rate": "5%",
    "min-requests": "50",
    "min-stage-duration": "3s",
    "max-stage-duration": "20s",
    interval: "1s",
    "settle-time": "2s",
    ...overrides,
  };
}

/** fastInputs for the HTTPRoute: http-route and the versions' Services instead of virtual-service and subsets. */
export function fastRouteInputs(mesh: Mesh, overrides: Record<string, string> = {}): Record<string, string> {
  const { "virtual-service": _, "stable-subset": __, "canary-subset": ___, ...rest } = fastInputs(mesh);
  return {
    ...rest,
    "http-route": SERVICE,
    "stable-host": STABLE_SERVICE,
    "canary-host": CANARY_SERVICE,
    ...overrides,
  };
}

export interface E2eOptions {
  inputs: Record<string, string>;
  state?: Record<string, string>;
  runId?: string;
  /** GITHUB_RUN_ATTEMPT; default "1" (a re-run of the same run is "2"). */
  runAttempt?: string;
  /** The commit the run is at (GITHUB_SHA); default COMMIT, whose pull request is PULL_REQUEST. */
  commit?: string;
  onSpawn?: (child: ChildProcess) => void;
  onStdout?: ActionRunOptions["onStdout"];
  timeoutMs?: number;
}

export function runOnMesh(mesh: Mesh, options: E2eOptions): Promise<ActionRun> {
  mesh.github.commitPulls.set(COMMIT, [PULL_REQUEST]);
  return runAction({
    inputs: options.inputs,
    state: options.state,
    onSpawn: options.onSpawn,
    onStdout: options.onStdout,
    timeoutMs: options.timeoutMs ?? 120_000,
    env: {
      GITHUB_API_URL: mesh.github.url,
      GITHUB_SERVER_URL: "https://github.com",
      GITHUB_REPOSITORY: REPOSITORY,
      GITHUB_SHA: options.commit ?? COMMIT,
      GITHUB_RUN_ID: options.runId ?? "1001",
      GITHUB_RUN_ATTEMPT: options.runAttempt ?? "1",
      GITHUB_EVENT_NAME: "push",
      GITHUB_ACTOR: "octocat",
    },
  });
}

/**
 * Every write the action made kept each route's weights summing to 100: the http routes, and with
 * `protocols` the tcp and tls routes too.
 */
export function writesKeptWeightsAt100(
  mesh: Mesh,
  protocols: ReadonlyArray<"http" | "tcp" | "tls"> = ["http"],
): { writes: number; sums: number[] } {
  const writes = mesh.kube.audit.filter((e) => e.verb === "patch" && e.code === 200 && e.object);
  const sums = writes.flatMap((e) =>
    protocols.flatMap((protocol) =>
      (
        ((e.object?.spec ?? {}) as Record<string, Array<{ route?: Array<{ weight?: number }> }> | undefined>)[
          protocol
        ] ?? []
      )
        .map((r) => r.route ?? [])
        .filter((d) => d.length > 1)
        .map((d) => d.reduce((s, x) => s + (x.weight ?? 0), 0)),
    ),
  );
  return { writes: writes.length, sums };
}

export function canaryWeight(mesh: Mesh): number[] {
  const vs = mesh.kube.get("virtualservices", NAMESPACE, "backend");
  return (
    (
      (vs?.spec ?? {}) as {
        http: Array<{ route: Array<{ destination: { subset?: string }; weight?: number }> }>;
      }
    ).http[0]?.route ?? []
  ).map((d) => d.weight ?? 100);
}

/** The `::error::` lines, with the runner's command escaping (%25, %0D, %0A) undone. */
export function errorLines(run: ActionRun): string[] {
  return run.stdout
    .split("\n")
    .filter((l) => l.startsWith("::error::"))
    .map((l) => l.replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%"));
}

/**
 * A fresh local mesh per test (healthy versions at 0.2 % errors, 300 req/s unless overridden),
 * scraped once before the test starts and stopped after it.
 */
export function useMesh(): (options?: MeshOptions) => Promise<Mesh> {
  let mesh: Mesh | undefined;
  afterEach(async () => {
    await mesh?.stop();
    mesh = undefined;
  });
  return async (options = {}) => {
    mesh = await startMesh({
      requestsPerSecond: 300,
      stable: { errorRate: 0.002 },
      canary: { errorRate: 0.002 },
      ...options,
    });
    await mesh.scraped();
    return mesh;
  };
}

/**
 * An onStdout handler that calls `act` once, at the first progress line of stage `stage` (as the
 * log writes it, e.g. "1/3 · 10 %") at least `seconds` into it. Not at one exact second: on a loaded
 * machine a read comes a second late, and a trigger waiting for "· 2s" then never fires.
 */
export function onceInStage(stage: string, seconds: number, act: () => void): (chunk: string) => void {
  let done = false;
  return (chunk) => {
    if (done) return;
    for (const line of chunk.matchAll(/stage (\d+\/\d+ · \d+(?:\.\d+)? %) · (\d+)s\b/g)) {
      if (line[1] !== stage || Number(line[2]) < seconds) continue;
      done = true;
      act();
      return;
    }
  };
}
