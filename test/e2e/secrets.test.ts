/**
 * Secrets end to end: the bundled action rolls out through a hosted-style Prometheus that wants a
 * token in its path and an Authorization header, with a one-line JSON kubeconfig (and, in a run
 * the Prometheus refuses, with an api key in the URL's query string). None of the
 * credentials appears in the log (except in the `::add-mask::` line that registers it), the job
 * summary, the outputs, or any request the GitHub API received (comment, status, deployment).
 */
import { createServer, request, type Server } from "node:http";
import { load } from "js-yaml";
import { afterEach, describe, expect, it } from "vitest";
import { NAMESPACE } from "../mesh/fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import type { ActionRun } from "../support/action-runner.ts";
import { fastInputs, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();

const PATH_TOKEN = "tnt7f3a9c2e1b8d4f6a0c5e";
const HEADER_SECRET = "prom-header-secret-0042";
const KUBE_TOKEN = "admin-token";

/** A hosted Prometheus: answers only with the token in its path and the header, as its proxy would. */
let proxy: Server | undefined;
async function hostedPrometheus(target: string): Promise<string> {
  const upstream = new URL(target);
  proxy = createServer((req, res) => {
    const prefix = `/${PATH_TOKEN}`;
    if (!req.url?.startsWith(`${prefix}/`) || req.headers.authorization !== `Bearer ${HEADER_SECRET}`) {
      res
        .writeHead(401, { "content-type": "application/json" })
        .end('{"status":"error","error":"unauthorized"}');
      return;
    }
    const forwarded = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url.slice(prefix.length),
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on("error", () => res.writeHead(502).end());
    req.pipe(forwarded);
  });
  await new Promise<void>((done) => proxy?.listen(0, "127.0.0.1", done));
  const address = proxy.address();
  if (!address || typeof address === "string") throw new Error("no port");
  return `http://127.0.0.1:${address.port}/${PATH_TOKEN}/`;
}
afterEach(async () => {
  proxy?.closeAllConnections();
  await new Promise<void>((done) => (proxy ? proxy.close(() => done()) : done()));
  proxy = undefined;
});

/** Where a secret shows up: every channel the action writes to, the log without its mask commands. */
function channelsWith(secret: string, run: ActionRun, mesh: Mesh): string[] {
  const log = [run.stdout, run.stderr]
    .join("\n")
    .split("\n")
    .filter((l) => !l.startsWith("::add-mask::"))
    .join("\n");
  const channels: Record<string, string> = {
    log,
    summary: run.summary,
    outputs: JSON.stringify(run.outputs),
    ...Object.fromEntries(
      mesh.github.requests.map((r, i) => [
        `GitHub ${r.method} ${r.path} #${i}`,
        JSON.stringify(r.body ?? ""),
      ]),
    ),
  };
  return Object.entries(channels)
    .filter(([, text]) => text.includes(secret))
    .map(([name]) => name);
}

describe("secrets in every channel", () => {
  // Two runs on one mesh (a refused one, then a rollout).
  it("keeps a path token, a query key, a header value and a JSON kubeconfig's token out of the log, summary, outputs and GitHub", async () => {
    const m = await meshWith();
    const prometheusUrl = await hostedPrometheus(m.prometheus?.url ?? "");
    const kubeconfig = JSON.stringify(load(m.kube.kubeconfig(KUBE_TOKEN, NAMESPACE)));
    expect(kubeconfig).not.toContain("\n");

    // A key in the query string: the client cannot use it (the proxy refuses), but the key is
    // registered before any line could show it, and reaches no channel the action writes itself.
    const key = "queryApiKey0042secret";
    const refused = await runOnMesh(m, {
      inputs: fastInputs(m, { "prometheus-url": `${prometheusUrl}?api_key=${key}`, kubeconfig }),
      runId: "999",
    });
    expect(refused.exitCode).not.toBe(0);
    const lines = refused.stdout.split("\n");
    const masked = lines.indexOf(`::add-mask::${key}`);
    expect(masked).toBeGreaterThanOrEqual(0);
    const firstShown = lines.findIndex((l) => l.includes(key) && !l.startsWith("::add-mask::"));
    expect(firstShown === -1 || firstShown > masked).toBe(true);
    for (const channel of [
      refused.summary,
      JSON.stringify(refused.outputs),
      ...m.github.requests.map((r) => JSON.stringify(r.body ?? "")),
    ])
      expect(channel).not.toContain(key);
    const run = await runOnMesh(m, {
      inputs: fastInputs(m, {
        "prometheus-url": prometheusUrl,
        "prometheus-headers": `Authorization: Bearer ${HEADER_SECRET}`,
        kubeconfig,
        environment: "production",
      }),
    });
    expect(run.outputs.result, run.stdout).toBe("promoted");
    // Each credential was registered with the runner on its own.
    for (const secret of [PATH_TOKEN, `Bearer ${HEADER_SECRET}`, KUBE_TOKEN, "ghs_bot_token"])
      expect(run.stdout).toContain(`::add-mask::${secret}`);
    for (const secret of [PATH_TOKEN, HEADER_SECRET, KUBE_TOKEN, "ghs_bot_token", key])
      expect(channelsWith(secret, run, m), secret).toEqual([]);
    // The report still links to Prometheus, without the token.
    const comment = m.github.requests
      .filter((r) => r.path.includes("/comments") && r.method !== "GET")
      .at(-1);
    expect(JSON.stringify(comment?.body)).toMatch(/http:\/\/127\.0\.0\.1:\d+\/\*\*\*\/graph\?g0\.expr=/);
  }, 60_000);
});
