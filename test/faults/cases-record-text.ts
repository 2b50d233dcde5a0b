/**
 * Issue 20, part A: the state annotation is a record, not an order (9a..); untrusted text is shown
 * as text, no secret is written to the cluster, and the smaller reporting items (10a..).
 *
 * A forged record is written the way anyone who may edit the VirtualService can write it: straight
 * into the annotation (and, where the forgery needs it, the weights), between two runs.
 */
import { createServer, request, type Server } from "node:http";
import { JSDOM } from "jsdom";
import { marked } from "marked";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { deploymentManifest } from "../mesh/deployments.ts";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import { BOT, TOO_LONG } from "../mesh/github-api.ts";
import type { Mesh } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import type { ActionRun } from "../support/action-runner.ts";
import { COMMIT, PULL_REQUEST, REPOSITORY } from "../support/e2e.ts";
import {
  CANARY_SUBSET,
  canaryShare,
  currentVs,
  errors,
  FAILING,
  HEALTHY,
  runTimed,
  secretsFound,
  storedWrites,
  weightsOf,
  withMesh,
} from "./harness.ts";
import type { FaultCase, Measured } from "./table.ts";

/** The stages the harness's fast inputs use. */
const STAGES = [10, 50, 100];
/** Another pull request's head commit, and that pull request. */
const OTHER_COMMIT = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";
const OTHER_PULL_REQUEST = 77;
/** The commit of the branch a `workflow_dispatch` runs on. */
const MAIN_COMMIT = "fedcba9876543210fedcba9876543210fedcba98";

type Dest = { destination: { host: string; subset: string }; weight?: number };
const dest = (subset: string, weight: number): Dest => ({
  destination: { host: SERVICE, subset },
  weight,
});

/** A record as this action writes it, with `overrides` forged in. */
function record(overrides: Record<string, unknown>): Record<string, unknown> {
  const at = new Date(Date.now() - 600_000).toISOString();
  return {
    schemaVersion: 1,
    rolloutId: `${COMMIT.slice(0, 7)}-990`,
    commit: COMMIT,
    stages: STAGES,
    stageIndex: -1,
    weight: 0,
    status: "progressing",
    startedAt: at,
    updatedAt: at,
    original: [{ index: 0, name: "primary", canaryAdded: true }],
    history: [],
    ...overrides,
  };
}

/** Writes `forged` into the annotation and, when given, sets the first route's canary weight. */
function forge(mesh: Mesh, forged: Record<string, unknown>, canaryWeight?: number): void {
  mesh.kube.editOutOfBand("virtualservices", NAMESPACE, SERVICE, (vs: KubeObject) => {
    vs.metadata.annotations = { ...vs.metadata.annotations, [STATE_ANNOTATION]: JSON.stringify(forged) };
    if (canaryWeight === undefined) return;
    const http = (vs.spec as { http: Array<{ route: Dest[] }> }).http;
    (http[0] as { route: Dest[] }).route =
      canaryWeight === 0
        ? [dest("v1", 100)]
        : [dest("v1", 100 - canaryWeight), dest(CANARY_SUBSET, canaryWeight)];
  });
}

/** The largest rise of the canary's share in one stored write, and where it went from and to. */
function largestStep(mesh: Mesh, before: number): { step: number; from: number; to: number } {
  let previous = before;
  let largest = { step: 0, from: before, to: before };
  for (const w of storedWrites(mesh)) {
    const share = canaryShare(w.object);
    if (share - previous > largest.step) largest = { step: share - previous, from: previous, to: share };
    previous = share;
  }
  return largest;
}

/** The next configured stage above `weight` (what one step may reach). */
const nextStage = (weight: number) => STAGES.find((s) => s > weight) ?? 100;

const says = (run: ActionRun) => errors(run).slice(0, 150) || "nothing";

