/**
 * Builds dist/: `dist/index.js`, the one ESM file that action.yml runs as both `main` and `post`;
 * its source map `dist/index.js.map` (mappings and file names only, no `sourcesContent`: Node needs
 * no more to map a crash's stack to src/, and every `uses:` downloads dist/); `dist/licenses.txt`,
 * the licences of the packages the bundle includes; and `dist/package.json`, which tells Node the
 * file is ESM.
 *
 * Rolldown rather than ncc: ncc does not tree-shake, and @kubernetes/client-node's generated models
 * made dist/index.js 5.6 MB; tree-shaken it is 2.5 MB. Rolldown rather than rollup (which GitHub's
 * typescript-action template uses): the same plugin API (rollup-plugin-license runs on it
 * unchanged) with TypeScript, CommonJS, JSON and minification built in, and a build in about 2 s
 * instead of rollup's 30 s, so the test run can rebuild the bundle before it spawns it. The output
 * depends only on the sources and the lockfile: built twice, or in another checkout, dist/ is
 * byte-for-byte the same (CI checks the committed dist/ that way).
 *
 *   node scripts/bundle.ts           rebuild dist/
 *   node scripts/bundle.ts --check   exit 1, naming the files, when dist/ is not what the sources build
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { rolldown } from "rolldown";
import license from "rollup-plugin-license";

export const ROOT = resolve(import.meta.dirname, "..");
export const DIST = join(ROOT, "dist");
const ENTRY = join(ROOT, "src/index.ts");

/** dist/'s files as the sources build them: file name → content. */
export type BundleFiles = Map<string, string>;

interface LicensedPackage {
  readonly name: string | null;
  readonly license: string | null;
  readonly licenseText: string | null;
}

/** ncc's layout, kept so the file reads as before: name, licence id, licence text; blank line between. */
function licensesText(packages: readonly LicensedPackage[]): string {
  return `${[...packages]
    .filter((p) => p.name)
    .sort((a, b) => (a.name ?? "").localeCompare(b.name ?? ""))
    .map((p) => [p.name, p.license ?? "UNKNOWN", p.licenseText?.trim()].filter(Boolean).join("\n"))
    .join("\n\n")}\n`;
}

/** Bundles src/index.ts in memory; nothing is written. */
export async function buildBundle(): Promise<BundleFiles> {
  let licenses = "";
  const build = await rolldown({
    input: ENTRY,
    cwd: ROOT,
    platform: "node",
    logLevel: "silent",
    plugins: [
      // sourcemap: false: the plugin adds no banner, so its (slow, whole-chunk) identity map is not needed.
      license({
        sourcemap: false,
        thirdParty: (packages) => {
          licenses = licensesText(packages);
        },
      }),
    ],
  });
  try {
    const { output } = await build.generate({
      format: "esm",
      entryFileNames: "index.js",
      codeSplitting: false,
      minify: true,
      sourcemap: true,
      sourcemapExcludeSources: true,
    });
    const files: BundleFiles = new Map();
    for (const item of output)
      files.set(item.fileName, item.type === "chunk" ? item.code : String(item.source));
    if (!files.has("index.js") || !files.has("index.js.map") || files.size !== 2)
      throw new Error(`the bundle should be index.js and its map, got: ${[...files.keys()].join(", ")}`);
    files.set("licenses.txt", licenses);
    files.set("package.json", `${JSON.stringify({ type: "module" }, null, 2)}\n`);
    return files;
  } finally {
    await build.close();
  }
}

/** The files of dist/ that differ from (or are missing beside) what the sources build. */
export function staleFiles(files: BundleFiles, dir = DIST): string[] {
  return [...files]
    .filter(([name, content]) => {
      const path = join(dir, name);
      return !existsSync(path) || readFileSync(path, "utf8") !== content;
    })
    .map(([name]) => name);
}

/** Writes each file whole (write then rename), so a test spawning dist/index.js never reads half a file. */
export function writeBundle(files: BundleFiles, dir = DIST): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of files) {
    const partial = join(dir, `.${name}.${process.pid}.partial`);
    writeFileSync(partial, content);
    renameSync(partial, join(dir, name));
  }
}

if (import.meta.main) {
  const files = await buildBundle();
  if (process.argv.includes("--check")) {
    const stale = staleFiles(files);
    if (stale.length > 0) {
      console.error(`dist/ is stale (${stale.join(", ")}): run 'npm run bundle' and commit dist/`);
      process.exit(1);
    }
  } else {
    writeBundle(files);
    for (const [name, content] of files)
      console.log(`dist/${name}  ${Buffer.byteLength(content).toLocaleString("en-US")} bytes`);
  }
}
