/**
 * Issue 12, items 7 and 8: bad inputs are refused before any call with an error naming the input;
 * kubeconfig errors name `kubeconfig`; no credential reaches any channel.
 */
import { load } from "js-yaml";
import { freePort } from "../mesh/prometheus.ts";
import { actionDefaults, runAction } from "../support/action-runner.ts";
import { startConnectionRecorder } from "../support/connection-recorder.ts";
import { SlowProxy } from "../support/slow-proxy.ts";
import { BAD_INPUTS, type BadInput, kubeconfigFor } from "./bad-inputs.ts";
import {
  currentVs,
  errors,
  FAILING,
  HEALTHY,
  runTimed,
  secretsFound,
  weightsOf,
  withMesh,
} from "./harness.ts";
import type { FaultCase } from "./table.ts";

/**
 * Runs the action with everything pointing at a connection recorder, every other action.yml input
 * at its default as GitHub's runner passes it; true when refused before any call.
 */
async function refusedBeforeAnyCall([input, overrides]: BadInput): Promise<string | undefined> {
  const recorder = await startConnectionRecorder();
  try {
    const run = await runAction({
      inputs: {
        ...actionDefaults({ "github.token": "ghs_exampletoken0123456789" }),
        "virtual-service": "backend",
        namespace: "shop",
        "stable-subset": "v1",
        "canary-subset": "v2",
        "prometheus-url": recorder.url,
        kubeconfig: kubeconfigFor(`https://127.0.0.1:${recorder.port}`),
        "github-token": "ghs_exampletoken0123456789",
        ...overrides,
      },
      env: { GITHUB_API_URL: recorder.url, GITHUB_REPOSITORY: "acme/shop", GITHUB_EVENT_NAME: "push" },
      timeoutMs: 20_000,
    });
    const error = errors(run);
    const value = Object.values(overrides)[0] ?? "";
    const what = `${input} ${JSON.stringify(value.length > 24 ? `${value.slice(0, 20)}…` : value)}`;
    if (run.exitCode === 0) return `${what}: accepted`;
    if (recorder.connections() > 0) return `${what}: ${recorder.connections()} call(s) before failing`;
    // The issue lets an unknown context be reported against `kubeconfig` or `context`.
    const names = input === "context" ? ["context", "kubeconfig"] : [input];
    if (!names.some((n) => error.includes(`'${n}'`)))
      return `${what}: error does not name it (${error.slice(0, 60)})`;
    return undefined;
  } finally {
    await recorder.close();
  }
}

/** Runs `items` through `fn`, `width` at a time. */
async function inBatches<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width)
    out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  return out;
}

