/**
 * Issue 12, item 6: Prometheus faults are timed from when they began (`on-unreachable` after about
 * 3 × `interval`), a short restart is ridden out, and "no data" is told apart from "no traffic".
 */
import { PrometheusServer } from "../mesh/prometheus.ts";
import { SlowProxy } from "../support/slow-proxy.ts";
import {
  currentVs,
  errors,
  HEALTHY,
  runArmed,
  seconds,
  stableAfterCanary,
  weightsOf,
  within,
  withMesh,
} from "./harness.ts";
import type { FaultCase } from "./table.ts";

const INTERVAL_S = 3;
/**
 * The action can only see a fault at its next read (up to one interval after it began), then must
 * act after about 3 intervals of failed reads: 4 × interval, plus 2 s for the rollback write and
 * the timing noise of two loaded cores.
 */
const UNREACHABLE_LIMIT_MS = 4 * INTERVAL_S * 1000 + 2000;
const METRICS_INPUTS = {
  interval: `${INTERVAL_S}s`,
  "min-stage-duration": "30s",
  "max-stage-duration": "60s",
};

export const metricsCases: FaultCase[] = [
  {
    id: "6a",
    title: `Prometheus killed mid-stage (interval ${INTERVAL_S}s, healthy canary)`,
    must: `100 % stable within 3 intervals of the first failed read: ${UNREACHABLE_LIMIT_MS / 1000} s of the kill`,
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        let killedAt: number | undefined;
        const run = await runArmed(
          mesh,
          (m) => {
            killedAt = Date.now();
            m.prometheus?.kill();
          },
          { inputs: METRICS_INPUTS, timeoutMs: 60_000 },
        );
        const stable = stableAfterCanary(mesh);
        return {
          ok: within(killedAt, stable, UNREACHABLE_LIMIT_MS),
          measured: `kill → 100 % stable ${seconds(killedAt, stable)}; result ${run.outputs.result ?? "none"}; says: ${errors(run).slice(0, 100)}`,
        };
      }),
  },
  {
    id: "6b",
    title: `Prometheus down for 3 s then restarted (under 3 intervals of ${INTERVAL_S}s), healthy canary`,
    must: "promoted, 0/100: a short outage is ridden out",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        const run = await runArmed(
          mesh,
          (m) => {
            m.prometheus?.kill();
            setTimeout(() => void m.prometheus?.restart(), 3000);
          },
          { inputs: { ...METRICS_INPUTS, stages: "10,100", "min-stage-duration": "8s" }, timeoutMs: 60_000 },
        );
        const final = weightsOf(currentVs(mesh));
        return {
          ok: run.outputs.result === "promoted" && final === "0/100",
          measured: `result ${run.outputs.result ?? "none"}; final ${final}${run.exitCode === 0 ? "" : `; says: ${errors(run).slice(0, 120)}`}`,
        };
      }),
  },
  {
    id: "6c",
    title: `Prometheus answers only after 60 s, from mid-stage (interval ${INTERVAL_S}s)`,
    must: `100 % stable within 3 intervals of the first failed read: ${UNREACHABLE_LIMIT_MS / 1000} s of the slowdown`,
    run: async () => {
      let proxy: SlowProxy | undefined;
      try {
        return await withMesh(HEALTHY, async (mesh) => {
          const slow = await new SlowProxy({ target: mesh.prometheus?.url ?? "" }).start();
          proxy = slow;
          let slowedAt: number | undefined;
          const run = await runArmed(
            mesh,
            () => {
              slowedAt = Date.now();
              slow.delayMs = 60_000;
            },
            { inputs: { ...METRICS_INPUTS, "prometheus-url": slow.url }, timeoutMs: 60_000 },
          );
          const stable = stableAfterCanary(mesh);
          return {
            ok: within(slowedAt, stable, UNREACHABLE_LIMIT_MS),
            measured: `slowdown → 100 % stable ${seconds(slowedAt, stable)}; result ${run.outputs.result ?? "none"}${run.signal ? " (killed by the test at 60 s)" : ""}`,
          };
        });
      } finally {
        await proxy?.stop();
      }
    },
  },
  {
    id: "6d",
    title: "Prometheus answers with empty vectors mid-stage (a working server that has no series)",
    must: `handled as missing data: on-unreachable, 100 % stable within ${UNREACHABLE_LIMIT_MS / 1000} s; no stage passes on it; never "No traffic reached the canary"`,
    run: async () => {
      const empty = await new PrometheusServer().start({ targets: [] });
      let proxy: SlowProxy | undefined;
      try {
        return await withMesh(HEALTHY, async (mesh) => {
          const swap = await new SlowProxy({ target: mesh.prometheus?.url ?? "" }).start();
          proxy = swap;
          let swappedAt: number | undefined;
          const run = await runArmed(
            mesh,
            () => {
              swappedAt = Date.now();
              swap.target = empty.url;
            },
            {
              inputs: { ...METRICS_INPUTS, "max-stage-duration": "45s", "prometheus-url": swap.url },
              timeoutMs: 60_000,
            },
          );
          const stable = stableAfterCanary(mesh);
          const noTraffic = /No traffic reached the canary/.test(`${run.stdout}\n${run.summary}`);
          const passed = run.lines.filter(
            (l) => (swappedAt ?? 0) < l.at && /^■ stage .*: pass/.test(l.text),
          ).length;
          return {
            ok: within(swappedAt, stable, UNREACHABLE_LIMIT_MS) && passed === 0 && !noTraffic,
            measured:
              `empty from mid-stage → 100 % stable ${seconds(swappedAt, stable)}; ${passed} stage(s) passed on no data; ` +
              `${noTraffic ? 'said "No traffic reached the canary"' : "no false no-traffic"}; result ${run.outputs.result ?? "none"}${run.signal ? " (killed by the test at 60 s)" : ""}`,
          };
        });
      } finally {
        await proxy?.stop();
        await empty.stop();
      }
    },
  },
];
