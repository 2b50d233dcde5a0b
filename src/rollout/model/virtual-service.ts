/**
 * The VirtualService as the action reads it (the parts of Istio's and Kubernetes' object it touches;
 * everything else passes through untouched): the core's model, which the mesh adapter reads and writes.
 */
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

/**
 * The object a traffic port manages, as the core sees it: a VirtualService or a Gateway API
 * HTTPRoute (src/rollout/model/http-route.ts). The core reads only its kind and metadata (names,
 * managedFields for who last wrote it).
 */
export interface RouteObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

/** `VirtualService shop/reviews`, `HTTPRoute shop/reviews`. */
export function describeObject(o: RouteObject): string {
  return `${o.kind} ${o.metadata.namespace ?? "default"}/${o.metadata.name}`;
}
