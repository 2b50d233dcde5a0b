/**
 * The false-rollback budget shared by every test that can roll a canary back (issue 23): the
 * built-in harm tests (two per signal: the limit and the ratio to stable) and each custom counter
 * check in `mode: fail` (its limit, and its ratio when `max-ratio-to-stable` is set). A union bound
 * (Bonferroni): each test gets an equal share, so the chance that any of them rolls back a canary
 * within every limit is at most the budget. Report-only checks roll nothing back and take no share
 * (they are judged at the same per-test level); threshold checks carry no guarantee and take none.
 */
import type { CustomCheckDefinition } from "../inputs/types.ts";

/** Harm tests a check adds to the budget's split. */
function checkTests(check: CustomCheckDefinition): number {
  if (check.kind !== "counter" || check.mode !== "fail") return 0;
  return check.maxRatioToStable !== undefined ? 2 : 1;
}

interface BudgetSplit {
  /** α of each test, the built-in ones included. */
  perTest: number;
  /** What the built-in judge gets as its false-rollback budget (it splits it over its own tests). */
  builtIn: number;
}

export function splitBudget(
  budget: number,
  latencyJudged: boolean,
  checks: readonly CustomCheckDefinition[],
): BudgetSplit {
  const builtInTests = 2 * (latencyJudged ? 2 : 1);
  const tests = builtInTests + checks.reduce((sum, check) => sum + checkTests(check), 0);
  const perTest = budget / tests;
  return { perTest, builtIn: perTest * builtInTests };
}
