/**
 * The published HTTPRoutes of test/corpus/fixtures/httproute are usable as corpus cases: each
 * cites where it was published (repository, path, commit), says what the action should do with
 * it (a refusal with the pattern of its reason and fix, http-route-expectations.ts), parses as Kubernetes objects, holds an HTTPRoute, and, where it names the stable and canary
 * Services the action is given, holds those Services and a Deployment whose pods each selects.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { parseExpectation } from "../corpus/http-route-expectations.ts";
import type { KubeObject } from "../mesh/kube-api.ts";

const DIR = join(import.meta.dirname, "../corpus/fixtures/httproute");
const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml"));

interface Selecting {
  spec?: { selector?: Record<string, string>; template?: { metadata?: { labels?: Record<string, string> } } };
}
const selects = (service: Selecting, deployment: Selecting) =>
  Object.entries(service.spec?.selector ?? { none: "" }).every(
    ([k, v]) => deployment.spec?.template?.metadata?.labels?.[k] === v,
  );

describe("published HTTPRoute fixtures", () => {
  it("are at least 8, from at least 3 projects", () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
    const projects = new Set(
      files.map((f) => /^# source: (\S+)/.exec(readFileSync(join(DIR, f), "utf8"))?.[1]),
    );
    expect(projects.size).toBeGreaterThanOrEqual(3);
  });

  it.each(files)("%s cites its source, says what to expect, and holds what it names", (file) => {
    const text = readFileSync(join(DIR, file), "utf8");
    const lines = text.split("\n");
    expect(lines[0]).toMatch(/^# source: [\w.-]+\/[\w.-]+ \S+@[0-9a-f]{40}\b/);
    const expectation = lines.find((l) => l.startsWith("# expect: "));
    expect(expectation).toMatch(/^# expect: (manageable|continued|refused)\b/);
    // A refusal names its reason and fix as a pattern the corpus harness holds the message to.
    const refusal = lines.find((l) => l.startsWith("# refusal: "));
    if (expectation?.startsWith("# expect: refused")) {
      expect(refusal, "a '# refusal: /<regex>/' line").toMatch(/^# refusal: \/.+\/$/);
      expect(() => parseExpectation(file, text)).not.toThrow();
    } else expect(refusal, "a '# refusal:' line on a case that is not refused").toBeUndefined();
    const objects = (loadAll(text, { filename: file }) as Array<KubeObject | null>).filter(
      (o): o is KubeObject => o !== null,
    );
    expect(objects.filter((o) => o.kind === "HTTPRoute").length).toBeGreaterThanOrEqual(1);
    for (const o of objects) expect(o.apiVersion, `${o.kind} ${o.metadata?.name}`).toBeTruthy();
    const named = /stable=(\S+?) canary=(\S+?)[:\s]/.exec(expectation ?? "");
    if (!named) return;
    const deployments = objects.filter((o) => o.kind === "Deployment");
    for (const name of [named[1], named[2]]) {
      const service = objects.find((o) => o.kind === "Service" && o.metadata.name === name);
      expect(service, `Service ${name}`).toBeDefined();
      expect(
        deployments.some((d) => selects(service as Selecting, d as Selecting)),
        `a Deployment that Service ${name} selects`,
      ).toBe(true);
    }
  });
});
