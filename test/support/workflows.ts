/**
 * Reading GitHub workflow files the way the runner would for the questions our tests ask: which
 * job a workflow_dispatch choice runs, which concurrency group holds it, what the action is given.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";

export const ROOT = join(import.meta.dirname, "..", "..");

export interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, string | number | boolean>;
  env?: Record<string, string>;
}
export type Concurrency = string | { group: string; "cancel-in-progress"?: boolean | string };
export interface Job {
  if?: string;
  needs?: string | string[];
  environment?: string | { name: string };
  concurrency?: Concurrency;
  steps: Step[];
}
export interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string> | string;
  concurrency?: Concurrency;
  jobs: Record<string, Job>;
}

export function readWorkflow(file: string): { text: string; workflow: Workflow } {
  const text = readFileSync(join(ROOT, ".github/workflows", file), "utf8");
  return { text, workflow: load(text) as Workflow };
}

/** The first ```yaml block after a README heading. */
export function readmeYaml(readme: string, heading: string): string {
  const at = readme.indexOf(`\n## ${heading}\n`);
  if (at < 0) throw new Error(`README has no section '${heading}'`);
  const block = /```yaml\n([\s\S]*?)\n```/.exec(readme.slice(at))?.[1];
  if (!block) throw new Error(`README section '${heading}' has no yaml block`);
  return block;
}

/** Steps that run this action: the repository's own (`./`) or its published name. */
export const isOurAction = (step: Step): boolean =>
  step.uses === "./" || /(^|\/)istio-canary-action@/.test(step.uses ?? "");

/** The concurrency groups a job waits in: the workflow's and its own. */
export function groupsOf(workflow: Workflow, job: Job): string[] {
  const group = (c: Concurrency | undefined) =>
    c === undefined ? [] : [typeof c === "string" ? c : c.group];
  // GitHub compares group names case-insensitively.
  return [...group(workflow.concurrency), ...group(job.concurrency)].map((g) => g.toLowerCase());
}

const TERM = /^\s*([\w.-]+)\s*(==|!=)\s*'([^']*)'\s*$/;

/**
 * Evaluates a job's `if:` written as `a == 'x' && b != 'y'` against known values. Anything else
 * throws: the tests need to know which job runs, so the examples keep their conditions this plain.
 */
export function evaluateIf(condition: string | undefined, values: Record<string, string>): boolean {
  if (condition === undefined) return true;
  const bare = condition.replace(/^\$\{\{\s*([\s\S]*?)\s*\}\}$/, "$1");
  return bare.split("&&").every((term) => {
    const m = TERM.exec(term);
    if (!m) throw new Error(`cannot evaluate '${term.trim()}' of if: ${condition}`);
    const [, name, op, literal] = m as unknown as [string, string, string, string];
    if (!(name in values)) throw new Error(`no value for ${name} in if: ${condition}`);
    return (values[name] === literal) === (op === "==");
  });
}

/** A `with:` value as the runner would pass it, given the workflow_dispatch inputs. */
export function resolveInputs(value: unknown, inputs: Record<string, string>): string {
  return String(value).replace(/\$\{\{\s*inputs\.([\w-]+)\s*\}\}/g, (_, name: string) => inputs[name] ?? "");
}

/** Every `${{ … }}` expression in a value. */
export const expressionsIn = (value: unknown): string[] =>
  [...String(value).matchAll(/\$\{\{\s*([\s\S]*?)\s*\}\}/g)].map((m) => m[1] as string);

/** The outputs of step `id` that a job reads (`steps.<id>.outputs.<name>`), anywhere in its text. */
export function outputsRead(job: Job, id: string): string[] {
  const text = JSON.stringify(job);
  const pattern = new RegExp(`steps\\.${id}\\.outputs\\.([\\w-]+)`, "g");
  return [...new Set([...text.matchAll(pattern)].map((m) => m[1] as string))];
}

/**
 * The current major of each action the workflows use; each runs on node24 (the runners' runtime).
 * actions/checkout: v7.0.0 (June 2026) blocks checking out a fork's pull request under
 * pull_request_target and workflow_run; node24 since v5.0.0 (actions/checkout#2248); v7.0.1's
 * action.yml says `using: node24`. actions/setup-node: v7.0.0 migrated to ESM; node24 since
 * v5.0.0 (actions/setup-node#1325). Adding an action means checking its releases and action.yml.
 */
export const NODE24_MAJORS: Record<string, number> = { "actions/checkout": 7, "actions/setup-node": 7 };

/** What names the workload the action acts on: the same in every step and workflow. */
export const TARGET_INPUTS = [
  "virtual-service",
  "namespace",
  "stable-subset",
  "canary-subset",
  "stable-host",
  "canary-host",
  "routes",
  "stable-deployment",
  "canary-deployment",
  "context",
];

export const without = (values: Step["with"], ...names: string[]) =>
  Object.fromEntries(Object.entries(values ?? {}).filter(([k]) => !names.includes(k)));
export const kubectlLines = (job: Job) =>
  job.steps.flatMap((s) => (s.run ?? "").split("\n")).filter((l) => /\bkubectl\b/.test(l));
export const targetOf = (step: Step) =>
  Object.fromEntries(Object.entries(step.with ?? {}).filter(([k]) => TARGET_INPUTS.includes(k)));

/** The inputs of deploy.yml's `command: status` step, with the secret it reads. */
export function deployGuardInputs(kubeconfig: string): Record<string, string> {
  const steps = Object.values(readWorkflow("deploy.yml").workflow.jobs).flatMap((j) => j.steps);
  const status = steps.find((s) => isOurAction(s) && s.with?.command === "status") as Step;
  return Object.fromEntries(
    Object.entries(status.with ?? {}).map(([k, v]) => [
      k,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the workflow's own expression text, replaced literally.
      String(v).replace("${{ secrets.KUBECONFIG }}", kubeconfig),
    ]),
  );
}
