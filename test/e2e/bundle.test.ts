/**
 * The bundle as the runner runs it: `node dist/index.js` with INPUT_* variables and the runner's
 * command files, from a folder with no node_modules (so a module the bundler failed to include would
 * fail to load); and dist/ as the bundle script builds it (scripts/bundle.ts).
 */
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { buildBundle, staleFiles, writeBundle } from "../../scripts/bundle.ts";
import { DIST_ENTRY, runAction } from "../support/action-runner.ts";
import { kubeconfigYaml } from "../support/kubeconfig.ts";

const isolated = mkdtempSync(join(tmpdir(), "bundle-only-"));
copyFileSync(DIST_ENTRY, join(isolated, "index.js"));
copyFileSync(join(DIST_ENTRY, "../package.json"), join(isolated, "package.json"));
afterAll(() => rmSync(isolated, { recursive: true, force: true }));

describe("dist/index.js", () => {
  it("is what action.yml runs as main and, whatever happened, as post", () => {
    const action = load(readFileSync(join(import.meta.dirname, "../../action.yml"), "utf8")) as {
      runs: { using: string; main: string; post: string; "post-if": string };
    };
    const root = join(import.meta.dirname, "../..");
    // @kubernetes/client-node 2.x in the bundle needs Node >= 22.19: node20 would fail to load it.
    expect(action.runs.using).toBe("node24");
    expect(join(root, action.runs.main)).toBe(DIST_ENTRY);
    expect(join(root, action.runs.post)).toBe(DIST_ENTRY);
    // The post step rolls back a cancelled or crashed run: it must run when main failed too.
    expect(action.runs["post-if"]).toBe("always()");
  });

  it("fails a missing virtual-service with an ::error:: line naming it, with no node_modules near", async () => {
    const run = await runAction({
      entry: join(isolated, "index.js"),
      cwd: isolated,
      inputs: { "stable-subset": "v1", "canary-subset": "v2", "prometheus-url": "http://127.0.0.1:9" },
    });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).not.toMatch(/Cannot find (module|package)|ERR_MODULE_NOT_FOUND/);
    const errors = run.stdout.split("\n").filter((l) => l.startsWith("::error::"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("Input 'virtual-service': is required");
    // One bundle serves main and post: main records that the post step follows.
    expect(run.state.isPost).toBe("true");
  });

  it("masks secrets before it logs anything", async () => {
    const token = "k8s-token-0f3c9d2e7a";
    const run = await runAction({
      inputs: {
        "virtual-service": "Bad_Name",
        "stable-subset": "v1",
        "canary-subset": "v2",
        "prometheus-url": "http://127.0.0.1:9",
        "prometheus-headers": "Authorization: Bearer prom-secret-77",
        kubeconfig: kubeconfigYaml({ server: "https://127.0.0.1:9", token }),
        "github-token": "ghs_secret_github_token",
      },
    });
    const lines = run.stdout.split("\n").filter(Boolean);
    const firstOther = lines.findIndex((l) => !l.startsWith("::add-mask::"));
    const masks = lines.slice(0, firstOther).map((l) => l.slice("::add-mask::".length));
    expect(masks).toEqual(
      expect.arrayContaining([token, "Bearer prom-secret-77", "ghs_secret_github_token"]),
    );
    // Outside the mask commands, no secret appears anywhere.
    const rest = lines.slice(firstOther).join("\n") + run.stderr;
    for (const secret of [token, "prom-secret-77", "ghs_secret_github_token"])
      expect(rest).not.toContain(secret);
  });

  it("has no unresolved modules in the bundle", () => {
    const code = readFileSync(DIST_ENTRY, "utf8");
    // A module the bundler could not resolve stays an import of its bare name.
    const spec = `["']([@a-z][\\w./@-]*)["']`;
    const pattern = new RegExp(`\\bimport\\(${spec}\\)|\\bfrom\\s*${spec}|\\brequire\\(${spec}\\)`, "g");
    const modules = [...code.matchAll(pattern)].map((m) => m[1] ?? m[2] ?? m[3] ?? "");
    expect(modules.length).toBeGreaterThan(0);
    const nonBuiltin = [...new Set(modules.filter((s) => !isBuiltin(s)))];
    expect(nonBuiltin).toEqual([]);
  });

  it("is tree-shaken to at most 3,000,000 bytes, with a slim source map of src/ and the licences", () => {
    expect(statSync(DIST_ENTRY).size).toBeLessThanOrEqual(3_000_000);
    const map = JSON.parse(readFileSync(`${DIST_ENTRY}.map`, "utf8")) as {
      sources: string[];
      sourcesContent?: unknown;
    };
    // Node maps a crash's stack with the mappings and file names alone; every `uses:` downloads dist/.
    expect(map.sourcesContent).toBeUndefined();
    expect(map.sources).toContain("../src/main.ts");
    expect(map.sources.filter((s) => !s.startsWith("../"))).toEqual([]);
    const licenses = readFileSync(join(DIST_ENTRY, "../licenses.txt"), "utf8");
    const manifest = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    // ncc's layout: each package's name, its licence id and its licence text, a blank line between.
    for (const name of Object.keys(manifest.dependencies))
      expect(licenses.startsWith(`${name}\n`) || licenses.includes(`\n\n${name}\n`), name).toBe(true);
  });

  it("is byte for byte what the bundle script builds from these sources", async () => {
    // The global setup (test/support/fresh-bundle.ts) rebuilt dist/ if it was stale; a second
    // build must match it, as CI's freshness check and a build in another checkout need. A build
    // takes about 2 s on an idle machine, 36 s was seen at a load of 25 on 2 cores.
    const files = await buildBundle();
    expect(staleFiles(files)).toEqual([]);
    // What the global setup relies on: a changed or missing file is named, and rewritten whole.
    const copy = mkdtempSync(join(tmpdir(), "dist-copy-"));
    try {
      expect(staleFiles(files, copy).sort()).toEqual([...files.keys()].sort());
      writeBundle(files, copy);
      writeFileSync(join(copy, "index.js"), "// stale\n", { flag: "a" });
      expect(staleFiles(files, copy)).toEqual(["index.js"]);
      writeBundle(files, copy);
      expect(staleFiles(files, copy)).toEqual([]);
      expect(readdirSync(copy).sort()).toEqual([...files.keys()].sort());
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }, 120_000);
});
