/**
 * An in-memory WorkloadPort: two Deployments whose pod templates are image maps, a stable that can
 * be made unable to start (as an image that never pulls), and a log of the calls in order.
 */
import type { CopiedTemplate, WorkloadPort, WorkloadStatus } from "../../src/rollout/ports.ts";

interface FakeDeployment {
  name: string;
  images: Record<string, string>;
  replicas: number;
}

export class FakeWorkloads implements WorkloadPort {
  readonly stable: FakeDeployment = { name: "shop/backend-v1", images: { app: "backend:v1" }, replicas: 3 };
  readonly canary: FakeDeployment = { name: "shop/backend-v2", images: { app: "backend:v2" }, replicas: 3 };
  /** The stable's pods never get ready (a bad image, a missing secret). */
  stableBroken = false;
  canaryBroken = false;
  resolveError: Error | undefined;
  /** Someone else's write to the stable after the copy (what the managedFields would name). */
  stableChangedBy: string | undefined;
  readonly calls: string[] = [];
  /** Where the traffic was at each call, when a test wants to check ordering against writes. */
  onCall: ((call: string) => void) | undefined;

  private log(call: string): void {
    this.calls.push(call);
    this.onCall?.(call);
  }

  private status(d: FakeDeployment, broken: boolean): WorkloadStatus {
    // As kubectl judges it: a Deployment scaled to 0 has rolled out (and serves nothing).
    const ready = !broken;
    return {
      name: d.name,
      ready,
      summary: broken
        ? `0/${d.replicas} ready, image ${Object.values(d.images).join(", ")}`
        : `${d.replicas}/${d.replicas} ready, image ${Object.values(d.images).join(", ")}`,
      problems: broken ? ["pod backend-1: ImagePullBackOff"] : [],
      images: { ...d.images },
      replicas: d.replicas,
      readyPods: ready ? d.replicas : 0,
    };
  }

  async resolve() {
    this.log("resolve");
    if (this.resolveError) throw this.resolveError;
    return { stable: this.stable.name, canary: this.canary.name };
  }
  async copyCanaryToStable(): Promise<CopiedTemplate> {
    this.log("copy");
    this.stable.images = { ...this.canary.images };
    return { template: { ...this.stable.images }, at: new Date() };
  }
  async servesPromoted(copied: CopiedTemplate) {
    this.log("servesPromoted");
    const same = JSON.stringify(copied.template) === JSON.stringify(this.stable.images);
    const enough = this.stable.replicas > 0 && this.stable.replicas >= this.canary.replicas;
    if (same && enough) return undefined;
    return `Deployment ${this.stable.name} cannot take all traffic: ${same ? "" : "its pod template is no longer the promoted one; "}${enough ? "" : `it has ${this.stable.replicas} pods`}${this.stableChangedBy ? `; changed since the copy by ${this.stableChangedBy}` : ""}`;
  }
  async waitStable() {
    this.log("waitStable");
    return this.status(this.stable, this.stableBroken);
  }
  async stableStatus() {
    this.log("stableStatus");
    return this.status(this.stable, this.stableBroken);
  }
  async scaleCanary(replicas: number | "stable") {
    this.log(`scaleCanary ${replicas}`);
    this.canary.replicas = replicas === "stable" ? this.stable.replicas : replicas;
  }
  async waitCanary() {
    this.log("waitCanary");
    return this.status(this.canary, this.canaryBroken);
  }
}
