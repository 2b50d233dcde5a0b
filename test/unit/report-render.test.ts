// @vitest-environment jsdom
/**
 * The renderer: its table says what the engine's events say, its Mermaid chart parses with
 * Mermaid's own parser, and it stays under GitHub's comment limit.
 */
import mermaid from "mermaid";
import { describe, expect, it } from "vitest";
import type { Verdict } from "../../src/analysis/judge.ts";
import { registerSecret } from "../../src/redact.ts";
import { NBSP } from "../../src/report/format.ts";
import { MAX_COMMENT_CHARS, marker, renderMarkdown, truncate } from "../../src/report/markdown.ts";
import { buildReport } from "../../src/report/model.ts";
import { type EngineSettings, RolloutEngine } from "../../src/rollout/engine.ts";
import type { RolloutEvent } from "../../src/rollout/events.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const settings: EngineSettings = defaultEngineSettings();

async function engineEvents(
  canaryErrorRate: number,
  extra: Partial<EngineSettings> = {},
): Promise<RolloutEvent[]> {
  const clock = new VirtualClock();
  const traffic = new InMemoryTraffic();
  const log = new EventLog();
  const metrics = new SimulatedMetrics(clock, traffic, {
    requestsPerSecond: 200,
    stableErrorRate: 0.0005,
    canaryErrorRate,
    seed: 9,
  });
  await new RolloutEngine(
    { ...settings, ...extra },
    { holder: "acme/shop run 7 attempt 1", commit: "abc1234def", newRolloutId: "abc1234-7" },
    { traffic, metrics, clock, events: log },
    "VirtualService shop/backend",
  ).run();
  return log.events;
}

const context = {
  namespace: "shop",
  virtualService: "backend",
  runUrl: "https://github.com/acme/shop/actions/runs/7",
  prometheusUrl: "http://prometheus:9090",
  queries: {
    canary: 'istio_requests_total{destination_version="v2"}',
    stable: 'istio_requests_total{destination_version="v1"}',
  },
};

function tableRows(markdown: string): string[][] {
  return markdown
    .split("\n")
    .filter((l) => /^\| \d+ \|/.test(l))
    .map((l) =>
      l
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim()),
    );
}

function mermaidBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```mermaid\n([\s\S]*?)\n```/g)].map((m) => m[1] as string);
}

