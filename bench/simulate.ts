/** Runs one rule over a range of seeded rollouts of a scenario: the unit of work of the bench. */
import type { RunOutcome } from "./outcome.ts";
import { runArgo } from "./rules/argo.ts";
import { runFlagger } from "./rules/flagger.ts";
import { runOurs } from "./rules/ours.ts";
import type { Rule, Scenario } from "./scenario.ts";

/** Run `index` of a scenario gets the same seed under every rule: the same bursts, scrape phase and draws. */
export function seedOf(index: number): number {
  return (Math.imul(index + 1, 0x9e3779b1) ^ 0x85ebca6b) >>> 0;
}

export async function runOne(rule: Rule, scenario: Scenario, seed: number): Promise<RunOutcome> {
  switch (rule) {
    case "ours":
      return runOurs(scenario, seed);
    case "flagger":
      return runFlagger(scenario, seed);
    case "flagger-tutorial":
      return runFlagger(scenario, seed, true);
    case "argo":
      return runArgo(scenario, seed);
    case "argo-service":
      return runArgo(scenario, seed, true);
  }
}

export async function runRange(
  rule: Rule,
  scenario: Scenario,
  from: number,
  to: number,
): Promise<RunOutcome[]> {
  const outcomes: RunOutcome[] = [];
  for (let index = from; index < to; index++) outcomes.push(await runOne(rule, scenario, seedOf(index)));
  return outcomes;
}
