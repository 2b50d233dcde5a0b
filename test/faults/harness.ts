/**
 * What every fault case needs: a mesh of its own, the bundled action run as the runner runs it with
 * each log line time-stamped on arrival, and measurements taken from the emulator's audit log
 * (when traffic reached 100 % stable, writes after a signal, a person's edits undone) and from every
 * channel the action writes to (secrets).
 */
import type { ChildProcess } from "node:child_process";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import { type Mesh, type MeshOptions, startMesh } from "../mesh/index.ts";
import type { AuditEntry, KubeObject } from "../mesh/kube-api.ts";
import type { ActionRun } from "../support/action-runner.ts";
import { type E2eOptions, fastInputs, runOnMesh } from "../support/e2e.ts";

export const CANARY_SUBSET = "v2";

/** A canary that fails at once (30 % errors) and a healthy one, both at 300 req/s. */
export const FAILING: MeshOptions = {
  requestsPerSecond: 300,
  stable: { errorRate: 0.002 },
  canary: { errorRate: 0.3 },
};
export const HEALTHY: MeshOptions = {
  requestsPerSecond: 300,
  stable: { errorRate: 0.002 },
  canary: { errorRate: 0.002 },
};

export interface LogLine {
  at: number;
  text: string;
}

export interface TimedRun extends ActionRun {
  startedAt: number;
  endedAt: number;
  lines: LogLine[];
}

/** Runs `body` on a fresh mesh, scraped once, and stops the mesh afterwards. */
export async function withMesh<T>(options: MeshOptions, body: (mesh: Mesh) => Promise<T>): Promise<T> {
  const mesh = await startMesh(options);
  try {
    if (options.prometheus !== false) await mesh.scraped(45_000);
    return await body(mesh);
  } finally {
    await mesh.stop();
  }
}

export interface TimedOptions extends Omit<E2eOptions, "inputs" | "onStdout"> {
  inputs?: Record<string, string>;
  /** Called for each complete log line as it arrives (with the running child). */
  onLine?: (line: LogLine, child: ChildProcess | undefined) => void;
}

/** Runs the bundled action on the mesh with fast inputs, time-stamping each stdout line on arrival. */
export async function runTimed(mesh: Mesh, options: TimedOptions = {}): Promise<TimedRun> {
  const lines: LogLine[] = [];
  let child: ChildProcess | undefined;
  let partial = "";
  const startedAt = Date.now();
  const run = await runOnMesh(mesh, {
    ...options,
    inputs: fastInputs(mesh, options.inputs),
    onSpawn: (c) => {
      child = c;
      options.onSpawn?.(c);
    },
    onStdout: (chunk) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const text of parts) {
        const line = { at: Date.now(), text };
        lines.push(line);
        options.onLine?.(line, child);
      }
    },
  });
  if (partial) lines.push({ at: Date.now(), text: partial });
  return { ...run, startedAt, endedAt: Date.now(), lines };
}

/** When the first line matching `pattern` arrived (undefined when none did). */
export function lineAt(run: TimedRun, pattern: RegExp): number | undefined {
  return run.lines.find((l) => pattern.test(l.text))?.at;
}

/** The engine's verdict line for a stage that failed (or was ended for any reason but a pass). */
export const VERDICT = /^■ stage \d+\/\d+ \(\d+ %\): (?!pass)/;
/** A stage's progress line whose decision is neither continue nor pass: the moment of the verdict. */
export const DECISION = /^\s+stage \d+\/\d+ · .* · (?!continue:|pass:)[\w-]+: /;

/** When the action logged its verdict: the decision's progress line, or the stage's end line. */
export function verdictAt(run: TimedRun): number | undefined {
  return run.lines.find((l) => DECISION.test(l.text) || VERDICT.test(l.text))?.at;
}
/** The first weight write of a rollout. */
export const FIRST_STAGE = /^● stage 1\/\d+: canary weight set to/;

type Route = {
  name?: string;
  route?: Array<{ destination: { host?: string; subset?: string }; weight?: number }>;
};

export function routesOf(vs: KubeObject | undefined): Route[] {
  return ((vs?.spec as { http?: Route[] } | undefined)?.http ?? []) as Route[];
}

/** The canary's share of the first route (0 when it is not a destination at all). */
export function canaryShare(vs: KubeObject | undefined): number {
  const dests = routesOf(vs)[0]?.route ?? [];
  const canary = dests.find((d) => d.destination.subset === CANARY_SUBSET);
  if (!canary) return 0;
  return dests.length === 1 ? 100 : (canary.weight ?? 0);
}

/** The first route's weights as "stable/canary" (e.g. "90/10", "100" when only stable is left). */
export function weightsOf(vs: KubeObject | undefined): string {
  return (routesOf(vs)[0]?.route ?? []).map((d) => d.weight ?? 100).join("/");
}

export function currentVs(mesh: Mesh): KubeObject | undefined {
  return mesh.kube.get("virtualservices", NAMESPACE, SERVICE);
}

/** Writes to the VirtualService that were stored (answered or not), in order. */
export function storedWrites(mesh: Mesh): Array<AuditEntry & { at: number }> {
  return mesh.kube.audit
    .filter(
      (e) =>
        e.resource === "virtualservices" &&
        ["patch", "update", "create"].includes(e.verb) &&
        (e.code === 200 || e.code === 201) &&
        e.object !== undefined,
    )
    .map((e) => ({ ...e, at: Date.parse(e.time) }));
}

/**
 * When traffic was at 100 % stable for good after `from`: the time of the stored write that made it
 * so (or `from` itself when it already was and stayed so). Undefined when it never got there.
 */
