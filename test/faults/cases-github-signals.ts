/**
 * Issue 12, items 4 and 5: GitHub never holds a rollback hostage nor loses the PR comment to one
 * failed update; cancellation reaches every call, kills are cleaned up, re-runs take over.
 */
import type { ChildProcess } from "node:child_process";
import { BOT } from "../mesh/github-api.ts";
import type { Mesh } from "../mesh/index.ts";
import { PULL_REQUEST, REPOSITORY } from "../support/e2e.ts";
import { SlowProxy } from "../support/slow-proxy.ts";
import {
  canaryShare,
  currentVs,
  errors,
  FAILING,
  FIRST_STAGE,
  HEALTHY,
  nonRollbackWritesAfter,
  runArmed,
  runTimed,
  seconds,
  stableAfterCanary,
  storedWrites,
  type TimedRun,
  verdictAt,
  weightsOf,
  within,
  withMesh,
} from "./harness.ts";
import type { FaultCase, Measured } from "./table.ts";

/** Long stages, so nothing but the signal ends the first one. */
const LONG_STAGE = { "min-stage-duration": "30s", "max-stage-duration": "60s" };

function botComments(mesh: Mesh): string[] {
  return (mesh.github.comments.get(`${REPOSITORY}#${PULL_REQUEST}`) ?? [])
    .filter((c) => c.user.login === BOT.login)
    .map((c) => c.body);
}

/**
 * Cancels the step as the runner does: SIGINT, SIGTERM 7.5 s later, SIGKILL 2.5 s after that
 * (unless the process has ended).
 */
export function cancelLikeTheRunner(child: ChildProcess | undefined): void {
  if (!child) return;
  child.kill("SIGINT");
  const term = setTimeout(() => child.kill("SIGTERM"), 7500);
  const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
  child.once("exit", () => {
    clearTimeout(term);
    clearTimeout(kill);
  });
}

/** Polls `ready` every 20 ms and cancels the action (as the runner does) the moment it holds. */
function interruptWhen(
  child: ChildProcess | undefined,
  ready: () => boolean,
  sent: (at: number) => void,
): void {
  const timer = setInterval(() => {
    if (!ready()) return;
    clearInterval(timer);
    sent(Date.now());
    cancelLikeTheRunner(child);
  }, 20);
  setTimeout(() => clearInterval(timer), 60_000).unref();
}

/** SIGINT once `stall` has something of the action's hanging: main must roll back within 2 s. */
async function interruptWhileHanging(
  mesh: Mesh,
  stall: (mesh: Mesh) => () => boolean,
  inputs: Record<string, string> = LONG_STAGE,
): Promise<Measured> {
  let signalAt: number | undefined;
  const main = await runArmed(
    mesh,
    (m, child) => {
      const hanging = stall(m);
      interruptWhen(child, hanging, (at) => {
        signalAt = at;
      });
    },
    { inputs, timeoutMs: 45_000 },
  );
  const stable = stableAfterCanary(mesh);
  const after = signalAt === undefined ? -1 : nonRollbackWritesAfter(mesh, signalAt);
  return {
    ok: within(signalAt, stable, 2000) && after === 0,
    figures: { writesAfterSignal: Math.max(after, 0) },
    measured:
      `SIGINT → 100 % stable ${seconds(signalAt, stable)} (main ended ${seconds(signalAt, main.endedAt)} after it); ` +
      `${after} write(s) after the signal other than the rollback; final ${weightsOf(currentVs(mesh))}`,
  };
}

/**
 * A case: the fault plan holds the calls `hold` matches, and SIGINT follows the first one held
 * (healthy canary, 3 s stages): main must roll back within 2 s.
 */
function interruptWhileHeld<Match>(
  plan: (mesh: Mesh) => { hold(match: Match): void; readonly hits: readonly unknown[] },
  hold: Match,
): () => Promise<Measured> {
  return () =>
    withMesh(HEALTHY, (mesh) =>
      interruptWhileHanging(
        mesh,
        (m) => {
          plan(m).hold(hold);
          return () => plan(m).hits.length > 0;
        },
        { "min-stage-duration": "3s", "max-stage-duration": "60s" },
      ),
    );
}

