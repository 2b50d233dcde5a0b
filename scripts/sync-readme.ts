/**
 * Rewrites the README's inputs and outputs tables from action.yml (between the
 * `<!-- inputs:start -->` / `<!-- inputs:end -->` markers). A test fails when they disagree.
 *   npm run readme
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";

const root = join(import.meta.dirname, "..");
const action = load(readFileSync(join(root, "action.yml"), "utf8")) as {
  inputs: Record<string, { description: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
};
const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
const rows = [
  "| input | default | description |",
  "|---|---|---|",
  ...Object.entries(action.inputs).map(([name, spec]) => {
    const value = spec.default ? `\`${spec.default}\`` : spec.required ? "required" : "—";
    return `| \`${name}\` | ${value} | ${cell(spec.description)} |`;
  }),
  "",
  "| output | description |",
  "|---|---|",
  ...Object.entries(action.outputs).map(([name, spec]) => `| \`${name}\` | ${cell(spec.description)} |`),
];
const readmePath = join(root, "README.md");
const readme = readFileSync(readmePath, "utf8");
const start = "<!-- inputs:start -->";
const end = "<!-- inputs:end -->";
const before = readme.slice(0, readme.indexOf(start) + start.length);
const after = readme.slice(readme.indexOf(end));
if (!readme.includes(start) || !readme.includes(end)) throw new Error("README.md has no inputs markers");
writeFileSync(readmePath, `${before}\n${rows.join("\n")}\n${after}`);
console.log(
  `README.md: ${Object.keys(action.inputs).length} inputs, ${Object.keys(action.outputs).length} outputs`,
);