/** A forged record must not make any write move the canary by more than one configured stage. */
function noJump(
  forged: Record<string, unknown>,
  canaryWeight: number,
  inputs: Record<string, string>,
): () => Promise<Measured> {
  return () =>
    withMesh(HEALTHY, async (mesh) => {
      forge(mesh, forged, canaryWeight);
      const run = await runTimed(mesh, { inputs, runId: "3003" });
      const { step, from, to } = largestStep(mesh, canaryWeight);
      const ok = to <= nextStage(from) || step === 0;
      return {
        ok,
        measured: `largest step ${from} → ${to} % (one stage allows ${nextStage(from)} %); final ${weightsOf(currentVs(mesh))}; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; says: ${says(run)}`,
      };
    });
}

/** The commit statuses and pull-request comments the runs left. */
function statusesOn(mesh: Mesh, sha: string): string[] {
  return mesh.github.statuses.filter((s) => s.sha === sha).map((s) => s.state);
}
function botComments(mesh: Mesh, pullRequest: number): string[] {
  return (mesh.github.comments.get(`${REPOSITORY}#${pullRequest}`) ?? [])
    .filter((c) => c.user.login === BOT.login)
    .map((c) => c.body);
}

/** The stable Deployment's image now. */
function stableImage(mesh: Mesh): string | undefined {
  const d = mesh.kube.get("deployments", NAMESPACE, `${SERVICE}-v1`);
  const spec = d?.spec as { template?: { spec?: { containers?: Array<{ image?: string }> } } } | undefined;
  return spec?.template?.spec?.containers?.[0]?.image;
}

