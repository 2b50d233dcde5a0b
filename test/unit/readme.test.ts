/** The README is the front door: its tables and commands must say what action.yml and CI do. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
import { INPUT_DEFAULTS } from "../../src/inputs/config.ts";
import { INPUT_NAMES } from "../../src/inputs/types.ts";

const root = join(import.meta.dirname, "../..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const contributing = readFileSync(join(root, "CONTRIBUTING.md"), "utf8");
const action = load(readFileSync(join(root, "action.yml"), "utf8")) as {
  inputs: Record<string, { description: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
};

/** Rows of the markdown table whose header starts with `| <first> |`. */
function table(first: string): string[][] {
  const lines = readme.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`| ${first} |`));
  expect(start, `README has a table headed '${first}'`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

const unquote = (cell: string): string => cell.replace(/^`(.*)`$/, "$1");

describe("README and action.yml", () => {
  it("list the same inputs with the same defaults", () => {
    const rows = table("input");
    expect(rows.map((r) => unquote(r[0] ?? ""))).toEqual(Object.keys(action.inputs));
    for (const row of rows) {
      const spec = action.inputs[unquote(row[0] ?? "")];
      const expected = spec?.default ? `\`${spec.default}\`` : spec?.required ? "required" : "—";
      expect(row[1], `default of ${row[0]}`).toBe(expected);
      expect(row[2]?.replace(/\\\|/g, "|")).toBe(spec?.description);
    }
  });

  it("list the same outputs", () => {
    expect(table("output").map((r) => unquote(r[0] ?? ""))).toEqual(Object.keys(action.outputs));
  });

  it("agree with the inputs the code reads and its defaults", () => {
    expect([...INPUT_NAMES].sort()).toEqual(Object.keys(action.inputs).sort());
    for (const [name, value] of Object.entries(INPUT_DEFAULTS)) {
      expect(action.inputs[name]?.default, `default of ${name}`).toBe(value);
    }
    for (const [name, spec] of Object.entries(action.inputs)) {
      if (spec.default && !spec.default.startsWith("${{")) {
        expect(INPUT_DEFAULTS[name as keyof typeof INPUT_DEFAULTS], `code default of ${name}`).toBe(
          spec.default,
        );
      }
    }
  });

  it("gives the set-up command that CI runs too", () => {
    const setup = /# set up and run the demo\n(.+)\n/.exec(readme)?.[1];
    expect(setup).toBe("bash scripts/setup.sh && npm run demo");
    expect(/# set up and run the demo\n(.+)\n/.exec(contributing)?.[1]).toBe(setup);
    const ci = readFileSync(join(root, ".ci/run"), "utf8");
    expect(ci.split("\n").map((l) => l.trim())).toContain("bash scripts/setup.sh");
  });

  it("gives the test command that CI runs", () => {
    const block = /# run the tests\n(.+)\n/.exec(readme)?.[1];
    expect(block).toBe("npm test");
    expect(/# run the tests\n(.+)\n/.exec(contributing)?.[1]).toBe(block);
    const ci = readFileSync(join(root, ".ci/run"), "utf8");
    expect(ci.split("\n").map((l) => l.trim())).toContain(block);
  });

  it("shows a user the action with every required input within its first 60 lines", () => {
    const lines = readme.split("\n");
    const first = lines.findIndex((l) => /^\s*(- )?uses: /.test(l));
    expect(first, "the first uses: line").toBeGreaterThanOrEqual(0);
    expect(first + 1, "the first uses: line").toBeLessThanOrEqual(60);
    const fence = lines.slice(0, first).lastIndexOf("```yaml");
    const end = lines.indexOf("```", first);
    const [step] = load(lines.slice(fence + 1, end).join("\n")) as Array<{
      uses: string;
      with: Record<string, unknown>;
    }>;
    expect(step?.uses).toMatch(/^[\w-]+\/istio-canary-action@v\d+$/);
    const required = Object.entries(action.inputs)
      .filter(([, spec]) => spec.required)
      .map(([name]) => name);
    // Inputs required in effect: the analysis needs Prometheus; a subset pair (or host pair) names the
    // versions; virtual-service (or http-route, so action.yml cannot mark either required) the object.
    for (const name of [...required, "virtual-service", "prometheus-url", "stable-subset", "canary-subset"])
      expect(Object.keys(step?.with ?? {}), name).toContain(name);
    for (const name of Object.keys(step?.with ?? {})) expect(Object.keys(action.inputs)).toContain(name);
  });

  it("links each section of its contents list, and the fault matrix in docs/faults.md", () => {
    const contents = readme.slice(
      readme.indexOf("\n## Contents\n"),
      readme.indexOf("\n## ", readme.indexOf("\n## Contents\n") + 1),
    );
    const anchors = [...contents.matchAll(/\]\(#([\w-]+)\)/g)].map((m) => m[1]);
    const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) =>
      (m[1] ?? "")
        .toLowerCase()
        .replace(/[^\w\s-]/g, "")
        .replace(/\s/g, "-"),
    );
    expect(anchors.length).toBeGreaterThan(5);
    for (const anchor of anchors) expect(headings, anchor).toContain(anchor);
    for (const section of ["quick-start-on-your-cluster", "inputs-and-outputs", "example-workflow"])
      expect(anchors).toContain(section);
    const faults = readme.slice(readme.indexOf("\n## What happens when things fail\n"));
    expect(faults).toMatch(/<!-- faults:start -->\n\d+ of \d+ cases hold .*\(docs\/faults\.md\)/);
    expect(readFileSync(join(root, "docs/faults.md"), "utf8")).toMatch(/^\| case \| what must hold \|/m);
  });
});
