/**
 * Runs the bundled action the way the GitHub runner does: `node dist/index.js` with every input as
 * an `INPUT_*` variable and the runner's command files (GITHUB_OUTPUT, GITHUB_STATE,
 * GITHUB_STEP_SUMMARY). The post step is a second process that gets main's saved state back as
 * `STATE_*` variables, as the runner passes it.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { load } from "js-yaml";

export const DIST_ENTRY = resolve(import.meta.dirname, "../../dist/index.js");
const ACTION_YML = resolve(import.meta.dirname, "../../action.yml");
const COMPILE_CACHE = join(tmpdir(), "istio-canary-action-compile-cache");

/**
 * Every `action.yml` input with its default, as GitHub's runner passes them: it sets INPUT_<NAME>
 * for every declared input, to the workflow's value or else the default (an expression such as
 * `${{ github.token }}` evaluated, here from `expressions`), so the action cannot tell a default
 * from a value the workflow wrote. Spread the workflow's own inputs over these.
 */
export function actionDefaults(expressions: Record<string, string> = {}): Record<string, string> {
  const action = load(readFileSync(ACTION_YML, "utf8")) as {
    inputs: Record<string, { default?: string | number | boolean }>;
  };
  return Object.fromEntries(
    Object.entries(action.inputs).map(([name, input]) => [
      name,
      String(input.default ?? "").replace(
        /\$\{\{\s*([\w.]+)\s*\}\}/g,
        (_, e: string) => expressions[e] ?? "",
      ),
    ]),
  );
}

export interface ActionRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
}

export interface ActionRunOptions {
  inputs: Record<string, string>;
  env?: Record<string, string>;
  state?: Record<string, string>;
  entry?: string;
  cwd?: string;
  /** Called with the child once it is running, to send it signals mid-step. */
  onSpawn?: (child: import("node:child_process").ChildProcess) => void;
  timeoutMs?: number;
  onStdout?: (chunk: string) => void;
}

/** Parses a runner command file (`name<<delimiter\nvalue\ndelimiter` blocks, or `name=value`). */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc as unknown as [string, string, string];
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i] as string);
      out[name] = value.join("\n");
    } else if (line.includes("=")) {
      out[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
    }
  }
  return out;
}

export async function runAction(options: ActionRunOptions): Promise<ActionRun> {
  const dir = mkdtempSync(join(tmpdir(), "action-run-"));
  const files = { output: join(dir, "output"), state: join(dir, "state"), summary: join(dir, "summary") };
  for (const f of Object.values(files)) writeFileSync(f, "");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: dir,
    RUNNER_TEMP: dir,
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_ACTIONS: "true",
    // V8's compiled code for dist/index.js, shared by the suite's ~500 spawns (keyed by the file's
    // contents and Node's version): compiling the 2.6 MB bundle is most of a start's CPU, which on
    // two cores the suite's timing-bound cases compete for. It changes no behaviour of the action.
    NODE_COMPILE_CACHE: COMPILE_CACHE,
    ...options.env,
  };
  for (const [name, value] of Object.entries(options.inputs)) {
    env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] = value;
  }
  for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;

  const child = spawn(process.execPath, [options.entry ?? DIST_ENTRY], {
    cwd: options.cwd ?? dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  options.onSpawn?.(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    options.onStdout?.(d);
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) =>
    child.on("close", (code, sig) => done([code, sig])),
  );
  clearTimeout(timer);
  const result: ActionRun = {
    exitCode,
    signal,
    stdout,
    stderr,
    outputs: parseCommandFile(readFileSync(files.output, "utf8")),
    state: parseCommandFile(readFileSync(files.state, "utf8")),
    summary: readFileSync(files.summary, "utf8"),
  };
  rmSync(dir, { recursive: true, force: true });
  return result;
}