export const forgedRecordCases: FaultCase[] = [
  {
    id: "9a",
    title: "forged record: a rollout of this commit `progressing` at its last stage (100 %), routes at 0 %",
    must: "no write moves the canary more than one configured stage (0 → at most 10 %)",
    run: noJump(
      record({
        stageIndex: 2,
        weight: 100,
        lease: {
          holder: "acme/shop run 990 attempt 1",
          expiresAt: new Date(Date.now() - 60_000).toISOString(),
        },
      }),
      0,
      {},
    ),
  },
  {
    id: "9b",
    title: "forged record: `paused` with stages `100` at 0 %, then `command: promote`",
    must: "no write moves the canary more than one configured stage (0 → at most 10 %)",
    run: noJump(record({ stages: [100], status: "paused" }), 0, { command: "promote" }),
  },
  {
    id: "9c",
    title:
      "forged record: a failing canary `paused` at 50 % with passed stages and overwhelming evidence, then `command: promote`",
    must: "not promoted; no success status; 100 % stable",
    run: () =>
      withMesh(FAILING, async (mesh) => {
        const clean = 50_000_000;
        const signal = {
          n: clean,
          k: 0,
          cleanN: clean,
          cleanK: 0,
          pairedCanaryN: clean,
          pairedCanaryK: 0,
          pairedStableN: clean,
          pairedStableK: clean / 100,
          rel: [],
          safe: 60,
          aboveWindows: 0,
          aboveMs: 0,
          streakN: clean,
          streakK: 0,
          streakSafe: 60,
          forgiven: 0,
        };
        const passed = (stage: number) => ({
          stage,
          weight: STAGES[stage],
          decision: "pass",
          reason: "within the limit",
          at: new Date().toISOString(),
          durationMs: 60_000,
          canary: { requests: clean, errors: 0 },
          stable: { requests: clean, errors: clean / 500 },
        });
        forge(
          mesh,
          record({
            status: "paused",
            stageIndex: 1,
            weight: 50,
            stageResults: [passed(0), passed(1)],
            evidence: { errors: signal, windows: 5000, inputs: { maxErrorRate: 0.05, maxRatio: 2 } },
          }),
          50,
        );
        const run = await runTimed(mesh, { inputs: { command: "promote" }, runId: "3003" });
        const green = statusesOn(mesh, COMMIT).filter((s) => s === "success").length;
        const ok = run.outputs.result !== "promoted" && green === 0 && canaryShare(currentVs(mesh)) === 0;
        return {
          ok,
          measured: `result ${run.outputs.result ?? "none"}, ${green} success status(es); final ${weightsOf(currentVs(mesh))}; says: ${says(run)}`,
        };
      }),
  },
  {
    id: "9d",
    title:
      "forged record: this commit `finalizing` (every stage 'pass'), the forger sets 100 % canary; `command: rollout`",
    must: "the stable Deployment keeps its template (no unanalysed copy); no success status",
    run: () =>
      withMesh({ ...HEALTHY, deployments: {} }, async (mesh) => {
        const before = stableImage(mesh);
        const passed = STAGES.map((weight, stage) => ({
          stage,
          weight,
          decision: "pass",
          reason: "within the limit",
          at: new Date().toISOString(),
          durationMs: 60_000,
        }));
        forge(mesh, record({ status: "finalizing", stageIndex: 2, weight: 100, stageResults: passed }), 100);
        const run = await runTimed(mesh, { inputs: { stages: STAGES.join(",") }, runId: "3003" });
        const after = stableImage(mesh);
        const green = statusesOn(mesh, COMMIT).filter((s) => s === "success").length;
        return {
          ok: after === before && green === 0,
          measured: `stable image ${before} → ${after}; ${green} success status(es); result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; says: ${says(run)}`,
        };
      }),
  },
  {
    id: "9e",
    title:
      "forged record: another pull request's commit `paused` at 10 %; `command: promote` dispatched from main",
    must: "nothing reported on the other commit or its pull request",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        mesh.github.commitPulls.set(OTHER_COMMIT, [OTHER_PULL_REQUEST]);
        const passed = {
          stage: 0,
          weight: 10,
          decision: "pass",
          reason: "within the limit",
          at: new Date().toISOString(),
          durationMs: 10_000,
        };
        forge(
          mesh,
          record({
            rolloutId: `${OTHER_COMMIT.slice(0, 7)}-990`,
            commit: OTHER_COMMIT,
            status: "paused",
            stageIndex: 0,
            weight: 10,
            stageResults: [passed],
          }),
          10,
        );
        const run = await runTimed(mesh, {
          inputs: { command: "promote" },
          commit: MAIN_COMMIT,
          runId: "3003",
        });
        const onOther = statusesOn(mesh, OTHER_COMMIT);
        const comments = botComments(mesh, OTHER_PULL_REQUEST);
        return {
          ok: onOther.length === 0 && comments.length === 0,
          measured: `statuses on the other commit: ${onOther.join(", ") || "none"}; comments on #${OTHER_PULL_REQUEST}: ${comments.length}; result ${run.outputs.result ?? "none"}; says: ${says(run)}`,
        };
      }),
  },
  {
    id: "9f",
    title:
      "forged record: a finalized promotion that scaled down Deployment `payments` (another app); `command: rollout`",
    must: "`payments` keeps its replicas",
    run: () =>
      withMesh({ ...HEALTHY, deployments: {} }, async (mesh) => {
        const apps = createPayments(mesh, 1);
        await apps.rolledOut(NAMESPACE, "payments");
        // The canary as a finalization leaves it: scaled to zero.
        apps.edit(NAMESPACE, `${SERVICE}-v2`, (d) => {
          (d.spec as { replicas: number }).replicas = 0;
        });
        await new Promise((r) => setTimeout(r, 1500));
        forge(
          mesh,
          record({
            status: "promoted",
            finalized: true,
            canaryScaledDown: true,
            stageIndex: 2,
            weight: 0,
            deployments: { stable: `${SERVICE}-v1`, canary: "payments" },
          }),
          0,
        );
        const run = await runTimed(mesh, { runId: "3003" });
        const replicas = (mesh.kube.get("deployments", NAMESPACE, "payments")?.spec as { replicas?: number })
          ?.replicas;
        return {
          ok: replicas === 1,
          measured: `payments replicas 1 → ${replicas}; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; says: ${says(run)}`,
        };
      }),
  },
  {
    id: "9g",
    title:
      "forged record: `finalizing` at 100 % canary, naming Deployment `payments` (another app, scaled to 0) as stable; `command: rollback`",
    must: "the rollback routes 100 % to stable (the record's name is checked against the subset's labels, not believed)",
    run: () =>
      withMesh({ ...HEALTHY, deployments: {} }, async (mesh) => {
        // Another app's Deployment with no pods: as a stable it would look "not ready".
        createPayments(mesh, 0);
        forge(
          mesh,
          record({
            status: "finalizing",
            stageIndex: 2,
            weight: 100,
            deployments: { stable: "payments", canary: `${SERVICE}-v2` },
          }),
          100,
        );
        const run = await runTimed(mesh, { inputs: { command: "rollback" }, runId: "3003" });
        const share = canaryShare(currentVs(mesh));
        return {
          ok: share === 0,
          measured: `canary ${share} % after the rollback; result ${run.outputs.result ?? "none"}, exit ${run.exitCode}; says: ${says(run)}`,
        };
      }),
  },
];

