/**
 * "Rolled out?" as `kubectl rollout status` judges a Deployment (kubectl's DeploymentStatusViewer,
 * staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go), plus what the mesh needs on
 * top: every pod the Deployment selects ready with its istio-proxy sidecar ready (in ambient mode,
 * captured by ztunnel and ready). Pure: the
 * adapter reads the objects, this judges them and names what is wrong for a person.
 */
import { capturedByZtunnel, runningContainerStatuses } from "../mesh/containers.ts";

type Condition = { type?: string; status?: string; reason?: string; message?: string };

export interface DeploymentStatusLike {
  metadata?: { generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    conditions?: Condition[];
  };
}

export interface RolloutVerdict {
  done: boolean;
  /** kubectl's message while waiting, or its error. */
  message: string;
  /** The Deployment exceeded its progressDeadlineSeconds: waiting longer will not help. */
  deadlineExceeded: boolean;
}

/** kubectl's judgement of the Deployment object alone. */
export function rolloutVerdict(d: DeploymentStatusLike): RolloutVerdict {
  const s = d.status ?? {};
  const waiting = (message: string): RolloutVerdict => ({ done: false, message, deadlineExceeded: false });
  if ((d.metadata?.generation ?? 0) > (s.observedGeneration ?? 0))
    return waiting("waiting for the Deployment's spec update to be observed");
  const progressing = (s.conditions ?? []).find((c) => c.type === "Progressing");
  if (progressing?.reason === "ProgressDeadlineExceeded")
    return { done: false, message: "exceeded its progress deadline", deadlineExceeded: true };
  const desired = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  if (updated < desired) return waiting(`${updated} out of ${desired} new replicas have been updated`);
  const total = s.replicas ?? 0;
  if (total > updated) return waiting(`${total - updated} old replicas are pending termination`);
  const available = s.availableReplicas ?? 0;
  if (available < updated) return waiting(`${available} of ${updated} updated replicas are available`);
  return { done: true, message: "successfully rolled out", deadlineExceeded: false };
}

export interface PodLike {
  metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { initContainers?: Array<{ name: string; restartPolicy?: string }> };
  status?: {
    phase?: string;
    conditions?: Condition[];
    containerStatuses?: ContainerStatusLike[];
    initContainerStatuses?: ContainerStatusLike[];
  };
}

interface ContainerStatusLike {
  name: string;
  ready?: boolean;
  state?: {
    waiting?: { reason?: string; message?: string };
    terminated?: { reason?: string; exitCode?: number };
  };
}

export interface PodVerdict {
  name: string;
  ready: boolean;
  /** Why not ready: `pod backend-v1-abc-xyz: container backend waiting: CrashLoopBackOff (back-off 10s)`. */
  problems: string[];
}

/**
 * A pod is ready for the mesh when its Ready condition is true and its istio-proxy (a container or
 * a native sidecar) is ready; in ambient mode, when its Ready condition is true.
 */
export function podVerdict(pod: PodLike): PodVerdict {
  const name = pod.metadata?.name ?? "";
  const statuses = runningContainerStatuses(pod);
  const problems: string[] = [];
  for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = s.state?.waiting;
    const terminated = s.state?.terminated;
    if (waiting?.reason && waiting.reason !== "ContainerCreating" && waiting.reason !== "PodInitializing")
      problems.push(
        `pod ${name}: container ${s.name} waiting: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ""}`,
      );
    else if (terminated && terminated.reason !== "Completed")
      problems.push(
        `pod ${name}: container ${s.name} terminated: ${terminated.reason ?? `exit code ${terminated.exitCode}`}`,
      );
  }
  const podReady = (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
  const sidecar = statuses.find((s) => s.name === "istio-proxy");
  // Ambient: a pod ztunnel captures has no istio-proxy, and is ready for the mesh when it is ready.
  const ambient = !sidecar && capturedByZtunnel(pod.metadata);
  if (statuses.length > 0 && !sidecar && !ambient)
    problems.push(
      `pod ${name}: no istio-proxy sidecar and not captured by ztunnel (enable sidecar injection, or ambient mode: istio.io/dataplane-mode=ambient)`,
    );
  else if (sidecar && !sidecar.ready && problems.length === 0)
    problems.push(`pod ${name}: istio-proxy not ready`);
  if (!podReady && problems.length === 0)
    problems.push(`pod ${name}: not ready (${pod.status?.phase ?? "Pending"})`);
  const meshReady = ambient || sidecar?.ready === true;
  return { name, ready: podReady && meshReady && problems.length === 0, problems };
}
