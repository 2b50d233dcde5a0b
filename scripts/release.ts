/**
 * Tags a release of the action, after actions/typescript-action's script/release: checks the tree,
 * rebuilds and refuses a stale dist/, creates the annotated tag vX.Y.Z and moves the major tag vX
 * to it, so users pinned to `@vX` get the release. Works offline; pushes only with --push.
 *   npm run release -- 1.2.3 [--push]
 * Run from the repository to release (the current directory's git repository).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

type Version = readonly [major: number, minor: number, patch: number];

const VERSION_PATTERN = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

/** Plain X.Y.Z (no leading zeros, no pre-release): the shape GitHub's Marketplace tags take. */
function parseVersion(text: string): Version | undefined {
  const match = VERSION_PATTERN.exec(text);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

function compareVersions(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** The highest vX.Y.Z among the tags; major tags (v1) and other tags are ignored. */
function latestReleased(tags: readonly string[]): Version | undefined {
  let latest: Version | undefined;
  for (const tag of tags) {
    const version = tag.startsWith("v") ? parseVersion(tag.slice(1)) : undefined;
    if (version && (!latest || compareVersions(version, latest) > 0)) latest = version;
  }
  return latest;
}

/** Keep a Changelog's heading, `## [1.2.3] - 2026-11-27` (brackets optional). */
function hasChangelogSection(changelog: string, version: string): boolean {
  const escaped = version.replace(/\./g, "\\.");
  return new RegExp(`^##\\s+\\[?${escaped}\\]?(\\s|$)`, "m").test(changelog);
}

class Refusal extends Error {}

function git(...args: string[]): string {
  const result = spawnSync("git", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Refusal(`git ${args.join(" ")} failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

function runNpmScript(name: string): void {
  console.log(`release: npm run ${name}`);
  const result = spawnSync("npm", ["run", name], { stdio: "inherit" });
  if (result.status !== 0)
    throw new Refusal(`npm run ${name} failed (exit ${result.status ?? result.signal})`);
}

function release(argv: readonly string[]): void {
  const push = argv.includes("--push");
  const positional = argv.filter((arg) => !arg.startsWith("--"));
  const unknown = argv.filter((arg) => arg.startsWith("--") && arg !== "--push");
  if (unknown.length > 0)
    throw new Refusal(`unknown option ${unknown.join(" ")}; usage: release X.Y.Z [--push]`);
  const text = positional[0];
  if (positional.length !== 1 || text === undefined) throw new Refusal("usage: release X.Y.Z [--push]");
  const version = parseVersion(text);
  if (!version) {
    throw new Refusal(
      `"${text}" is not a version: expected X.Y.Z such as 1.0.0 (no leading "v", no leading zeros, no pre-release)`,
    );
  }

  const root = git("rev-parse", "--show-toplevel");
  const branch = git("rev-parse", "--abbrev-ref", "HEAD");
  if (branch !== "main") throw new Refusal(`releases are tagged on main; this is "${branch}"`);
  const dirty = git("status", "--porcelain");
  if (dirty) throw new Refusal(`the working tree has changes; commit or stash them first:\n${dirty}`);

  const latest = latestReleased(git("tag", "--list", "v*").split("\n"));
  if (latest && compareVersions(version, latest) <= 0) {
    throw new Refusal(`${text} is not greater than the latest release v${latest.join(".")}`);
  }
  const changelogPath = join(root, "CHANGELOG.md");
  if (!existsSync(changelogPath) || !hasChangelogSection(readFileSync(changelogPath, "utf8"), text)) {
    throw new Refusal(`CHANGELOG.md has no section "## [${text}] - <date>"; write it and commit it first`);
  }

  // package.json's version is what `npm` and the bundle's licence file report: it names the release.
  const packageVersion = (
    JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string }
  ).version;
  if (packageVersion !== text) {
    throw new Refusal(
      `package.json's version is ${packageVersion ?? "missing"}; run \`npm version ${text} --no-git-tag-version\` and commit it first`,
    );
  }

  // The action runs dist/ as committed: the tag must carry a bundle built from the tagged source.
  for (const script of ["build", "lint", "bundle"]) runNpmScript(script);
  const staleDist = git("status", "--porcelain", "--", "dist");
  if (staleDist) {
    throw new Refusal(
      `dist/ differs from what is committed after npm run bundle; commit it first:\n${staleDist}`,
    );
  }

  const tag = `v${text}`;
  const majorTag = `v${version[0]}`;
  git("tag", "--annotate", tag, "--message", `${tag} release`);
  // Force: the major tag moves with every release of that major, as GitHub's guidance for actions says.
  git("tag", "--force", "--annotate", majorTag, "--message", `${majorTag} at ${tag}`, `${tag}^{commit}`);
  const head = git("rev-parse", "--short", "HEAD");
  console.log(`release: tagged ${tag} at ${head} and moved ${majorTag} to it`);

  const pushCommands = [
    ["git", "push", "origin", `refs/tags/${tag}`],
    ["git", "push", "--force", "origin", `refs/tags/${majorTag}`],
  ];
  if (push) {
    for (const command of pushCommands) git(...command.slice(1));
    console.log(`release: pushed ${tag} and ${majorTag}`);
  } else {
    console.log("release: to publish, run:");
    for (const command of pushCommands) console.log(`  ${command.join(" ")}`);
  }
  console.log(
    `then publish a GitHub release from ${tag} with its CHANGELOG.md section (the Marketplace lists releases)`,
  );
}

try {
  release(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof Refusal)) throw error;
  console.error(`release: refused: ${error.message}`);
  process.exitCode = 1;
}