// ---- 10: untrusted text shown as text; no secret in the cluster; the smaller reporting items ----

/** A record of this commit paused at 10 %, whose reasons carry `payload`; then `command: status`. */
async function statusWithPayload(mesh: Mesh, payload: string): Promise<ActionRun> {
  const result = {
    stage: 0,
    weight: 10,
    decision: "pass",
    reason: `stage note ${payload}`,
    at: new Date().toISOString(),
    durationMs: 10_000,
  };
  forge(
    mesh,
    record({
      status: "paused",
      stageIndex: 0,
      weight: 10,
      reason: `paused ${payload}`,
      stageResults: [result],
      history: [{ at: new Date().toISOString(), weight: 10, event: "paused", reason: payload }],
    }),
    10,
  );
  return runTimed(mesh, { inputs: { command: "status" }, runId: "3003" });
}

/** The PR comment's HTML as GitHub would render its Markdown (raw HTML kept, as GitHub keeps the safe part). */
function rendered(markdown: string): Document {
  return new JSDOM(marked.parse(markdown, { async: false }) as string).window.document;
}

/** What a reader of the comment and the job summary would meet of `check`. */
function inReports(
  mesh: Mesh,
  run: ActionRun,
  check: (markdown: string) => string | undefined,
): { found: string[]; comment: boolean } {
  const comment = botComments(mesh, PULL_REQUEST).at(-1);
  const found: string[] = [];
  for (const [where, text] of [
    ["comment", comment],
    ["summary", run.summary],
  ] as const) {
    if (!text) continue;
    const problem = check(text);
    if (problem) found.push(`${where}: ${problem}`);
  }
  return { found, comment: comment !== undefined };
}

function markupCase(
  id: string,
  title: string,
  payload: string,
  check: (markdown: string) => string | undefined,
): FaultCase {
  return {
    id,
    title,
    must: "shown as text in the comment and the job summary (0 live)",
    run: () =>
      withMesh({ ...HEALTHY, prometheus: false }, async (mesh) => {
        const run = await statusWithPayload(mesh, payload);
        const { found, comment } = inReports(mesh, run, check);
        return {
          ok: found.length === 0 && comment && run.summary.length > 0,
          measured: `${found.length} live${found.length ? ` (${found.join("; ").slice(0, 160)})` : ""}; comment ${comment ? "written" : "missing"}; exit ${run.exitCode}`,
        };
      }),
  };
}

/**
 * Lines of stdout the runner would run as the payload's own workflow command: `::name::<marker>`
 * at the start of a line (after blanks, which the runner trims), or `##[name]<marker>` anywhere.
 * The action's own commands (`::debug::...`) may quote the payload in their escaped data: harmless.
 */
function injectedCommands(run: ActionRun, marker: string): string[] {
  const v2 = new RegExp(`^\\s*::[\\w-]+(?: [^:]*)?::${marker}`);
  const v1 = new RegExp(`##\\[[\\w-]+[^\\]]*\\]${marker}`);
  return run.stdout.split("\n").filter((l) => v2.test(l) || v1.test(l));
}

