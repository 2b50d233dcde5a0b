/**
 * Statistical quality of the judge, by seeded simulation: false rollbacks of healthy canaries and
 * the cost of catching bad ones, across configurations. Prints numbers; asserts nothing.
 *   node bench/analysis.ts [runs]
 */
import {
  REFERENCE as base,
  REFERENCE_SETTINGS as settings,
  simulateMany,
  waldAsn,
} from "../test/support/analysis-sim.ts";

const runs = Number(process.argv[2] ?? 2000);

const rows: Array<[string, Parameters<typeof simulateMany>[0]]> = [
  ["p1=5 %, healthy 0.5 %, interval 1s", { ...base, canaryErrorRate: 0.005 }],
  ["p1=5 %, bad 5 %, interval 1s", { ...base, canaryErrorRate: 0.05 }],
  ["p1=5 %, healthy 0.5 %, interval 15s", { ...base, intervalMs: 15_000, canaryErrorRate: 0.005 }],
  ["p1=5 %, bad 5 %, interval 15s", { ...base, intervalMs: 15_000, canaryErrorRate: 0.05 }],
  ["p1=5 %, bad 20 %, interval 15s", { ...base, intervalMs: 15_000, canaryErrorRate: 0.2 }],
  [
    "defaults (1 %), healthy 0.1 %",
    {
      ...base,
      intervalMs: 15_000,
      stableErrorRate: 0.001,
      canaryErrorRate: 0.001,
      settings: { ...settings, maxErrorRate: 0.01 },
    },
  ],
  [
    "defaults (1 %), healthy 0.5 %",
    { ...base, intervalMs: 15_000, canaryErrorRate: 0.005, settings: { ...settings, maxErrorRate: 0.01 } },
  ],
  [
    "defaults (1 %), bad 5 %, stable 0.1 %",
    {
      ...base,
      intervalMs: 15_000,
      stableErrorRate: 0.001,
      canaryErrorRate: 0.05,
      settings: { ...settings, maxErrorRate: 0.01 },
    },
  ],
];

console.log(
  `Wald SPRT ASN (p0 0.5 %, p1 5 %, α=β=0.05) at p=5 %: ${waldAsn(0.05, 0.005, 0.05, 0.05, 0.05, 50_000, 1).toFixed(1)} requests`,
);
console.log(
  "| configuration | promoted | rolled back | inconclusive | canary requests before fail | canary errors before fail | minutes |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const [name, config] of rows) {
  const t = performance.now();
  const s = simulateMany(config, runs, 42);
  const pct = (n: number) => `${((100 * n) / s.runs).toFixed(2)} %`;
  console.log(
    `| ${name} | ${pct(s.promoted)} | ${pct(s.failed)} | ${pct(s.inconclusive)} | ${Number.isNaN(s.meanCanaryRequestsBeforeFail) ? "—" : s.meanCanaryRequestsBeforeFail.toFixed(1)} | ${Number.isNaN(s.meanCanaryErrorsBeforeFail) ? "—" : s.meanCanaryErrorsBeforeFail.toFixed(2)} | ${s.meanMinutes.toFixed(1)} | ${((performance.now() - t) / 1000).toFixed(1)} s |`,
  );
}
