/**
 * The preview's inputs as GitHub passes them (every action.yml default present), when a rollout's
 * first stage counts from a preview (a forged or stale annotation never widens it), and the report's
 * preview line.
 */
import { describe, expect, it } from "vitest";
import { InputError, parseConfig } from "../../src/inputs/config.ts";
import { renderMarkdown } from "../../src/report/markdown.ts";
import { buildReport } from "../../src/report/model.ts";
import type { TrafficView } from "../../src/rollout/ports.ts";
import { previewStart } from "../../src/rollout/preview.ts";
import { actionDefaults } from "../support/action-runner.ts";

const workflow = {
  ...actionDefaults({ "github.token": "ghs_exampletoken0123456789" }),
  "virtual-service": "backend",
  "stable-subset": "v1",
  "canary-subset": "v2",
};

function problems(raw: Record<string, string>): string[] {
  try {
    parseConfig(raw);
    return [];
  } catch (error) {
    if (error instanceof InputError) return error.problems.map((p) => `${p.input}: ${p.message}`);
    throw error;
  }
}

describe("preview inputs", () => {
  it("defaults: header x-canary, value the rollout id, the rollout removes the route; no Prometheus needed", () => {
    const config = parseConfig({ ...workflow, command: "preview" });
    expect(config.preview).toEqual({ header: "x-canary", policy: "remove" });
    expect(config.command).toBe("preview");
  });

  it("takes a header, a value and keep", () => {
    const config = parseConfig({
      ...workflow,
      command: "preview",
      "preview-header": "x-test-run",
      "preview-value": "run-42.1",
      preview: "keep",
    });
    expect(config.preview).toEqual({ header: "x-test-run", value: "run-42.1", policy: "keep" });
  });

  it.each([
    ["preview-header", "X-Canary", /lowercase letters/],
    ["preview-header", ":path", /lowercase letters/],
    ["preview-header", "authority", /not uri, scheme, method, authority or host/],
    ["preview-value", "a b", /1 to 128 letters/],
    ["preview-value", "x'; rm -rf /", /1 to 128 letters/],
    ["preview", "sometimes", /use remove .* or keep/],
  ])("refuses %s %j, naming the input", (input, value, why) => {
    const found = problems({ ...workflow, command: "preview", [input]: value });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^${input}: `));
    expect(found[0]).toMatch(why);
  });
});

describe("the first stage counts from the preview only when the routes vouch for it", () => {
  const now = new Date("2026-12-06T12:00:00Z");
  const view = (preview: TrafficView["preview"]) => ({ preview }) as TrafficView;
  it.each([
    [
      "this rollout's preview, 10 min old",
      { rolloutId: "r1", since: "2026-12-06T11:50:00.000Z" },
      "2026-12-06T11:50:00.000Z",
    ],
    ["another rollout's", { rolloutId: "r0", since: "2026-12-06T11:50:00.000Z" }, undefined],
    ["older than an hour", { rolloutId: "r1", since: "2026-12-06T10:00:00.000Z" }, undefined],
    ["in the future", { rolloutId: "r1", since: "2026-12-06T12:30:00.000Z" }, undefined],
    ["no agreeing annotation (rollout unknown)", {}, undefined],
  ])("%s", (_, found, expected) => {
    const start = previewStart(view({ routes: ["istio-canary-preview"], ...found }), "r1", now);
    expect(start?.toISOString()).toBe(expected);
  });
  it("no preview route: none", () => {
    expect(previewStart(view(undefined), "r1", now)).toBeUndefined();
  });
});

describe("the report's preview line", () => {
  it("names the header and value to send, with a curl line", () => {
    const model = buildReport(
      [
        {
          type: "preview",
          at: "2026-12-06T12:00:00Z",
          header: "x-canary",
          value: "abc1234-9",
          routes: ["istio-canary-preview"],
        },
        {
          type: "finished",
          at: "2026-12-06T12:00:01Z",
          result: "unchanged",
          weight: 0,
          reason: "Preview",
          failed: false,
        },
      ],
      { namespace: "shop", virtualService: "backend" },
    );
    expect(model.preview).toEqual({
      header: "x-canary",
      value: "abc1234-9",
      routes: ["istio-canary-preview"],
    });
    const markdown = renderMarkdown(model);
    expect(markdown).toContain("### 🔎 Preview: `shop/backend` canary at 0 %");
    expect(markdown).toContain(
      "**Preview:** requests carrying the header `x-canary: abc1234-9` go to the canary",
    );
    expect(markdown).toContain("curl -H 'x-canary: abc1234-9'");
  });
});

describe("an HTTPRoute target", () => {
  it("refuses command: preview with a clear 'not yet', naming the input", () => {
    const { "virtual-service": _, "stable-subset": _s, "canary-subset": _c, ...rest } = workflow;
    const found = problems({
      ...rest,
      command: "preview",
      "http-route": "backend",
      "stable-host": "backend-v1",
      "canary-host": "backend-v2",
    });
    expect(found).toEqual([
      "command: preview is not yet supported with http-route: the header-routed preview route is written into an Istio VirtualService (name it in virtual-service)",
    ]);
  });
});