/**
 * A front for Prometheus that forwards the first `forward` queries and then answers each with
 * `answer` (a hosted Prometheus that starts refusing mid-rollout, echoing what it was sent).
 */
async function breakingFront(
  target: string,
  forward: number,
  answer: (
    path: string,
    headers: Record<string, string | string[] | undefined>,
  ) => { status: number; body: string },
  stripPrefix = "",
): Promise<{ url: string; close: () => Promise<void> }> {
  let seen = 0;
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    const forwardPath = stripPrefix && path.startsWith(stripPrefix) ? path.slice(stripPrefix.length) : path;
    if (path.includes("/api/v1/query")) seen++;
    if (seen > forward) {
      const { status, body } = answer(path, req.headers);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(body);
      return;
    }
    const t = new URL(target);
    const upstream = request(
      {
        host: t.hostname,
        port: t.port,
        method: req.method,
        path: forwardPath,
        headers: { ...req.headers, host: t.host },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

const prometheusError = (error: string) => JSON.stringify({ status: "error", errorType: "execution", error });

/** A rollout whose Prometheus starts echoing a credential in its errors mid-stage: 0 secrets anywhere. */
function echoedSecret(
  secret: string,
  url: (front: string) => string,
  headers: string | undefined,
  stripPrefix = "",
): () => Promise<Measured> {
  return async () => {
    let front: { url: string; close: () => Promise<void> } | undefined;
    try {
      return await withMesh(HEALTHY, async (mesh) => {
        front = await breakingFront(
          mesh.prometheus?.url ?? "",
          6,
          (path, h) => ({
            status: 422,
            body: prometheusError(
              `query refused for ${path} (authorization ${String(h.authorization ?? "none")}; key ${secret})`,
            ),
          }),
          stripPrefix,
        );
        const run = await runTimed(mesh, {
          inputs: {
            "prometheus-url": url(front.url),
            ...(headers ? { "prometheus-headers": headers } : {}),
            "on-unreachable": "rollback",
          },
          runId: "3003",
        });
        const found = secretsFound(run, mesh, [secret]);
        const annotation = currentVs(mesh)?.metadata.annotations?.[STATE_ANNOTATION] ?? "";
        const echoed = /query refused/.test(annotation);
        return {
          ok: found.length === 0 && echoed,
          figures: { secretsFound: found.length },
          measured: `${found.length} found${found.length ? ` (${found.join(", ")})` : ""}; the error ${echoed ? "reached" : "did not reach"} the record; final ${weightsOf(currentVs(mesh))}`,
        };
      });
    } finally {
      await front?.close();
    }
  };
}

const liveTags = (markdown: string): string | undefined => {
  const doc = rendered(markdown);
  const live = [...doc.querySelectorAll("*")].filter(
    (e) => e.tagName === "IMG" || [...e.attributes].some((a) => a.name.startsWith("on")),
  );
  return live.length ? `${live.length} element(s) such as <${live[0]?.tagName.toLowerCase()}>` : undefined;
};

/** Text nodes outside code that GitHub would turn into a mention of @octo-team. */
const mentions = (markdown: string): string | undefined => {
  const doc = rendered(markdown);
  const walker = doc.createTreeWalker(doc.body, 4);
  let count = 0;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement?.closest("code, pre")) continue;
    if (/(^|[^\w`])@octo-team\b/.test(n.textContent ?? "")) count++;
  }
  return count ? `${count} mention(s) of @octo-team` : undefined;
};

/** Our `<details>` must still hold the last stage's reason: nothing closed it early. */
const detailsClosed = (markdown: string): string | undefined => {
  const opened = markdown.split("<details>").length - 1;
  const closed = markdown.split("</details>").length - 1;
  return closed > opened ? `${closed} </details> for ${opened} <details>` : undefined;
};

/**
 * Every Mermaid block carries only the action's own init directive (the payload shown as text
 * outside a block is no directive: GitHub runs Mermaid on ```mermaid blocks only).
 */
const mermaidDirectives = (markdown: string): string | undefined => {
  const blocks = markdown
    .split("```mermaid")
    .slice(1)
    .map((b) => b.split("```")[0] ?? "");
  const foreign = blocks.filter((b) => b.includes("PWNED"));
  const directives = blocks.reduce((n, b) => n + (b.match(/%%\{/g) ?? []).length, 0);
  return foreign.length || directives > blocks.length
    ? `${foreign.length} Mermaid block(s) with foreign text, ${directives} directive(s) in ${blocks.length} block(s)`
    : undefined;
};

export const textAndSecretCases: FaultCase[] = [
  markupCase(
    "10a",
    "`<img src=x onerror=alert(1)>` in the record's reasons, `command: status`",
    "<img src=x onerror=alert(1)>",
    liveTags,
  ),
  markupCase(
    "10b",
    "`@octo-team` in the record's reasons, `command: status`",
    "ping @octo-team now",
    mentions,
  ),
  markupCase(
    "10c",
    "`</details>` in the record's reasons, `command: status`",
    "</details></details><b>outside</b>",
    detailsClosed,
  ),
  markupCase(
    "10d",
    "a Mermaid block with `%%{init}%%` in the record's reason, `command: status`",
    '\n\n```mermaid\n%%{init: {"theme": "dark", "securityLevel": "loose"}}%%\nxychart-beta\n  title "PWNED"\n```\n',
    mermaidDirectives,
  ),
  {
    id: "10e",
    title: "a `::error` line in the record's reasons (`command: status`) and in a Prometheus error (rollout)",
    must: "0 lines the runner would run as workflow commands",
    run: async () => {
      const fromRecord = await withMesh({ ...HEALTHY, prometheus: false }, async (mesh) => {
        const run = await statusWithPayload(
          mesh,
          "\n::error::PWNED-RECORD\n  ::warning::PWNED-RECORD ##[error]PWNED-RECORD",
        );
        return injectedCommands(run, "PWNED-RECORD");
      });
      let front: { url: string; close: () => Promise<void> } | undefined;
      try {
        const fromPrometheus = await withMesh(HEALTHY, async (mesh) => {
          front = await breakingFront(mesh.prometheus?.url ?? "", 6, () => ({
            status: 422,
            body: prometheusError("bad\n::error::PWNED-PROMETHEUS\n::add-mask::PWNED-PROMETHEUS"),
          }));
          const run = await runTimed(mesh, { inputs: { "prometheus-url": front.url }, runId: "3003" });
          return injectedCommands(run, "PWNED-PROMETHEUS");
        });
        const all = [...fromRecord, ...fromPrometheus];
        return {
          ok: all.length === 0,
          measured: `${fromRecord.length} from the record, ${fromPrometheus.length} from Prometheus${all.length ? ` (${all[0]?.slice(0, 80)})` : ""}`,
        };
      } finally {
        await front?.close();
      }
    },
  },
  {
    id: "10f",
    title: "Prometheus echoes the URL (token in its path) in its errors mid-rollout",
    must: "0 secrets in the cluster (annotation, events) or any other channel",
    run: echoedSecret(
      "tok_path0123456789abcdef",
      (u) => `${u}/tok_path0123456789abcdef`,
      undefined,
      "/tok_path0123456789abcdef",
    ),
  },
  {
    id: "10g",
    title: "Prometheus echoes the api key of `prometheus-url`'s query in its errors mid-rollout",
    must: "0 secrets in the cluster (annotation, events) or any other channel",
    run: echoedSecret("pk_live_query0123456789", (u) => `${u}/?api_key=pk_live_query0123456789`, undefined),
  },
  {
    id: "10h",
    title: "Prometheus echoes the Authorization header's value in its errors mid-rollout",
    must: "0 secrets in the cluster (annotation, events) or any other channel",
    run: echoedSecret(
      "glc_header0123456789abcdef",
      (u) => u,
      "Authorization: Bearer glc_header0123456789abcdef",
    ),
  },
  {
    id: "10i",
    title: "`Retry-After: 60` on a comment update mid-rollout",
    must: "the final PR comment is written (not left 'In progress')",
    run: () =>
      withMesh(HEALTHY, async (mesh) => {
        mesh.github.faultPlan.secondaryRateLimit({
          method: "PATCH",
          path: /\/issues\/comments\//,
          retryAfterSeconds: 60,
        });
        const run = await runTimed(mesh, { inputs: { stages: "10,100" }, timeoutMs: 170_000 });
        const body = botComments(mesh, PULL_REQUEST).at(-1) ?? "";
        const headline = /### ([^:]+):/.exec(body)?.[1] ?? "none";
        return {
          ok: run.outputs.result === "promoted" && /Promoted/.test(headline),
          measured: `final comment headline "${headline}"; result ${run.outputs.result ?? "none"}; took ${((run.endedAt - run.startedAt) / 1000).toFixed(0)} s`,
        };
      }),
  },
  {
    id: "10j",
    title: "GitHub answers 422 'body is too long' to every report over 2,000 characters",
    must: "the final comment is written, shortened; at most 3 rejected writes",
    run: () =>
      withMesh(FAILING, async (mesh) => {
        let rejected = 0;
        mesh.github.fault = (r) => {
          const body = (r.body as { body?: unknown } | undefined)?.body;
          if (!/\/comments/.test(r.path) || typeof body !== "string" || body.length <= 2000) return undefined;
          rejected++;
          return {
            status: 422,
            headers: {},
            body: TOO_LONG,
          };
        };
        const run = await runTimed(mesh, {});
        const body = botComments(mesh, PULL_REQUEST).at(-1) ?? "";
        const headline = /### ([^:]+):/.exec(body)?.[1] ?? "none";
        return {
          ok: /Rolled back/.test(headline) && rejected <= 3,
          measured: `final comment headline "${headline}" (${body.length} chars); ${rejected} write(s) rejected as too long; result ${run.outputs.result ?? "none"}`,
        };
      }),
  },
  {
    id: "10k",
    title: "`stable-host` names a host no route sends to (host split)",
    must: "the error names `stable-host`",
    run: () =>
      withMesh({ ...HEALTHY, prometheus: false }, async (mesh) => {
        const run = await runTimed(mesh, {
          inputs: {
            "stable-subset": "",
            "canary-subset": "",
            "stable-host": "backend-stable-typo",
            "canary-host": "backend",
            "skip-analysis": "true",
          },
        });
        const error = errors(run);
        return {
          ok: run.exitCode !== 0 && error.includes("stable-host") && storedWrites(mesh).length === 0,
          measured: `exit ${run.exitCode}; ${storedWrites(mesh).length} write(s); says: ${error.slice(0, 200)}`,
        };
      }),
  },
  {
    id: "10l",
    title: "`prometheus-headers: Authorization: Bearer <token>`",
    must: "the token is registered as a secret on its own, not only as `Bearer <token>`",
    run: () =>
      withMesh({ ...HEALTHY, prometheus: false }, async (mesh) => {
        const token = "glc_bearer0123456789abcdef";
        const run = await runTimed(mesh, {
          inputs: { "prometheus-headers": `Authorization: Bearer ${token}`, command: "status" },
        });
        const masks = run.stdout.split("\n").filter((l) => l.startsWith("::add-mask::"));
        const alone = masks.includes(`::add-mask::${token}`);
        return {
          ok: alone,
          measured: `token ${alone ? "masked on its own" : "masked only as part of a longer value"} (${masks.length} masks)`,
        };
      }),
  },
];

/** Another app's Deployment, `payments`, in the mesh's namespace: what a forged record may name. */
function createPayments(mesh: Mesh, replicas: number) {
  const apps = mesh.apps;
  if (!apps) throw new Error("no Deployment controller");
  apps.create(
    deploymentManifest({
      name: "payments",
      namespace: NAMESPACE,
      labels: { app: "payments" },
      image: "registry.example/payments:v7",
      replicas,
    }),
  );
  return apps;
}

export const recordAndTextCases: FaultCase[] = [...forgedRecordCases, ...textAndSecretCases];
