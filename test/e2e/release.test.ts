/**
 * scripts/release.ts run in scratch clones of this repository. The build steps go to a fake `npm`
 * on PATH rather than to an env switch in the script: the script keeps no test-only path, and the
 * fake records that build, lint and bundle ran, in order, and can make the bundle stale or lint
 * fail. The script under test is the working tree's; the clone only provides the repository.
 */
import { spawnSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repoRoot = join(import.meta.dirname, "../..");
const releaseScript = join(repoRoot, "scripts", "release.ts");
const CHANGELOG = `# Changelog

## [Unreleased]

## [1.0.1] - 2026-12-01

### Fixed

- A fix.

## [1.0.0] - 2026-11-27

### Added

- The action.
`;

// Logs each call; `run bundle` dirties dist/ and `run lint` fails when the test asks.
const FAKE_NPM = `#!/bin/sh
echo "$*" >> "$FAKE_NPM_LOG"
if [ "$2" = bundle ] && [ -n "$FAKE_BUNDLE_CHANGES" ]; then echo "// rebuilt" >> dist/index.js; fi
if [ "$2" = lint ] && [ -n "$FAKE_LINT_FAILS" ]; then exit 1; fi
exit 0
`;

let scratch: string;
let template: string;
let fakeBin: string;

function git(cwd: string, ...args: string[]): string {
  const result = spawnSync("git", args, { cwd, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`git ${args.join(" ")}: ${result.stderr}`);
  return result.stdout.trim();
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "release-test-"));
  fakeBin = join(scratch, "bin");
  mkdirSync(fakeBin);
  writeFileSync(join(fakeBin, "npm"), FAKE_NPM);
  chmodSync(join(fakeBin, "npm"), 0o755);
  // One shallow clone of the committed repository, on main, with a known CHANGELOG; each test
  // clones it again (a cheap local clone) so tags and changes never leak between tests.
  template = join(scratch, "template");
  git(scratch, "clone", "--quiet", "--depth", "1", `file://${repoRoot}`, template);
  git(template, "checkout", "--quiet", "-B", "main");
  writeFileSync(join(template, "CHANGELOG.md"), CHANGELOG);
  setPackageVersion(template, "1.0.0");
  git(template, "add", "CHANGELOG.md", "package.json");
  git(
    template,
    "-c",
    "user.name=Test",
    "-c",
    "user.email=test@example.com",
    "commit",
    "--quiet",
    "-m",
    "changelog",
  );
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What `npm version X --no-git-tag-version` changes that the script reads. */
function setPackageVersion(dir: string, version: string): void {
  const path = join(dir, "package.json");
  const manifest = JSON.parse(readFileSync(path, "utf8")) as { version: string };
  writeFileSync(path, `${JSON.stringify({ ...manifest, version }, null, 2)}\n`);
}

let cloneCount = 0;
function freshClone(): string {
  const dir = join(scratch, `clone-${++cloneCount}`);
  git(scratch, "clone", "--quiet", template, dir);
  git(dir, "checkout", "--quiet", "-B", "main");
  git(dir, "config", "user.name", "Release Test");
  git(dir, "config", "user.email", "release-test@example.com");
  return dir;
}

function release(cwd: string, args: string[], env: Record<string, string> = {}) {
  const npmLog = `${cwd}.npm.log`; // beside the clone, so the tree stays clean
  writeFileSync(npmLog, "");
  const result = spawnSync(process.execPath, [releaseScript, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, FAKE_NPM_LOG: npmLog, ...env },
  });
  return { ...result, npmCalls: readFileSync(npmLog, "utf8").trim().split("\n").filter(Boolean) };
}

const commitOf = (cwd: string, ref: string) => git(cwd, "rev-parse", `${ref}^{commit}`);

