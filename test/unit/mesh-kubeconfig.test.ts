/**
 * Kubeconfig problems name the input that caused them ('kubeconfig' or 'context', and the file the
 * action fell back to), never quote the document, and an unreachable server is told apart from a
 * slow one.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MeshError } from "../../src/mesh/errors.ts";
import { loadKubeConfig } from "../../src/mesh/kubeconfig.ts";
import { KubernetesMeshApi } from "../../src/mesh/kubernetes.ts";
import { isTransient } from "../../src/retry.ts";
import { kubeconfigYaml } from "../support/kubeconfig.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kubeconfig-test-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = "sk-do-not-print-4f1c";
const load = (options: Parameters<typeof loadKubeConfig>[0], env: NodeJS.ProcessEnv = { HOME: dir }) => {
  try {
    loadKubeConfig(options, env);
  } catch (error) {
    expect(error).toBeInstanceOf(MeshError);
    expect((error as Error).message).not.toContain(SECRET);
    return (error as Error).message;
  }
  return "loaded";
};

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

describe("kubeconfig errors name the input", () => {
  it("no kubeconfig anywhere", () => {
    expect(load({})).toBe(
      `Input 'kubeconfig': not set, and there is no KUBECONFIG, no ${dir}/.kube/config and no in-cluster service account: set the kubeconfig input (for example kubeconfig: \${{ secrets.KUBECONFIG }})`,
    );
  });

  it("KUBECONFIG naming a file that does not exist", () => {
    expect(load({}, { HOME: dir, KUBECONFIG: `${dir}/nope.yaml` })).toBe(
      `Input 'kubeconfig' (not set; read from KUBECONFIG=${dir}/nope.yaml): the file ${dir}/nope.yaml does not exist`,
    );
  });

  it("content that is not a kubeconfig, without quoting it", () => {
    expect(
      load({ kubeconfig: `apiVersion: v1\nusers: [{name: a, user: {token: ${SECRET}}\n  x: {` }),
    ).toMatch(
      /^Input 'kubeconfig': is not a valid kubeconfig \(its YAML or JSON could not be parsed; the content is not shown/,
    );
  });

  it("an unknown context, naming the file it was looked for in", () => {
    const file = join(dir, "config.yaml");
    writeFileSync(
      file,
      kubeconfigYaml({ server: "https://127.0.0.1:6443", token: SECRET, context: "staging" }),
    );
    expect(load({ context: "prod" }, { HOME: dir, KUBECONFIG: file })).toBe(
      `Input 'context': the kubeconfig from KUBECONFIG=${file} has no context named "prod" (it has staging)`,
    );
    expect(load({ context: "staging" }, { HOME: dir, KUBECONFIG: file })).toBe("loaded");
  });

  it("a server that is not a URL", () => {
    expect(load({ kubeconfig: kubeconfigYaml({ server: "kube.internal:6443", token: SECRET }) })).toBe(
      `Input 'kubeconfig': cluster "emulator" has server "kube.internal:6443", which is not an http(s) URL (expected for example https://10.0.0.1:6443)`,
    );
  });

  it("an unreachable server, as read from ~/.kube/config", async () => {
    const port = await closedPort();
    const home = mkdtempSync(join(dir, "home-"));
    const file = join(home, ".kube", "config");
    mkdirSync(join(home, ".kube"));
    writeFileSync(file, kubeconfigYaml({ server: `https://127.0.0.1:${port}`, token: SECRET }));
    const api = new KubernetesMeshApi(loadKubeConfig({}, { HOME: home }));
    const error = await api.getVirtualService("shop", "backend").catch((e) => e);
    expect(error.message).toBe(
      `Input 'kubeconfig' (not set; read from ${file}): the Kubernetes API server https://127.0.0.1:${port} is unreachable (ECONNREFUSED) while trying to get virtualservices.networking.istio.io shop/backend`,
    );
    // Still worth retrying: an API server that is restarting refuses connections for a while.
    expect(isTransient(error)).toBe(true);
  });
});
