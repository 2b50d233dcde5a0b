/**
 * Secrets end to end: the bundled action rolls out through a hosted-style Prometheus that wants a
 * token in its path and an Authorization header, with a one-line JSON kubeconfig. None of the
 * credentials appears in the log (except in the `::add-mask::` line that registers it), the job
 * summary, the outputs, or any request the GitHub API received (comment, status, deployment).
 */
import { createServer, request, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { NAMESPACE } from "./mesh/fixtures.ts";
import type { Mesh } from "./mesh/index.ts";
import type { ActionRun } from "./support/action-runner.ts";
import { fastInputs, runOnMesh, useMesh } from "./support/e2e.ts";

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
  it("keeps a path token, a header value and a JSON kubeconfig's token out of the log, summary, outputs and GitHub", async () => {
    const m = await meshWith();
    const prometheusUrl = await hostedPrometheus(m.prometheus?.url ?? "");
    const kubeconfig = JSON.stringify(parse(m.kube.kubeconfig(KUBE_TOKEN, NAMESPACE)));
    expect(kubeconfig).not.toContain("\n");
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
    for (const secret of [PATH_TOKEN, HEADER_SECRET, KUBE_TOKEN, "ghs_bot_token"])
      expect(channelsWith(secret, run, m), secret).toEqual([]);
    // The report still links to Prometheus, without the token.
    const comment = m.github.requests
      .filter((r) => r.path.includes("/comments") && r.method !== "GET")
      .at(-1);
    expect(JSON.stringify(comment?.body)).toMatch(/http:\/\/127\.0\.0\.1:\d+\/\*\*\*\/graph\?g0\.expr=/);
  });

  it("registers a key in prometheus-url's query string before any line could show it", async () => {
    const m = await meshWith();
    const key = "queryApiKey0042secret";
    const run = await runOnMesh(m, {
      inputs: fastInputs(m, { "prometheus-url": `http://127.0.0.1:9/prom?api_key=${key}` }),
    });
    expect(run.exitCode).not.toBe(0);
    const lines = run.stdout.split("\n");
    const masked = lines.findIndex((l) => l === `::add-mask::${key}`);
    expect(masked).toBeGreaterThanOrEqual(0);
    // The runner masks from the registration on; nothing before it may show the key.
    const firstShown = lines.findIndex((l) => l.includes(key) && !l.startsWith("::add-mask::"));
    expect(firstShown === -1 || firstShown > masked).toBe(true);
    for (const channel of [
      run.summary,
      JSON.stringify(run.outputs),
      ...m.github.requests.map((r) => JSON.stringify(r.body ?? "")),
    ])
      expect(channel).not.toContain(key);
  });
});