export function stableSince(mesh: Mesh, from: number, initiallyStable = false): number | undefined {
  let since: number | undefined = initiallyStable ? from : undefined;
  for (const w of storedWrites(mesh)) {
    if (w.at < from) continue;
    if (canaryShare(w.object) === 0) since ??= w.at;
    else since = undefined;
  }
  return canaryShare(currentVs(mesh)) === 0 ? since : undefined;
}

/** Stored writes after `from` that left canary traffic in place (anything but a rollback). */
export function nonRollbackWritesAfter(mesh: Mesh, from: number): number {
  return storedWrites(mesh).filter((w) => w.at > from && canaryShare(w.object) > 0).length;
}

/** Stored writes to the VirtualService's weights after `from` (any write that changed the routes). */
export function routeWritesAfter(mesh: Mesh, from: number, before: KubeObject | undefined): number {
  let previous = JSON.stringify(routesOf(before));
  let count = 0;
  for (const w of storedWrites(mesh)) {
    if (w.at <= from) continue;
    const routes = JSON.stringify(routesOf(w.object));
    if (routes !== previous) count++;
    previous = routes;
  }
  return count;
}

/** Seconds between two instants, to one decimal, or "never". */
export function seconds(from: number | undefined, to: number | undefined): string {
  if (from === undefined || to === undefined) return "never";
  return `${((to - from) / 1000).toFixed(1)} s`;
}

export function within(from: number | undefined, to: number | undefined, limitMs: number): boolean {
  return from !== undefined && to !== undefined && to - from <= limitMs;
}

/**
 * Where any of `secrets` appears: stdout and stderr as the runner shows them (values registered
 * with `::add-mask::` are replaced per line, as the runner's masker does), the job summary, the
 * step outputs, the GitHub API request bodies and the Kubernetes API request bodies.
 */
export function secretsFound(run: ActionRun, mesh: Mesh | undefined, secrets: string[]): string[] {
  const masks = run.stdout
    .split("\n")
    .filter((l) => l.startsWith("::add-mask::"))
    .map((l) => unescapeCommand(l.slice("::add-mask::".length)))
    .filter((m) => m.length > 0)
    .sort((a, b) => b.length - a.length);
  const masked = (text: string) =>
    text
      .split("\n")
      .filter((l) => !l.startsWith("::add-mask::"))
      .map((l) => masks.reduce((line, m) => line.split(m).join("***"), unescapeCommand(l)))
      .join("\n");
  const channels: Record<string, string> = {
    stdout: masked(run.stdout),
    stderr: masked(run.stderr),
    summary: run.summary,
    outputs: JSON.stringify(run.outputs),
    github: JSON.stringify(mesh?.github.requests.map((r) => [r.path, r.query, r.body]) ?? []),
    kubernetes: JSON.stringify(mesh?.kube.audit.map((e) => e.requestBody) ?? []),
  };
  const found: string[] = [];
  for (const [channel, text] of Object.entries(channels)) {
    for (const secret of secrets) if (text.includes(secret)) found.push(`${channel}: ${secret.slice(0, 6)}…`);
  }
  return found;
}

/** The runner's escaping of command values undone (%0D, %0A, %25). */
function unescapeCommand(text: string): string {
  return text.replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%");
}

/** The `::error::` lines, unescaped. */
export function errors(run: ActionRun): string {
  return run.stdout
    .split("\n")
    .filter((l) => l.startsWith("::error::"))
    .map((l) => unescapeCommand(l.slice("::error::".length)))
    .join(" | ");
}

export function stateOf(mesh: Mesh, annotation: string): Record<string, unknown> | undefined {
  const text = currentVs(mesh)?.metadata.annotations?.[annotation];
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The first stage's progress line: the stage is under way and its weight write is behind us. */
export const STAGE_PROGRESS = /^\s+stage 1\/\d+ · /;

/** When the first write that put traffic on the canary was stored. */
export function firstCanaryWrite(mesh: Mesh): number | undefined {
  return storedWrites(mesh).find((w) => canaryShare(w.object) > 0)?.at;
}

/** 100 % stable for good after traffic first went to the canary (undefined: never, or it never went). */
export function stableAfterCanary(mesh: Mesh): number | undefined {
  const t0 = firstCanaryWrite(mesh);
  return t0 === undefined ? undefined : stableSince(mesh, t0 + 1);
}

/** Runs the action and calls `arm` once, when the first stage's progress line (or `armOn`) arrives. */
export function runArmed(
  mesh: Mesh,
  arm: (mesh: Mesh, child: ChildProcess | undefined) => void,
  options: TimedOptions & { armOn?: RegExp } = {},
): Promise<TimedRun> {
  let armed = false;
  const armOn = options.armOn ?? STAGE_PROGRESS;
  return runTimed(mesh, {
    ...options,
    onLine: (line, child) => {
      options.onLine?.(line, child);
      if (!armed && armOn.test(line.text)) {
        armed = true;
        arm(mesh, child);
      }
    },
  });
}

/**
 * Calls `fault` when the action's second write to the VirtualService arrives, before it is served:
 * with a failing canary that write is the rollback's (the first set the first stage).
 */
export function atRollbackWrite(mesh: Mesh, fault: (mesh: Mesh) => void): void {
  let writes = 0;
  mesh.kube.faultPlan.onRequest((info) => {
    if (info.resource !== "virtualservices" || !["patch", "update"].includes(info.verb)) return;
    writes += 1;
    if (writes === 2) fault(mesh);
  });
}
