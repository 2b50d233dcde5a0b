/** The parts of Istio's and Kubernetes' objects the action reads. Everything else passes through untouched. */

export interface Destination {
  host: string;
  subset?: string;
  port?: { number?: number; name?: string };
}

export interface RouteDestination {
  destination: Destination;
  weight?: number;
  headers?: unknown;
}

/** Istio's Percent: a double from 0 to 100. */
export interface Percent {
  value?: number;
}

export interface HttpRoute {
  name?: string;
  match?: unknown[];
  route?: RouteDestination[];
  /** Read only to check them (src/mesh/mirrors.ts): the action never changes a mirror. */
  mirror?: Destination;
  mirrorPercentage?: Percent;
  /** The deprecated integer form of mirrorPercentage. */
  mirrorPercent?: number;
  mirrors?: Array<{ destination: Destination; percentage?: Percent }>;
  [field: string]: unknown;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface VirtualService {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: {
    hosts?: string[];
    http?: HttpRoute[];
    /** Read only to refuse them: the action shifts http routes alone. */
    tcp?: Array<{ route?: RouteDestination[]; [field: string]: unknown }>;
    tls?: Array<{ route?: RouteDestination[]; [field: string]: unknown }>;
    [field: string]: unknown;
  };
}

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
}