export const inputAndSecretCases: FaultCase[] = [
  {
    id: "7a",
    title: `${BAD_INPUTS.length} bad inputs (durations past 6 h/Node's timer limit, CR and non-Latin-1 headers, a Content-Type override, kubeconfig, the contract's basics, custom checks)`,
    must: "every one refused before any call, naming its input; none let through",
    run: async () => {
      const failures = (await inBatches(BAD_INPUTS, 4, refusedBeforeAnyCall)).filter((f) => f !== undefined);
      const refused = BAD_INPUTS.length - failures.length;
      return {
        ok: failures.length === 0,
        measured: `${refused}/${BAD_INPUTS.length} refused before any call${failures.length ? `; not: ${failures.join("; ")}` : ""}`,
      };
    },
  },
  {
    id: "7b",
    title: "kubeconfig problems found by calling: server unreachable; no kubeconfig anywhere",
    must: "the error names the `kubeconfig` input",
    run: async () => {
      const recorder = await startConnectionRecorder();
      try {
        const closed = await freePort();
        const base = {
          "virtual-service": "backend",
          namespace: "shop",
          "stable-subset": "v1",
          "canary-subset": "v2",
          "prometheus-url": recorder.url,
          "github-token": "ghs_exampletoken0123456789",
        };
        const env = {
          GITHUB_API_URL: recorder.url,
          GITHUB_REPOSITORY: "acme/shop",
          GITHUB_EVENT_NAME: "push",
        };
        const variants: Array<[string, Record<string, string>]> = [
          ["unreachable", { ...base, kubeconfig: kubeconfigFor(`https://127.0.0.1:${closed}`) }],
          ["missing", base],
        ];
        const named = await Promise.all(
          variants.map(async ([name, inputs]) => {
            const run = await runAction({ inputs, env, timeoutMs: 60_000 });
            return [
              name,
              run.exitCode !== 0 && /'kubeconfig'|kubeconfig/.test(errors(run)),
              errors(run),
            ] as const;
          }),
        );
        return {
          ok: named.every(([, ok]) => ok),
          measured: named
            .map(([name, ok, error]) => `${name}: ${ok ? "names it" : `does not (${error.slice(0, 70)})`}`)
            .join("; "),
        };
      } finally {
        await recorder.close();
      }
    },
  },
  {
    id: "8a",
    title: "an api key in `prometheus-url`'s query string, Prometheus unreachable",
    must: "0 secrets in any channel (logs as the runner masks them, summary, outputs, PR, Kubernetes writes)",
    run: () =>
      withMesh({ ...HEALTHY, prometheus: false }, async (mesh) => {
        const secret = "pk_live_query0123456789";
        const closed = await freePort();
        const run = await runTimed(mesh, {
          inputs: { "prometheus-url": `http://127.0.0.1:${closed}/?api_key=${secret}` },
          timeoutMs: 60_000,
        });
        const found = secretsFound(run, mesh, [secret]);
        return {
          ok: found.length === 0,
          figures: { secretsFound: found.length },
          measured: `${found.length} found${found.length ? ` (${found.join(", ")})` : ""}; exit ${run.exitCode}`,
        };
      }),
  },
  {
    id: "8b",
    title: "a token in `prometheus-url`'s path and an Authorization header, a whole rollout",
    must: "0 secrets in any channel",
    run: async () => {
      let proxy: SlowProxy | undefined;
      try {
        return await withMesh(HEALTHY, async (mesh) => {
          const pathToken = "tok_path0123456789abcdef";
          const headerToken = "glc_header0123456789abcdef";
          proxy = await new SlowProxy({
            target: mesh.prometheus?.url ?? "",
            stripPrefix: `/${pathToken}`,
          }).start();
          const run = await runTimed(mesh, {
            inputs: {
              "prometheus-url": `${proxy.url}/${pathToken}`,
              "prometheus-headers": `Authorization: Bearer ${headerToken}`,
              stages: "10,100",
            },
          });
          const found = secretsFound(run, mesh, [pathToken, headerToken]);
          return {
            ok: found.length === 0 && run.exitCode === 0,
            figures: { secretsFound: found.length },
            measured:
              `${found.length} found${found.length ? ` (${found.join(", ")})` : ""}; result ${run.outputs.result ?? "none"}` +
              (run.exitCode === 0
                ? ""
                : `; says: ${errors(run).replaceAll(pathToken, "<path token>").slice(0, 160)}`),
          };
        });
      } finally {
        await proxy?.stop();
      }
    },
  },
  {
    id: "8c",
    title: "a one-line JSON kubeconfig, failing canary",
    must: "its token is masked on its own; 0 secrets in any channel",
    run: () =>
      withMesh(FAILING, async (mesh) => {
        const token = "kube-token-0123456789abcdef";
        mesh.kube.grant(token, { user: "system:serviceaccount:shop:canary-action", rules: "all" });
        const kubeconfig = JSON.stringify(load(mesh.kube.kubeconfig(token, "shop")));
        const run = await runTimed(mesh, { inputs: { kubeconfig } });
        const ownMask = run.stdout.split("\n").includes(`::add-mask::${token}`);
        const found = secretsFound(run, mesh, [token]);
        return {
          ok: ownMask && found.length === 0,
          figures: { secretsFound: found.length },
          measured: `token ${ownMask ? "masked on its own" : "masked only inside the whole document"}; ${found.length} found; final ${weightsOf(currentVs(mesh))}`,
        };
      }),
  },
];
