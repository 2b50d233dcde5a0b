/**
 * The Gateway API HTTPRoute (gateway.networking.k8s.io/v1) as the action reads it: the parts it
 * touches (rules and their backendRefs' weights, the route's parents and their status); everything
 * else passes through untouched. The core's model beside the VirtualService's, which the mesh
 * adapter reads and writes (src/mesh/http-route-rules.ts).
 */
import type { ObjectMeta } from "./virtual-service.ts";

export const GATEWAY_API_GROUP = "gateway.networking.k8s.io";

/** A backendRef: by default a Service (group "", kind Service) in the route's namespace, weight 1. */
export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  /** Proportional (not a percentage): 0 to 1,000,000, default 1. */
  weight?: number;
  [field: string]: unknown;
}

export interface HttpRouteRule {
  /** Gateway API v1.2+: a rule's name, which the `routes` input selects. */
  name?: string;
  /** Absent: the API server defaults it to one path prefix "/" match (everything). */
  matches?: unknown[];
  backendRefs?: BackendRef[];
  [field: string]: unknown;
}

/** A Gateway (north-south) or, with group "" and kind Service, a Service (east-west, GAMMA). */
export interface ParentRef {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface RouteParentStatus {
  parentRef: ParentRef;
  controllerName?: string;
  conditions?: Condition[];
}

export interface GatewayHttpRoute {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: {
    parentRefs?: ParentRef[];
    hostnames?: string[];
    rules?: HttpRouteRule[];
    [field: string]: unknown;
  };
  status?: { parents?: RouteParentStatus[] };
}
