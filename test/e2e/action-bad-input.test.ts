/**
 * Bad input, end to end: the bundled action, run as the runner runs it (every action.yml default
 * passed as an INPUT_ variable, as GitHub's runner does), fails with an `::error::`
 * line that names the offending input and its value, exits non-zero, and opens no connection to Prometheus, the
 * Kubernetes API or the GitHub API (all three point at a listener that counts connections). No
 * secret of the inputs appears in its output, except in the `::add-mask::` line that registers it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { actionDefaults, runAction } from "../support/action-runner.ts";
import { type ConnectionRecorder, startConnectionRecorder } from "../support/connection-recorder.ts";
import { kubeconfigYaml } from "../support/kubeconfig.ts";

let recorder: ConnectionRecorder;
beforeAll(async () => {
  recorder = await startConnectionRecorder();
});
afterAll(async () => {
  await recorder.close();
});

// Every action.yml default is passed as GitHub's runner passes it (INPUT_<NAME> for every input).
const valid = (): Record<string, string> => ({
  ...actionDefaults({ "github.token": "ghs_exampletoken0123456789" }),
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
  ["on-split", { "on-split": "resume" }],
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
  ["context", { context: "staging" }],
  ["pull-request", { "pull-request": "#12" }],
  // Durations past what a job can use (6 h), or past Node's timer limit: refused, never waited on.
  ["max-stage-duration", { "max-stage-duration": "600h" }],
  ["min-stage-duration", { "min-stage-duration": "7h", "max-stage-duration": "8h" }],
  ["max-stage-duration", { "max-stage-duration": `${"9".repeat(400)}s` }],
  ["interval", { interval: `${"9".repeat(400)}m` }],
  ["settle-time", { "settle-time": "600h" }],
  ["settle-time", { "settle-time": `${"1".repeat(400)}h` }],
  ["settle-time", { "settle-time": "soon" }],
  ["latency-threshold", { "latency-threshold": `${"9".repeat(400)}ms` }],
  ["stages", { stages: `1,${"0".repeat(400)}5,100` }],
  ["min-requests", { "min-requests": "9".repeat(400) }],
  ["pull-request", { "pull-request": "9".repeat(400) }],
  // Header values that would split or corrupt a request, and headers the action sets itself.
  ["prometheus-headers", { "prometheus-headers": "Authorization: Bearer prom-secret-1\rX-Injected: 1" }],
  ["prometheus-headers", { "prometheus-headers": "X-Scope-OrgID: team-\u{1F600}" }],
  ["prometheus-headers", { "prometheus-headers": "X-Scope-OrgID: team\u0007a" }],
  ["prometheus-headers", { "prometheus-headers": "Content-Type: text/plain" }],
  ["prometheus-headers", { "prometheus-headers": "Host: prometheus.evil.example" }],
  ["prometheus-headers", { "prometheus-headers": "accept: text/html" }],
  ["prometheus-headers", { "prometheus-headers": "Content-Length: 0" }],
  ["prometheus-headers", { "prometheus-headers": "X-Scope-OrgID: a\nx-scope-orgid: b" }],
  ["prometheus-headers", { "prometheus-headers": "Authorization:" }],
  ["prometheus-headers", { "prometheus-headers": "X Org: a" }],
  // Credentials in the URL: refused without being shown.
  ["prometheus-url", { "prometheus-url": "https://grafana:glc_userinfoSecret42@prometheus:9090" }],
  ["prometheus-url", { "prometheus-url": "ftp://prometheus:9090/?api_key=queryKeySecret42" }],
  // Kubeconfig problems named before any call, its content never shown.
  [
    "kubeconfig",
    {
      kubeconfig:
        '{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"not a url"}}],"users":[{"name":"u","user":{"token":"jsonKubeToken42"}}],"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"}',
    },
  ],
  [
    "kubeconfig",
    {
      kubeconfig:
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts:\n- name: x\n  context: {cluster: gone, user: u}\ncurrent-context: x\n",
    },
  ],
  [
    "kubeconfig",
    { kubeconfig: "apiVersion: v1\nkind: Config\ncontexts:\n- name: x\n  context: {cluster: c}\n" },
  ],
  [
    "kubeconfig",
    {
      kubeconfig:
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'ftp://10.0.0.1'}\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
    },
  ],
];

/** Values in the inputs that are secrets: none may show up in the output, except to register them. */
const SECRETS = [
  "ghs_exampletoken0123456789",
  "emulator-token",
  "prom-secret-1",
  "glc_userinfoSecret42",
  "queryKeySecret42",
  "jsonKubeToken42",
];

/** A workflow command's text as the runner shows it: `::error::` escapes %, CR and LF. */
const unescapeCommand = (text: string) =>
  text.replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%");

describe("bad input fails before any network call", () => {
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
    // The contract: the message names the value too (quoted as given, long ones cut short), unless
    // it is empty, may hold a secret (it is described instead), or only its combination with the
    // valid subsets is wrong (the message then names those).
    const value = (overrides[input] ?? "").trim();
    const mayBeSecret = input === "kubeconfig" || input === "prometheus-headers" || /[@?]/.test(value);
    const combinedWithSubsets = input.endsWith("-host") && !("stable-subset" in overrides);
    if (value !== "" && !mayBeSecret && !combinedWithSubsets)
      expect(unescapeCommand(error ?? "")).toContain(JSON.stringify(value).slice(0, 60));
    // The message is about the input and what is allowed, never a stack trace.
    expect(error).not.toMatch(/\bat .*\.js:\d+/);
    const shown = [run.stdout, run.stderr]
      .join("\n")
      .split("\n")
      .filter((l) => !l.startsWith("::add-mask::"))
      .join("\n");
    for (const secret of SECRETS) expect(shown).not.toContain(secret);
    // Concurrent cases share the recorder, so this checks that no case connected at all.
    expect(recorder.connections()).toBe(before);
    expect(recorder.connections()).toBe(0);
  });
});