describe("release script", () => {
  it("tags v1.0.0 at HEAD and moves v1 to it; v1.0.1 moves v1 again", () => {
    const clone = freshClone();
    const first = release(clone, ["1.0.0"]);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.npmCalls).toEqual(["run build", "run lint", "run bundle"]);
    const firstHead = commitOf(clone, "HEAD");
    expect(commitOf(clone, "v1.0.0")).toBe(firstHead);
    expect(commitOf(clone, "v1")).toBe(firstHead);
    expect(git(clone, "cat-file", "-t", "v1.0.0")).toBe("tag"); // annotated
    expect(first.stdout).toContain("git push origin refs/tags/v1.0.0");
    expect(first.stdout).toContain("git push --force origin refs/tags/v1");

    appendFileSync(join(clone, "README.md"), "\nA fix.\n");
    setPackageVersion(clone, "1.0.1");
    git(clone, "commit", "--quiet", "-am", "fix");
    const second = release(clone, ["1.0.1"]);
    expect(second.status).toBe(0);
    const secondHead = commitOf(clone, "HEAD");
    expect(secondHead).not.toBe(firstHead);
    expect(commitOf(clone, "v1.0.1")).toBe(secondHead);
    expect(commitOf(clone, "v1")).toBe(secondHead);
    expect(commitOf(clone, "v1.0.0")).toBe(firstHead);
  });

  it("with --push pushes the new tag and the moved major tag to origin", () => {
    const clone = freshClone();
    const origin = join(scratch, `origin-${cloneCount}.git`);
    git(scratch, "clone", "--quiet", "--bare", template, origin);
    git(clone, "remote", "set-url", "origin", origin);
    expect(release(clone, ["1.0.0", "--push"]).status).toBe(0);
    appendFileSync(join(clone, "README.md"), "\nA fix.\n");
    setPackageVersion(clone, "1.0.1");
    git(clone, "commit", "--quiet", "-am", "fix");
    git(clone, "push", "--quiet", "origin", "HEAD:main");
    const pushed = release(clone, ["1.0.1", "--push"]);
    expect(pushed.status).toBe(0);
    expect(pushed.stdout).toContain("pushed v1.0.1 and v1");
    expect(commitOf(origin, "v1")).toBe(commitOf(clone, "HEAD"));
    expect(commitOf(origin, "v1.0.0")).toBe(commitOf(clone, "HEAD~1"));
  });

  it("refuses a version not greater than the latest release", () => {
    const clone = freshClone();
    expect(release(clone, ["1.0.0"]).status).toBe(0);
    for (const version of ["1.0.0", "0.9.9"]) {
      const result = release(clone, [version]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`refused: ${version} is not greater than the latest release v1.0.0`);
    }
  });

  it("refuses malformed versions before building anything", () => {
    const clone = freshClone();
    for (const version of ["v1.0.0", "1.0", "1.02.0", "1.0.0-rc.1", "latest"]) {
      const result = release(clone, [version]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`refused: "${version}" is not a version: expected X.Y.Z`);
      expect(result.npmCalls).toEqual([]);
    }
    expect(git(clone, "tag", "--list")).toBe("");
  });

  it("refuses a dirty tree and a branch other than main", () => {
    const clone = freshClone();
    writeFileSync(join(clone, "notes.txt"), "untracked\n");
    const dirty = release(clone, ["1.0.0"]);
    expect(dirty.status).toBe(1);
    expect(dirty.stderr).toContain("refused: the working tree has changes");
    expect(dirty.stderr).toContain("notes.txt");

    rmSync(join(clone, "notes.txt"));
    git(clone, "checkout", "--quiet", "-b", "feature");
    const branch = release(clone, ["1.0.0"]);
    expect(branch.status).toBe(1);
    expect(branch.stderr).toContain('refused: releases are tagged on main; this is "feature"');
    expect(git(clone, "tag", "--list")).toBe("");
  });

  it("refuses a version without a CHANGELOG section", () => {
    const clone = freshClone();
    const result = release(clone, ["1.1.0"]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('refused: CHANGELOG.md has no section "## [1.1.0] - <date>"');
    expect(result.npmCalls).toEqual([]);
  });

  it("refuses a version package.json does not carry, before building anything", () => {
    const clone = freshClone();
    setPackageVersion(clone, "0.9.0");
    git(clone, "commit", "--quiet", "-am", "older package version");
    const result = release(clone, ["1.0.0"]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      "refused: package.json's version is 0.9.0; run `npm version 1.0.0 --no-git-tag-version`",
    );
    expect(result.npmCalls).toEqual([]);
    expect(git(clone, "tag", "--list")).toBe("");
  });

  it("refuses when the bundle differs from the committed dist/ or a build step fails", () => {
    const clone = freshClone();
    const stale = release(clone, ["1.0.0"], { FAKE_BUNDLE_CHANGES: "1" });
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain("refused: dist/ differs from what is committed after npm run bundle");
    expect(stale.stderr).toContain("dist/index.js");

    git(clone, "checkout", "--quiet", "--", "dist");
    const lint = release(clone, ["1.0.0"], { FAKE_LINT_FAILS: "1" });
    expect(lint.status).toBe(1);
    expect(lint.stderr).toContain("refused: npm run lint failed");
    expect(lint.npmCalls).toEqual(["run build", "run lint"]);
    expect(git(clone, "tag", "--list")).toBe("");
  });
});
