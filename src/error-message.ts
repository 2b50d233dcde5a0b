/**
 * Error text for people: one line for the step's annotation, the stack for the debug log. The
 * stack's frames in the minified bundle are mapped back to src/ files and lines through
 * dist/index.js.map with Node's own source-map reader: `process.setSourceMapsEnabled(true)` (or
 * `--enable-source-maps`) only applies to modules loaded after it, and the bundle is one module
 * already loaded by then, while `runs.main` cannot pass Node flags.
 */
import { existsSync, readFileSync } from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** An error's message for people, whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The stack trace (with its causes) for the debug log; the step's error line stays one line. */
export function errorStack(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause === undefined ? "" : `\ncaused by: ${errorStack(error.cause)}`;
  return `${mapStack(error.stack ?? error.message, bundleSourceMap())}${cause}`;
}

interface LoadedMap {
  /** The bundle's path and URL as frames name it. */
  file: string;
  map: SourceMap;
}

let loaded: LoadedMap | null | undefined;
/**
 * The source map beside the script Node was started with (`node dist/index.js`, as the runner
 * does), read once. Not `import.meta.url`: the bundler replaces it with the source file's URL.
 */
function bundleSourceMap(): LoadedMap | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  try {
    if (!process.argv[1]) return loaded;
    const file = resolve(process.argv[1]);
    const mapPath = `${file}.map`;
    if (existsSync(mapPath))
      loaded = { file, map: new SourceMap(JSON.parse(readFileSync(mapPath, "utf8")) as SourceMapPayload) };
  } catch {
    // A stack without mapping is still a stack: never fail the report of a failure.
  }
  return loaded;
}

/**
 * Rewrites each `file:///…/index.js:line:column` (or plain path) frame of the bundle into the
 * original file, line and column the map names; other frames stay as they are.
 */
export function mapStack(stack: string, bundle: LoadedMap | null): string {
  if (!bundle) return stack;
  const base = dirname(bundle.file);
  return stack.replace(
    /(file:\/\/)?(\/[^\s():]+):(\d+):(\d+)/g,
    (frame, _scheme, path: string, line, column) => {
      if (path !== bundle.file) return frame;
      const entry = bundle.map.findEntry(Number(line) - 1, Number(column) - 1);
      if (!("originalSource" in entry) || entry.originalSource === undefined) return frame;
      const source = entry.originalSource.startsWith("file://")
        ? fileURLToPath(entry.originalSource)
        : resolve(base, entry.originalSource);
      return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
    },
  );
}
