import { LastDecision } from "./ports.ts";
import { runOurs } from "./rules/ours.ts";
import { loadScenario } from "./scenario.ts";

const file = process.argv[2] as string;
const n = Number(process.argv[3] ?? 200);
let last: { type: string; verdict?: { rule?: string; reason?: string }; weight?: number } | undefined;
const trail: string[] = [];
const orig = LastDecision.prototype.emit;
LastDecision.prototype.emit = function (e) {
  const ev = e as unknown as {
    type: string;
    at: number | Date;
    verdict?: { rule?: string; reason?: string };
    weight?: number;
  };
  if (ev.type === "analysis") {
    const t =
      ((ev.at instanceof Date ? ev.at.getTime() : Number(ev.at)) - Date.UTC(2026, 10, 26, 12, 0, 0)) / 1000;
    trail.push(`${t}s w${ev.weight} ${ev.verdict?.rule}`);
  }
  if (ev.type === "stage-end") last = ev;
  orig.call(this, e);
};
const sc = loadScenario(file);
const rules: Record<string, number> = {};
for (let seed = 1; seed <= n; seed++) {
  trail.length = 0;
  const out = await runOurs(sc, seed);
  if (out.result === "rolled-back") {
    const rule = last?.verdict?.rule ?? "?";
    rules[rule] = (rules[rule] ?? 0) + 1;
    console.log(seed, rule, (last?.verdict?.reason ?? "").slice(0, 200));
    console.log("   ", trail.slice(-8).join(" | "));
  }
}
console.log(rules);
