/**
 * Issue 20, "judge only fresh data": counters that stop moving while Prometheus keeps answering (a
 * scrape target down, a stuck exporter, a federation gap) are no data and follow `on-unreachable`;
 * never "no traffic" or "too little traffic", and `on-inconclusive: promote` never promotes on them.
 *
 * The mesh exposes every pod's series on one target, so "the canary's target is down" is modelled
 * as its series leaving the exposition: Prometheus then marks them stale and their samples end, as
 * when the canary pods' targets fail their scrapes. Stages `10,100` put the last stage at 100 %,
 * where stable serves nothing and "the canary's counters did not move" was read as too little
 * traffic: the promotion these cases must not see.
 */
import type { Mesh, MeshOptions } from "../mesh/index.ts";
import { currentVs, errors, runArmed, type TimedRun, weightsOf, withMesh } from "./harness.ts";
import type { FaultCase, Measured } from "./table.ts";

/** Healthy until the fault, then failing 30 % of its requests: the fault hides exactly that. */
const TURNS_BAD: MeshOptions = {
  requestsPerSecond: 300,
  stable: { errorRate: 0.002 },
  canary: { errorRate: 0.002 },
};

const INPUTS = {
  stages: "10,100",
  "on-inconclusive": "promote",
  "on-unreachable": "rollback",
  interval: "1s",
  "min-stage-duration": "3s",
  "max-stage-duration": "20s",
};

const CANARY_LINE = /destination_version="v2"/;
/**
 * Stage 1's first read that counted canary requests: the fault must come after the canary's counters
 * were seen to move. Armed before (a loaded machine reads before any canary scrape), frozen counters
 * are exactly what no traffic looks like, and the case would test something else.
 */
const CANARY_COUNTED = /^\s+stage 1\/\d+ · [\d.]+ % · \d+s · canary [1-9]\d* req/;
const MUST = "not promoted: ends 100 % stable (on-unreachable: rollback), never on too little or no traffic";

function verdictOf(mesh: Mesh, run: TimedRun): Measured {
  const final = weightsOf(currentVs(mesh));
  const text = `${run.stdout}\n${run.summary}`;
  const noTraffic = /No traffic reached the canary|too little traffic|fewer than min-requests/.test(text);
  const result = run.outputs.result ?? "none";
  return {
    ok: result !== "promoted" && final === "100" && !noTraffic,
    measured: `result ${result}; final ${final}${noTraffic ? "; judged as (too little) traffic" : ""}; says: ${errors(run).slice(0, 160)}`,
  };
}

interface Fault {
  /** Called before the run (to record what a fault will replay). */
  prepare?(mesh: Mesh): void;
  /** Called at `armOn` (default: stage 1's first read that counted canary requests). */
  apply(mesh: Mesh): void;
  armOn?: RegExp;
  inputs?: Record<string, string>;
}

/** Runs the canary healthy until the fault, then applies it and makes the canary fail 30 %. */
function turnsBadUnder(fault: Fault): () => Promise<Measured> {
  return () =>
    withMesh(TURNS_BAD, async (mesh) => {
      fault.prepare?.(mesh);
      const run = await runArmed(
        mesh,
        (m) => {
          fault.apply(m);
          m.traffic.setBehaviour("v2", { errorRate: 0.3 });
        },
        { inputs: { ...INPUTS, ...fault.inputs }, timeoutMs: 90_000, armOn: fault.armOn ?? CANARY_COUNTED },
      );
      return verdictOf(mesh, run);
    });
}

export const freshDataCases: FaultCase[] = [
  {
    id: "13a",
    title: "The canary's scrape target goes down mid-rollout (its series end) while it fails 30 %",
    must: MUST,
    run: turnsBadUnder({
      apply: (mesh) => {
        mesh.traffic.rewriteLine = (line) => (CANARY_LINE.test(line) ? null : line);
      },
    }),
  },
  {
    id: "13b",
    title: "A stuck exporter: the canary's counters are frozen, with fresh timestamps, while it fails 30 %",
    must: MUST,
    run: (() => {
      // Each canary series' line as last exposed; once stuck, every scrape repeats those.
      const last = new Map<string, string>();
      let stuck = false;
      const seriesOf = (line: string) => line.slice(0, line.lastIndexOf(" "));
      return turnsBadUnder({
        prepare: (mesh) => {
          mesh.traffic.rewriteLine = (line) => {
            if (!CANARY_LINE.test(line)) return line;
            if (!stuck) last.set(seriesOf(line), line);
            return last.get(seriesOf(line)) ?? null;
          };
        },
        apply: () => {
          stuck = true;
        },
      });
    })(),
  },
  {
    id: "13c",
    title: "A federation gap in the last stage: every series stops (both versions) while Prometheus answers",
    must: MUST,
    run: turnsBadUnder({
      apply: (mesh) => {
        mesh.traffic.rewriteLine = (line) => (line.startsWith("#") ? line : null);
      },
      armOn: /^\s+stage 2\/2 · /,
      // Enough requests to promote take longer than the first read of the last stage.
      inputs: { "min-requests": "20000", "max-stage-duration": "30s" },
    }),
  },
];
