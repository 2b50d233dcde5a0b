/**
 * Bad inputs for the fault suite (issue 12, item 7): each must be refused before any call, with an
 * error that names the input. The cases first (durations past what a run can use or past
 * Node's timer limit, header values with CR or non-Latin-1 characters, a Content-Type override,
 * kubeconfig problems), then the contract's basics.
 */
import { dump } from "js-yaml";

/** [input the error must name, overrides of valid inputs] */
export type BadInput = [string, Record<string, string>];

/** A kubeconfig whose server is `server` (a connection recorder, or no URL at all). */
export function kubeconfigFor(server: string, context = "test"): string {
  return dump(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server, "insecure-skip-tls-verify": true } }],
      users: [{ name: "u", user: { token: "emulator-token" } }],
      contexts: [{ name: context, context: { cluster: "c", user: "u", namespace: "shop" } }],
      "current-context": context,
    },
    { lineWidth: -1 },
  );
}

export const BAD_INPUTS: BadInput[] = [
  // Durations: past what a run can use (6 h a stage, 24 h a lease) or past Node's timer limit.
  ["min-stage-duration", { "min-stage-duration": "600h", "max-stage-duration": "700h" }],
  ["max-stage-duration", { "max-stage-duration": "600h" }],
  ["max-stage-duration", { "max-stage-duration": "25d" }],
  ["max-stage-duration", { "max-stage-duration": `${"9".repeat(400)}s` }],
  ["min-stage-duration", { "min-stage-duration": `${"1".repeat(400)}ms` }],
  ["interval", { interval: "600h" }],
  ["interval", { interval: `${"9".repeat(400)}s` }],
  ["settle-time", { "settle-time": "600h" }],
  ["settle-time", { "settle-time": `${"9".repeat(400)}s` }],
  ["min-stage-duration", { "min-stage-duration": "1e9s" }],
  ["interval", { interval: "-5s" }],
  ["interval", { interval: "NaNs" }],
  // Headers that must never reach the network.
  ["prometheus-headers", { "prometheus-headers": "X-Scope-OrgID: tenant\rInjected: yes" }],
  ["prometheus-headers", { "prometheus-headers": "X-Scope-OrgID: tenänt€" }],
  ["prometheus-headers", { "prometheus-headers": "Authorization: Bearer tok€n" }],
  ["prometheus-headers", { "prometheus-headers": "Content-Type: text/plain" }],
  ["prometheus-headers", { "prometheus-headers": "X Org: a" }],
  ["prometheus-headers", { "prometheus-headers": ": value" }],
  // Kubeconfig problems found without a call.
  ["kubeconfig", { kubeconfig: "clusters: [unclosed" }],
  ["kubeconfig", { kubeconfig: "just a string" }],
  ["kubeconfig", { kubeconfig: "apiVersion: v1\nkind: Config\ncontexts: []\n" }],
  ["context", { context: "staging" }],
  ["kubeconfig", { kubeconfig: kubeconfigFor("not a url") }],
  ["kubeconfig", { kubeconfig: kubeconfigFor("ftp://127.0.0.1:1") }],
  // The contract's basics.
  ["virtual-service", { "virtual-service": "" }],
  ["virtual-service", { "virtual-service": "Backend" }],
  ["namespace", { namespace: "a.b" }],
  ["command", { command: "deploy" }],
  ["canary-subset", { "canary-subset": "v1" }],
  ["stages", { stages: "10,1,100" }],
  ["stages", { stages: "1,10,50" }],
  ["stages", { stages: "0,50,100" }],
  ["stages", { stages: "1,10,150" }],
  ["pause-after", { "pause-after": "20" }],
  ["prometheus-url", { "prometheus-url": "" }],
  ["prometheus-url", { "prometheus-url": "ftp://prometheus:9090" }],
  ["max-error-rate", { "max-error-rate": "150%" }],
  ["max-error-rate", { "max-error-rate": "lots" }],
  ["min-requests", { "min-requests": "-5" }],
  ["on-unreachable", { "on-unreachable": "ignore" }],
  ["rollback-on-cancel", { "rollback-on-cancel": "no" }],
  ["pull-request", { "pull-request": "#12" }],
  // Issue 23's custom checks: not a list; a rate() where exact counts need a counter's selector.
  ["checks", { checks: "orders: {bad: x}" }],
  ["checks", { checks: "- name: orders\n  bad: rate(x_total[1m])\n  total: x_total\n  max-rate: 1%" }],
];
