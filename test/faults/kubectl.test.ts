/**
 * The Kubernetes API emulator's fault hooks as the real `kubectl` sees them: the same client-go
 * that reads a real kube-apiserver's 429 (honouring `Retry-After`, retrying up to 10 times), and
 * prints each `Status` as "Error from server (Reason): message". Skipped, with the reason, when
 * kubectl is not installed (`sudo apt-get install -y kubernetes-client`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NAMESPACE, SERVICE, seedRunbook } from "../mesh/fixtures.ts";
import { KubeApiEmulator } from "../mesh/kube-api.ts";
import { TOO_MANY_REQUESTS } from "../mesh/kube-faults.ts";
import { kubectlInstalled, runKubectl } from "../support/kube-emulator.ts";

const installed = kubectlInstalled("the check of the emulator's faults against kubectl");

let kube: KubeApiEmulator;
let dir: string;

beforeEach(async () => {
  kube = await new KubeApiEmulator().start();
  seedRunbook(kube);
  dir = mkdtempSync(join(tmpdir(), "kubectl-"));
  writeFileSync(join(dir, "config"), kube.kubeconfig());
});
afterEach(async () => {
  await kube.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** kubectl against the emulator's kubeconfig. */
const kubectl = (...args: string[]) =>
  runKubectl(["--kubeconfig", join(dir, "config"), "-n", NAMESPACE, ...args], 30_000);

const VS = `virtualservices.networking.istio.io`;
const vsRequests = () => kube.audit.filter((e) => e.resource === "virtualservices");

describe.skipIf(!installed)("the emulator's faults as kubectl sees them", () => {
  it("429 with Retry-After: kubectl retries 10 times as from kube-apiserver, then reports TooManyRequests", async () => {
    kube.faultPlan.throttle({ resource: "virtualservices", retryAfterSeconds: 0, count: 100 });
    const run = await kubectl("get", VS, SERVICE);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`Error from server (TooManyRequests): ${TOO_MANY_REQUESTS}`);
    expect(vsRequests().map((e) => e.code)).toEqual(Array(11).fill(429));
  });

  it("one 429 with Retry-After: 1: kubectl waits the second it was told, then succeeds", async () => {
    kube.faultPlan.throttle({ resource: "virtualservices", retryAfterSeconds: 1, count: 1 });
    const run = await kubectl("get", VS, SERVICE, "-o", "name");
    expect(run.code, run.stderr).toBe(0);
    const [first, second] = vsRequests().map((e) => Date.parse(e.time));
    expect((second as number) - (first as number)).toBeGreaterThanOrEqual(950);
  });

  it("a 5xx window and a 409 are Status errors kubectl names by reason", async () => {
    kube.faultPlan.failFor(10_000, { resource: "virtualservices", status: 500 });
    expect((await kubectl("get", VS, SERVICE)).stderr).toContain(
      "Error from server (InternalError): Internal error occurred: etcdserver: request timed out",
    );
    kube.faultPlan.clear();
    kube.faultPlan.conflictStorm({ resource: "virtualservices", count: 1 });
    expect((await kubectl("annotate", VS, SERVICE, "team=payments")).stderr).toContain(
      `Error from server (Conflict): Operation cannot be fulfilled on ${VS} "${SERVICE}"`,
    );
  });

  it("a write applied but unanswered: kubectl fails, yet the change is stored", async () => {
    kube.faultPlan.applyThenDrop({ resource: "virtualservices", outcome: "drop" });
    const run = await kubectl("annotate", VS, SERVICE, "team=payments");
    expect(run.code).not.toBe(0);
    expect(kube.get("virtualservices", NAMESPACE, SERVICE)?.metadata.annotations?.team).toBe("payments");
  });
});
