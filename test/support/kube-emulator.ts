/** The Kubernetes API emulator per test, and the real kubectl when the machine has it. */
import { execFile, execFileSync } from "node:child_process";
import { afterEach, beforeEach } from "vitest";
import { type AuditEntry, KubeApiEmulator } from "../mesh/kube-api.ts";

/** A fresh emulator for each test (seeded by `seed`), stopped after it; read it inside the test. */
export function useKubeEmulator(seed?: (kube: KubeApiEmulator) => void): () => KubeApiEmulator {
  let kube: KubeApiEmulator | undefined;
  beforeEach(async () => {
    kube = await new KubeApiEmulator().start();
    seed?.(kube);
  });
  afterEach(async () => {
    await kube?.stop();
    kube = undefined;
  });
  return () => {
    if (!kube) throw new Error("the Kubernetes emulator runs only inside a test");
    return kube;
  };
}

/** The writes in an audit log (patch, update, create). */
export const writes = (audit: AuditEntry[]): AuditEntry[] =>
  audit.filter((e) => ["patch", "update", "create"].includes(e.verb));

/** Whether Debian's kubectl is installed; when not, says which checks are skipped and how to install it. */
export function kubectlInstalled(skipped: string): boolean {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    console.warn(`kubectl is not installed: skipping ${skipped} (sudo apt-get install -y kubernetes-client)`);
    return false;
  }
}

/** Runs kubectl with `args`, without blocking the emulator, which shares this process's event loop. */
export function runKubectl(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) =>
    execFile("kubectl", args, { encoding: "utf8", timeout: timeoutMs }, (error, stdout, stderr) =>
      done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}
