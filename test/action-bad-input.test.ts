/**
 * Bad input, end to end: the bundled action, run as the runner runs it, fails with an `::error::`
 * line that names the offending input, exits non-zero, and opens no connection to Prometheus, the
 * Kubernetes API or the GitHub API (all three point at a listener that counts connections).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAction } from "./support/action-runner.ts";
import { type ConnectionRecorder, startConnectionRecorder } from "./support/connection-recorder.ts";
import { kubeconfigYaml } from "./support/kubeconfig.ts";

let recorder: ConnectionRecorder;
beforeAll(async () => {
  recorder = await startConnectionRecorder();
});
afterAll(async () => {
  await recorder.close();
});

const valid = (): Record<string, string> => ({
  "virtual-service": "backend",
  namespace: "shop",
  "stable-subset": "v1",
  "canary-subset": "v2",
  "prometheus-url": recorder.url,
  kubeconfig: kubeconfigYaml({ server: `https://127.0.0.1:${recorder.port}`, token: "emulator-token" }),
  "github-token": "ghs_exampletoken0123456789",
});

// [input that must be named, overrides of the valid inputs]
const cases: Array<[string, Record<string, string>]> = [
  ["virtual-service", { "virtual-service": "" }],
  ["virtual-service", { "virtual-service": "Backend" }],
  ["virtual-service", { "virtual-service": "back_end" }],
  ["virtual-service", { "virtual-service": "-backend" }],
  ["namespace", { namespace: "Shop" }],
  ["namespace", { namespace: "a.b" }],
  ["namespace", { namespace: "x".repeat(64) }],
  ["command", { command: "deploy" }],
  ["command", { command: "ROLLOUT" }],
  ["stable-subset", { "stable-subset": "", "canary-subset": "" }],
  ["stable-subset", { "stable-subset": "" }],
  ["canary-subset", { "canary-subset": "" }],
  ["canary-subset", { "canary-subset": "v1" }],
  ["stable-subset", { "stable-subset": "V1" }],
  ["canary-host", { "canary-host": "reviews-v2" }],
  ["stable-host", { "stable-subset": "", "canary-subset": "", "canary-host": "reviews-v2" }],
  ["canary-host", { "stable-subset": "", "canary-subset": "", "stable-host": "reviews" }],
  ["stable-host", { "stable-host": "reviews_v1" }],
  ["stages", { stages: ",," }],
  ["stages", { stages: "10,1,100" }],
  ["stages", { stages: "1,10,50" }],
  ["stages", { stages: "0,50,100" }],
  ["stages", { stages: "1,10,10,100" }],
  ["stages", { stages: "1,10,150" }],
  ["stages", { stages: "1.5,100" }],
  ["pause-after", { "pause-after": "20" }],
  ["pause-after", { "pause-after": "100" }],
  ["pause-after", { "pause-after": "ten" }],
  ["prometheus-url", { "prometheus-url": "" }],
  ["prometheus-url", { "prometheus-url": "prometheus:9090" }],
  ["prometheus-url", { "prometheus-url": "ftp://prometheus:9090" }],
  ["prometheus-url", { "prometheus-url": "http://user:pw@prometheus:9090" }],
  ["prometheus-headers", { "prometheus-headers": "Authorization Bearer abc" }],
  ["prometheus-headers", { "prometheus-headers": "X-Org: a\nbad header: b" }],
  ["max-error-rate", { "max-error-rate": "0" }],
  ["max-error-rate", { "max-error-rate": "150%" }],
  ["max-error-rate", { "max-error-rate": "1" }],
  ["max-error-rate", { "max-error-rate": "lots" }],
  ["min-stage-duration", { "min-stage-duration": "60" }],
  ["max-stage-duration", { "max-stage-duration": "10 minutes" }],
  ["max-stage-duration", { "min-stage-duration": "10m", "max-stage-duration": "5m" }],
  ["interval", { interval: "2m", "min-stage-duration": "1m" }],
  ["interval", { interval: "0s" }],
  ["skip-analysis", { "skip-analysis": "yes" }],
  ["dry-run", { "dry-run": "1" }],
  ["rollback-on-cancel", { "rollback-on-cancel": "no" }],
  ["on-inconclusive", { "on-inconclusive": "continue" }],
  ["on-unreachable", { "on-unreachable": "ignore" }],
  ["reporter", { reporter: "client" }],
  ["latency-threshold", { "latency-threshold": "300ms" }],
  ["latency-threshold", { "latency-threshold": "fast" }],
  ["min-requests", { "min-requests": "0" }],
  ["min-requests", { "min-requests": "-5" }],
  ["false-rollback-budget", { "false-rollback-budget": "0%" }],
  ["canary-selector", { "canary-selector": 'destination_version="v2"; drop' }],
  ["stable-selector", { "canary-selector": 'destination_version="v2"' }],
  ["kubeconfig", { kubeconfig: "clusters: [unclosed" }],
  ["kubeconfig", { kubeconfig: "just a string" }],
  ["kubeconfig", { kubeconfig: "apiVersion: v1\nkind: Config\ncontexts: []\n" }],
  ["kubeconfig", { context: "staging" }],
  ["pull-request", { "pull-request": "#12" }],
];

describe("bad input fails before any network call", () => {
  it("has at least 30 cases", () => expect(cases.length).toBeGreaterThanOrEqual(30));

  it.concurrent.each(cases)("names '%s' (%j)", async (input, overrides) => {
    const before = recorder.connections();
    const run = await runAction({
      inputs: { ...valid(), ...overrides },
      env: { GITHUB_API_URL: recorder.url, GITHUB_REPOSITORY: "acme/shop", GITHUB_EVENT_NAME: "push" },
    });
    expect(run.exitCode).not.toBe(0);
    const error = run.stdout.split("\n").find((l) => l.startsWith("::error::"));
    expect(error, run.stdout).toBeDefined();
    expect(error).toContain(`Input '${input}'`);
    // The message is about the input and what is allowed, never a stack trace.
    expect(error).not.toMatch(/\bat .*\.js:\d+/);
    // Concurrent cases share the recorder, so this checks that no case connected at all.
    expect(recorder.connections()).toBe(before);
    expect(recorder.connections()).toBe(0);
  });
});
