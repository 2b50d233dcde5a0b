/** The parts of Istio's and Kubernetes' other objects the mesh adapter reads (the VirtualService is the core's: src/rollout/model/virtual-service.ts). */
import type { ObjectMeta } from "../rollout/model/virtual-service.ts";

export interface DestinationRule {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: {
    host: string;
    subsets?: Array<{ name: string; labels?: Record<string, string> }>;
    /** Namespaces the rule is visible to: absent or `*` everywhere, `.` its own namespace. */
    exportTo?: string[];
    /** A rule with a selector applies only to the workloads it selects (never to every client). */
    workloadSelector?: { matchLabels?: Record<string, string> };
    [field: string]: unknown;
  };
}

/** A host Istio knows without a Kubernetes Service: its workloads, or external endpoints. */
export interface ServiceEntry {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: {
    hosts?: string[];
    exportTo?: string[];
    /** The pods (and WorkloadEntries) behind the hosts, in the ServiceEntry's namespace. */
    workloadSelector?: { labels?: Record<string, string> };
    endpoints?: unknown[];
    location?: string;
    resolution?: string;
    [field: string]: unknown;
  };
}

export interface PodSummary {
  name: string;
  ready: boolean;
  hasSidecar: boolean;
  containers: string[];
  /** The pod's own `istio.io/dataplane-mode` label (`ambient`, or `none` to opt out of its namespace's). */
  dataplaneLabel?: string;
  /** istio-cni marked the pod captured by ztunnel (`ambient.istio.io/redirection: enabled`). */
  ambientRedirected?: boolean;
}

/** The parts of a Gateway API Gateway that tell whether an ambient waypoint can serve. */
export interface Gateway {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: { gatewayClassName?: string; [field: string]: unknown };
  status?: {
    conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }>;
    [field: string]: unknown;
  };
}
