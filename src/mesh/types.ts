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

export interface HttpRoute {
  name?: string;
  match?: unknown[];
  route?: RouteDestination[];
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
    [field: string]: unknown;
  };
}

export interface PodSummary {
  name: string;
  ready: boolean;
  hasSidecar: boolean;
  containers: string[];
}