/** SIGKILLs the action the moment its first write to the VirtualService arrives (it is applied). */
async function killOnFirstWrite(mesh: Mesh): Promise<TimedRun> {
  let child: ChildProcess | undefined;
  let killed = false;
  mesh.kube.faultPlan.onRequest((info) => {
    if (killed || info.verb !== "patch" || info.resource !== "virtualservices") return;
    killed = true;
    child?.kill("SIGKILL");
  });
  return runTimed(mesh, {
    onSpawn: (c) => {
      child = c;
    },
  });
}

function reportSurvives(fault: (mesh: Mesh) => void): () => Promise<Measured> {
  return () =>
    withMesh(FAILING, async (mesh) => {
      fault(mesh);
      const run = await runTimed(mesh);
      const last = botComments(mesh).at(-1) ?? "";
      const shows = /Rolled back/.test(last);
      return {
        ok: shows && canaryShare(currentVs(mesh)) === 0,
        measured:
          `result ${run.outputs.result ?? "none"}; ${botComments(mesh).length} bot comment(s); ` +
          `the PR comment ${shows ? "shows the rollback" : `does not show the result (${JSON.stringify(last.split("\n")[1] ?? last.slice(0, 60))})`}`,
      };
    });
}

export const githubAndSignalCases: FaultCase[] = [
  {
    id: "4a",
    title: "GitHub stops answering mid-stage, failing canary",
    must: "100 % stable within 5 s of the verdict; the step still ends",
    run: () =>
      withMesh(FAILING, async (mesh) => {
        const run = await runArmed(mesh, (m) => m.github.faultPlan.hold(), {
          armOn: FIRST_STAGE,
          timeoutMs: 40_000,
        });
        const verdict = verdictAt(run);
        const stable = stableAfterCanary(mesh);
        return {
          ok: within(verdict, stable, 5000),
          measured:
            (verdict === undefined ? "no verdict logged: the stage waited on GitHub; " : "") +
            `verdict → 100 % stable ${seconds(verdict, stable)}; step ended ${seconds(verdict, run.endedAt)} after the verdict` +
            `${run.signal ? ` (killed by the test at 40 s)` : ""}; ${mesh.github.faultPlan.hits.length} GitHub request(s) held`,
        };
      }),
  },
  {
    id: "4b",
    title: "one 502 on the first PR comment write",
    must: "the PR comment still shows the final result",
    run: reportSurvives((m) => m.github.faultPlan.badGateway({ path: /\/comments/, method: "POST" })),
  },
  {
    id: "4c",
    title: "a secondary rate limit (403, Retry-After: 1) on the first PR comment write",
    must: "the PR comment still shows the final result",
    run: reportSurvives((m) =>
      m.github.faultPlan.secondaryRateLimit({ path: /\/comments/, method: "POST", retryAfterSeconds: 1 }),
    ),
  },
  {
    id: "5a",
    title: "SIGINT while a Prometheus query hangs (answers after 60 s)",
    must: "main: 100 % stable within 2 s of SIGINT; 0 writes after it but the rollback",
    run: async () => {
      let proxy: SlowProxy | undefined;
      try {
        return await withMesh(HEALTHY, async (mesh) => {
          proxy = await new SlowProxy({ target: mesh.prometheus?.url ?? "" }).start();
          const slow = proxy;
          return interruptWhileHanging(
            mesh,
            () => {
              slow.delayMs = 60_000;
              const seen = slow.requests.length;
              return () => slow.requests.length > seen;
            },
            { ...LONG_STAGE, "prometheus-url": slow.url },
          );
        });
      } finally {
        await proxy?.stop();
      }
    },
  },
  {
    id: "5b",
    title: "SIGINT while a GitHub call hangs",
    must: "main: 100 % stable within 2 s of SIGINT; 0 writes after it but the rollback",
    run: interruptWhileHeld((m) => m.github.faultPlan, {}),
  },
  {
    id: "5c",
    title: "SIGINT while a Kubernetes API call hangs",
    must: "main: 100 % stable within 2 s of SIGINT; 0 writes after it but the rollback",
    run: interruptWhileHeld((m) => m.kube.faultPlan, { resource: "virtualservices", count: 1 }),
  },
  {
    id: "5d",
    title: "SIGKILL the moment the first weight write arrives, then the post step",
    must: "main's saved state names the rollout; the post step restores 100 % stable",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        const main = await killOnFirstWrite(mesh);
        const told = (main.state.rolloutInFlight ?? "") !== "";
        const post = await runTimed(mesh, { state: main.state });
        return {
          ok: told && canaryShare(currentVs(mesh)) === 0,
          measured:
            `saved state ${told ? "names the rollout" : "empty"}; post step: result ${post.outputs.result ?? "none"}, ` +
            `final ${weightsOf(currentVs(mesh))}; says: ${post.stdout.match(/nothing to clean up/)?.[0] ?? (errors(post).slice(0, 80) || "–")}`,
        };
      }),
  },
  {
    id: "5e",
    title: "SIGKILL after the first weight write, no post step, then a re-run (attempt 2)",
    must: "the re-run takes over from its dead predecessor (not refused by its lease)",
    run: () =>
      withMesh(FAILING, async (mesh) => {
        await killOnFirstWrite(mesh);
        const rerun = await runTimed(mesh, { runAttempt: "2" });
        return {
          ok: rerun.outputs.result === "rolled-back" && canaryShare(currentVs(mesh)) === 0,
          measured: `re-run: result ${rerun.outputs.result ?? "none"}, final ${weightsOf(currentVs(mesh))}; says: ${errors(rerun).slice(0, 120)}`,
        };
      }),
  },
  {
    id: "5f",
    title: "SIGINT during preflight",
    must: "0 writes to the VirtualService",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        let child: ChildProcess | undefined;
        let sent = false;
        mesh.kube.faultPlan.onRequest((info) => {
          if (sent || info.resource !== "pods") return;
          sent = true;
          cancelLikeTheRunner(child);
        });
        const run = await runTimed(mesh, {
          onSpawn: (c) => {
            child = c;
          },
        });
        const writes = storedWrites(mesh).length;
        return {
          ok: sent && writes === 0,
          figures: { writesAfterSignal: writes },
          measured: `${writes} write(s); result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; final ${weightsOf(currentVs(mesh))}`,
        };
      }),
  },
  {
    id: "5g",
    title: "`rollback-on-cancel: false`, SIGINT mid-stage",
    must: "main leaves traffic where it was: 0 writes after the signal",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        let signalAt = 0;
        const run = await runArmed(
          mesh,
          (_m, child) => {
            signalAt = Date.now();
            cancelLikeTheRunner(child);
          },
          { inputs: { ...LONG_STAGE, "rollback-on-cancel": "false" }, timeoutMs: 45_000 },
        );
        const after = storedWrites(mesh).filter((w) => w.at > signalAt && w.requestBody !== undefined);
        const routeWrites = after.filter((w) => JSON.stringify(w.requestBody).includes("/spec/http")).length;
        return {
          ok: routeWrites === 0 && weightsOf(currentVs(mesh)) === "90/10",
          figures: { writesAfterSignal: routeWrites },
          measured: `${routeWrites} weight write(s) after the signal; final ${weightsOf(currentVs(mesh))}; result ${run.outputs.result ?? "none"}`,
        };
      }),
  },
  {
    id: "5h",
    title: "a cancelled run (rolled back) is re-run: GITHUB_RUN_ATTEMPT=2",
    must: "the re-run starts a fresh rollout (not refused)",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        await runArmed(mesh, (_m, child) => cancelLikeTheRunner(child), {
          inputs: LONG_STAGE,
          timeoutMs: 45_000,
        });
        const before = Date.now();
        const rerun = await runTimed(mesh, { runAttempt: "2", inputs: { stages: "10,100" } });
        const started = storedWrites(mesh).some((w) => w.at > before && canaryShare(w.object) > 0);
        return {
          ok: started && rerun.exitCode === 0,
          measured: `re-run: result ${rerun.outputs.result ?? "none"}, exit ${rerun.exitCode}${started ? "" : `; refused: ${errors(rerun).slice(0, 120)}`}`,
        };
      }),
  },
];
