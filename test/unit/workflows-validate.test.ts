/**
 * The workflows this repository ships (.github/workflows) and documents (the README's example), and
 * action.yml, are valid as GitHub reads them: GitHub's @actions/workflow-parser for workflows and
 * action.yml (its action schema knows `node24`), and actionlint over the workflows with
 * .github/actionlint.yaml (the self-hosted runners' label).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { actionErrors, actionlint, workflowErrors } from "../support/workflow-checkers.ts";
import { ROOT, readmeYaml } from "../support/workflows.ts";

const WORKFLOWS = ".github/workflows";
const shipped = readdirSync(join(ROOT, WORKFLOWS)).filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"));
const readmeExample = readmeYaml(readFileSync(join(ROOT, "README.md"), "utf8"), "Example workflow");
const workflowText = (file: string) => readFileSync(join(ROOT, WORKFLOWS, file), "utf8");

describe("workflows", () => {
  it.each(shipped)("%s has no errors for GitHub's workflow parser", async (file) => {
    expect(await workflowErrors(file, workflowText(file))).toEqual([]);
  });

  it("the README's example has no errors for GitHub's workflow parser", async () => {
    expect(await workflowErrors("README.md", readmeExample)).toEqual([]);
  });

  it.each(shipped)("%s has no actionlint findings", async (file) => {
    expect(await actionlint(`${WORKFLOWS}/${file}`, workflowText(file))).toEqual([]);
  });

  it("the README's example has no actionlint findings", async () => {
    // Linted under README.md's path, which exists: actionlint finds the repository's
    // .github/actionlint.yaml (the `in-cluster` label) from the file's location.
    expect(await actionlint("README.md", readmeExample)).toEqual([]);
  });

  it("both checks report a broken workflow", async () => {
    // What our wiring must not lose: the parser's errors (here `with:` on a `run:` step), and
    // actionlint's reading of action.yml through the file system (an input it does not declare).
    const runWith =
      "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo\n        with:\n          a: b\n";
    expect(await workflowErrors("broken.yml", runWith)).toEqual([expect.stringContaining("'with'")]);
    const deploy = workflowText("deploy.yml");
    const unknownInput = deploy.replace(/( +)command: status\n/, "$1command: status\n$1not-an-input: x\n");
    expect(unknownInput).not.toBe(deploy);
    const findings = await actionlint(`${WORKFLOWS}/deploy.yml`, unknownInput);
    expect(findings.map((f) => f.message)).toEqual([expect.stringContaining('"not-an-input"')]);
  });
});

describe("action.yml", () => {
  const text = readFileSync(join(ROOT, "action.yml"), "utf8");

  it("has no errors for GitHub's action schema, which knows node24", () => {
    expect(actionErrors(text)).toEqual([]);
    // The runtime is checked, not any string accepted: one the schema does not know is reported.
    const unknownRuntime = text.replace(/using: node\d+/, "using: node99");
    expect(actionErrors(unknownRuntime)).toEqual([expect.stringContaining("'node99'")]);
  });
});
