/**
 * Vitest global setup: before any test spawns `dist/index.js`, make dist/ what the sources build, so
 * no end-to-end test runs against a stale bundle after a change to src/ without `npm run bundle`.
 * dist/ is rebuilt in place (as `npm run bundle` would) and the run says so; CI checks the
 * committed dist/ separately, before the tests.
 *
 * A build takes 2–10 s on a loaded machine, so a stamp records which sources built which dist/: when
 * neither changed since, the setup costs one read of src/ and dist/ and no build.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { buildBundle, DIST, ROOT, staleFiles, writeBundle } from "../../scripts/bundle.ts";

/** Everything the bundle is built from, besides node_modules (which the lockfile pins). */
const INPUTS = ["src", "scripts/bundle.ts", "package.json", "package-lock.json", "tsconfig.json"];
const DIST_FILES = ["index.js", "index.js.map", "licenses.txt", "package.json"];
const STAMP = join(ROOT, "node_modules/.cache/istio-canary-action/bundle-stamp.json");

/** The files at `path` (relative to the root): the file itself, or every file beneath a folder. */
function filesUnder(path: string): string[] {
  const full = join(ROOT, path);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return [full];
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

function digest(paths: readonly string[]): string {
  const hash = createHash("sha256");
  for (const path of [...paths].sort()) {
    hash.update(`${relative(ROOT, path)}\0`);
    hash.update(existsSync(path) ? readFileSync(path) : "(missing)");
    hash.update("\0");
  }
  return hash.digest("hex");
}

interface Stamp {
  inputs: string;
  dist: string;
}

function readStamp(): Stamp | undefined {
  try {
    return JSON.parse(readFileSync(STAMP, "utf8")) as Stamp;
  } catch {
    return undefined;
  }
}

export default async function freshBundle(): Promise<void> {
  const inputs = digest(INPUTS.flatMap(filesUnder));
  const distDigest = () => digest(DIST_FILES.map((name) => join(DIST, name)));
  const stamp = readStamp();
  if (stamp?.inputs === inputs && stamp.dist === distDigest()) return;

  const files = await buildBundle();
  const stale = staleFiles(files);
  if (stale.length > 0) {
    writeBundle(files);
    console.warn(
      `dist/ was stale (${stale.join(", ")}); rebuilt from src/ for the tests that spawn dist/index.js. Commit it with the sources.`,
    );
  }
  mkdirSync(join(STAMP, ".."), { recursive: true });
  writeFileSync(STAMP, JSON.stringify({ inputs, dist: distDigest() } satisfies Stamp));
}
