/**
 * The layering of docs/architecture.md, read from the code's own imports (TypeScript's own
 * import scanner): every import in src/ runs down a layer or stays within its folder, and no files
 * import each other in a loop.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "../../src");

/** The layers from the top down; a file at src/'s root not named here is a shared leaf, the bottom layer. */
const LAYERS: readonly (readonly string[])[] = [
  ["index.ts"],
  ["main.ts"],
  ["action.ts", "action-post.ts"],
  ["action-ports.ts", "action-reporters.ts"],
  ["action-records.ts"],
  ["settings.ts"],
  ["report", "workloads", "checks"],
  ["mesh", "metrics", "inputs"],
  ["rollout"],
  ["analysis"],
];
const LEAVES = LAYERS.length;

/** The folder under src/ a file is in, or its own name for a file at src/'s root. */
function partOf(file: string): string {
  const [first = ""] = relative(SRC, file).split("/");
  return first;
}

function layerOf(part: string): number {
  const index = LAYERS.findIndex((layer) => layer.includes(part));
  return index === -1 ? LEAVES : index;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Each file's imports of other files of src/ (type-only imports too: they tie the layers as much). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const imported = ts
      .preProcessFile(readFileSync(file, "utf8"), true, false)
      .importedFiles.map((i) => i.fileName)
      .filter((name) => name.startsWith("."))
      .map((name) => resolve(dirname(file), name));
    graph.set(file, imported);
  }
  return graph;
}

/** The files on one loop of imports, or undefined when there is none (a depth-first search). */
function findLoop(graph: Map<string, string[]>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (file: string): string[] | undefined => {
    const at = path.indexOf(file);
    if (at !== -1) return [...path.slice(at), file];
    if (done.has(file)) return undefined;
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      const loop = visit(next);
      if (loop) return loop;
    }
    path.pop();
    done.add(file);
    return undefined;
  };
  for (const file of graph.keys()) {
    const loop = visit(file);
    if (loop) return loop;
  }
  return undefined;
}

const show = (file: string) => relative(SRC, file);

describe("the layers of src/", () => {
  const graph = importGraph();

  it("reads the imports (the scan finds the core's ports and the composition root's adapters)", () => {
    const action = graph.get(join(SRC, "action.ts")) ?? [];
    expect(action).toContain(join(SRC, "rollout/engine.ts"));
    expect(graph.get(join(SRC, "action-ports.ts"))).toContain(join(SRC, "mesh/router.ts"));
    expect(graph.get(join(SRC, "mesh/router.ts"))).toContain(join(SRC, "rollout/ports.ts"));
  });

  it("imports only downwards: a folder imports its own files and the layers below it", () => {
    const upward: string[] = [];
    for (const [file, imports] of graph) {
      const from = partOf(file);
      for (const target of imports) {
        const to = partOf(target);
        const down = layerOf(to) > layerOf(from);
        const withinLeaves = layerOf(from) === LEAVES && layerOf(to) === LEAVES;
        if (from !== to && !down && !withinLeaves) upward.push(`${show(file)} -> ${show(target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("has no loop of imports between files", () => {
    expect(findLoop(graph)?.map(show)).toBeUndefined();
  });
});