describe("the report renderer", () => {
  it("puts the engine's numbers in the table, stage by stage", async () => {
    const events = await engineEvents(0.0005);
    const markdown = renderMarkdown(buildReport(events, context));
    const ends = events.filter(
      (e): e is Extract<RolloutEvent, { type: "stage-end" }> => e.type === "stage-end",
    );
    const rows = tableRows(markdown);
    expect(rows).toHaveLength(4);
    for (const [i, end] of ends.entries()) {
      const v = end.verdict as Verdict;
      const row = rows[i] as string[];
      expect(row[0]).toBe(String(end.stage + 1));
      expect(row[1]).toBe(`${end.weight}${NBSP}%`);
      expect(row[3]).toContain(`(${v.canary?.errors}/${v.canary?.requests})`);
      expect(row[4]).toContain(`(${v.stable?.errors}/${v.stable?.requests})`);
      expect(row[5]).toBe(`1.00${NBSP}%`);
      expect(row[6]).toBe(`✅${NBSP}pass`);
    }
    expect(markdown.startsWith(marker("shop", "backend"))).toBe(true);
    expect(markdown).toContain("### ✅ Promoted: `shop/backend` canary at 100 %");
    expect(markdown).toContain("[workflow run](https://github.com/acme/shop/actions/runs/7)");
    expect(markdown).toMatch(/Prometheus: \[canary\]\(http:\/\/prometheus:9090\/graph\?g0.expr=/);
  });

  it("heads a rolled-back report with the reason and the numbers of the failed stage", async () => {
    const events = await engineEvents(0.2);
    const model = buildReport(events, context);
    const markdown = renderMarkdown(model);
    expect(markdown).toContain("### ⏪ Rolled back: `shop/backend` canary at 0 %");
    expect(markdown).toMatch(/\nRolled back at 1 %: \d+ of \d+ canary requests failed/);
    const row = tableRows(markdown)[0] as string[];
    const end = events.find((e) => e.type === "stage-end") as Extract<RolloutEvent, { type: "stage-end" }>;
    expect(row[3]).toContain(`(${end.verdict?.canary?.errors}/${end.verdict?.canary?.requests})`);
    expect(row[6]).toBe(`❌${NBSP}fail`);
    expect(model.next[0]).toContain("All traffic is on the stable version");
  });

  it("tells a paused rollout how to continue", async () => {
    const model = buildReport(await engineEvents(0.0005, { pauseAfter: 10 }), context);
    expect(model.result).toBe("paused");
    expect(renderMarkdown(model)).toContain(
      "**Next:** Continue: run the promote workflow (workflow_dispatch) with `command: promote`, `rollout-id: abc1234-7`.",
    );
  });

  it("draws Mermaid xycharts that Mermaid's parser accepts", async () => {
    const markdown = renderMarkdown(buildReport(await engineEvents(0.0005), context));
    const blocks = mermaidBlocks(markdown);
    expect(blocks).toHaveLength(2);
    for (const block of blocks) {
      expect(block).toMatch(/^%%\{init: .*\}%%\nxychart-beta\n/);
      expect(await mermaid.parse(block)).toMatchObject({ diagramType: "xychart" });
    }
    // The parser is strict enough to catch a broken chart.
    await expect(mermaid.parse((blocks[0] as string).replace(/line \[/, "line [x, "))).rejects.toThrow();
  });

  it("names each line of the error-rate chart, draws the limit, and gives every line its own colour", async () => {
    const markdown = renderMarkdown(buildReport(await engineEvents(0.0005), context));
    const block = mermaidBlocks(markdown)[0] as string;
    const lines = [...block.matchAll(/^ {2}line \[(.*)\]$/gm)].map((m) =>
      (m[1] as string).split(", ").map(Number),
    );
    expect(lines).toHaveLength(3);
    const palette = JSON.parse(
      /^%%\{init: (.*)\}%%$/m.exec(block)?.[1] as string,
    ).themeVariables.xyChart.plotColorPalette.split(", ") as string[];
    expect(palette).toHaveLength(lines.length);
    expect(new Set(palette).size).toBe(palette.length);
    // The limit (max-error-rate 1 %) is the third line, flat at 1.
    expect(lines[2]).toEqual(lines[0]?.map(() => 1));
    // The y-axis leaves room above the limit, so the line is drawn inside the chart.
    expect(Number(/y-axis "[^"]*" 0 --> ([\d.]+)/.exec(block)?.[1])).toBeGreaterThan(1);
    const legend = markdown.slice(markdown.indexOf(block) + block.length).split("\n")[3];
    expect(legend).toBe("— canary (red) · — stable (blue) · — limit (grey)");
  });

  it("charts the canary weight at each decision, down to 0 after a rollback", async () => {
    const markdown = renderMarkdown(buildReport(await engineEvents(0.2), context));
    const [errors, block] = mermaidBlocks(markdown) as [string, string];
    // A rollback at the first stage still draws lines: Mermaid draws none through a single point.
    for (const m of errors.matchAll(/^ {2}line \[(.*)\]$/gm))
      expect((m[1] as string).split(", ").length).toBe(2);
    expect(block).toMatch(/^ {2}line \[0, 1, 0\]$/m);
    expect(block).toMatch(/x-axis \["start", "\d+:\d\d 1% FAIL", "rolled back"\]/);
    expect(await mermaid.parse(block)).toMatchObject({ diagramType: "xychart" });
  });

  it("keeps the table narrow: at most 8 columns with latency, and no cell that can wrap", async () => {
    const markdown = renderMarkdown(
      buildReport(await engineEvents(0.0005), { ...context, latencyThresholdMs: 500 }),
    );
    const table = markdown.split("\n").filter((l) => l.startsWith("| "));
    expect(table.length).toBeGreaterThan(2);
    expect((table[0] as string).split("|").slice(1, -1).length).toBeLessThanOrEqual(8);
    for (const row of tableRows(markdown)) {
      expect(row).toHaveLength(8);
      // An ASCII space is where a browser breaks a line; units are joined with no-break spaces.
      for (const cell of row) expect(cell).not.toMatch(/ /);
    }
  });

  it("links to Prometheus without the credentials its URL carries, and quotes no registered secret", async () => {
    registerSecret("leaked-key-0042", () => undefined);
    const events = await engineEvents(0.2);
    const finished = events.find((e) => e.type === "finished") as Extract<RolloutEvent, { type: "finished" }>;
    finished.reason = `${finished.reason} (cannot reach https://prom.example/?api_key=leaked-key-0042)`;
    const model = buildReport(events, {
      ...context,
      prometheusUrl: "https://u:pw-secret@prom.example:9443/t0ken1234567890abcdefgh/?api_key=leaked-key-0042",
    });
    const markdown = renderMarkdown(model);
    expect(markdown).toMatch(/\[canary\]\(https:\/\/prom\.example:9443\/\*\*\*\/graph\?g0\.expr=/);
    for (const secret of ["leaked-key-0042", "pw-secret", "t0ken1234567890abcdefgh"]) {
      expect(markdown).not.toContain(secret);
      expect(JSON.stringify(model)).not.toContain(secret);
    }
  });

  it("stays below GitHub's 65,536-character limit, keeping the marker", () => {
    const long = `${marker("shop", "backend")}\n${"| a | b |\n".repeat(20_000)}`;
    const cut = truncate(long);
    expect(cut.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
    expect(cut.length).toBeLessThan(65_536);
    expect(cut.startsWith(marker("shop", "backend"))).toBe(true);
    expect(cut).toContain("report truncated");
  });
});
