/**
 * A Kubernetes API server emulator for what the action calls, faithful enough that the real
 * `@kubernetes/client-node` runs against it unmodified:
 *
 * - HTTPS on loopback with a throwaway self-signed CA (openssl), carried in a generated kubeconfig,
 *   bearer-token authentication (401) and RBAC-style authorization per verb and resource (403);
 * - networking.istio.io v1, v1beta1 and v1alpha3 (one storage) VirtualService, DestinationRule and
 *   ServiceEntry, and gateway.networking.k8s.io v1 HTTPRoute and Gateway (with the status istiod
 *   writes, gateway-api.ts): get, list, create, replace (update), patch (JSON Patch and JSON merge patch); core
 *   v1 namespaces and pods: get, list with `labelSelector`; the discovery documents;
 * - resourceVersion on every write, uid, generation; 409 Conflict for a stale replace; 422 Invalid
 *   for a JSON Patch that does not apply (a failed `test` included), as kube-apiserver since
 *   kubernetes PR 68346; every error a `Status`;
 * - an admission step standing in for istiod's validating webhook and the CRD schema;
 * - an audit log, out-of-band edits (another writer) and injected faults.
 */
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { dump } from "js-yaml";
import type { WorkloadsApi } from "./deployments-api.ts";
import {
  defaultHttpRoute,
  GATEWAY_GROUP,
  gatewayStatus,
  httpRouteStatus,
  invalidHttpRoute,
} from "./gateway-api.ts";
import { KubeFaultPlan } from "./kube-faults.ts";

export type Verb = "get" | "list" | "create" | "update" | "patch" | "delete" | "watch";
export type KubeObject = Record<string, unknown> & {
  metadata: Record<string, unknown> & {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
};

/**
 * One RBAC PolicyRule: which verbs on which resources of which API groups, and, with
 * `resourceNames`, only on the objects of those names (as RBAC: a request without a name, such as a
 * list or a create, is then not allowed by the rule).
 */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface TokenGrant {
  /** The user name the API server reports, e.g. system:serviceaccount:shop:canary-action. */
  user: string;
  /** "all" for cluster-admin, or the rules of a Role (namespaced) bound to the user. */
  rules: "all" | PolicyRule[];
  /** For namespaced Roles: the namespaces the rules apply in (undefined: every namespace). */
  namespaces?: string[];
}

export interface AuditEntry {
  time: string;
  user: string;
  verb: Verb;
  group: string;
  version: string;
  resource: string;
  namespace?: string;
  name?: string;
  method: string;
  path: string;
  contentType?: string;
  requestBody?: unknown;
  code: number;
  /** The object as stored after a successful write. */
  object?: KubeObject;
  /** Fault hooks: the write was applied but its answer was dropped or left hanging. */
  unanswered?: "drop" | "hang";
}

export type Fault = {
  status: 500 | 409 | 503 | "hang";
  count: number;
  match?: { verb?: Verb; resource?: string };
};

// mesh helper: faults the router's tests need. While `active()` holds (count or a window in
// virtual time) a matching request is answered with `status` and `headers` (a 429 with
// Retry-After), or, for "apply-then-reset", served and then left without an answer (a write whose
// response was lost).
export interface MeshFault {
  match?: { verb?: Verb; resource?: string };
  active: () => boolean;
  answer: { status: number; headers?: Record<string, string> } | "apply-then-reset";
}

interface ResourceType {
  group: string;
  versions: string[];
  resource: string;
  kind: string;
  namespaced: boolean;
  verbs: Verb[];
  shortNames?: string[];
}

const ISTIO_GROUP = "networking.istio.io";
const ISTIO_VERSIONS = ["v1", "v1beta1", "v1alpha3"];
const CRD_VERBS: Verb[] = ["get", "list", "create", "update", "patch", "delete", "watch"];

export const RESOURCE_TYPES: ResourceType[] = [
  {
    group: ISTIO_GROUP,
    versions: ISTIO_VERSIONS,
    resource: "virtualservices",
    kind: "VirtualService",
    namespaced: true,
    verbs: CRD_VERBS,
    shortNames: ["vs"],
  },
  {
    group: ISTIO_GROUP,
    versions: ISTIO_VERSIONS,
    resource: "destinationrules",
    kind: "DestinationRule",
    namespaced: true,
    verbs: CRD_VERBS,
    shortNames: ["dr"],
  },
  {
    group: ISTIO_GROUP,
    versions: ISTIO_VERSIONS,
    resource: "serviceentries",
    kind: "ServiceEntry",
    namespaced: true,
    verbs: CRD_VERBS,
    shortNames: ["se"],
  },
  {
    group: GATEWAY_GROUP,
    versions: ["v1"],
    resource: "httproutes",
    kind: "HTTPRoute",
    namespaced: true,
    verbs: CRD_VERBS,
  },
  {
    group: GATEWAY_GROUP,
    versions: ["v1"],
    resource: "gateways",
    kind: "Gateway",
    namespaced: true,
    verbs: CRD_VERBS,
    shortNames: ["gtw"],
  },
  {
    group: "",
    versions: ["v1"],
    resource: "pods",
    kind: "Pod",
    namespaced: true,
    verbs: ["get", "list", "watch"],
  },
  {
    group: "",
    versions: ["v1"],
    resource: "services",
    kind: "Service",
    namespaced: true,
    verbs: ["get", "list", "watch"],
  },
  {
    group: "",
    versions: ["v1"],
    resource: "namespaces",
    kind: "Namespace",
    namespaced: false,
    verbs: ["get", "list", "watch"],
  },
  // deployments helper: served by deployments-api.ts once a DeploymentController is installed.
  {
    group: "apps",
    versions: ["v1"],
    resource: "deployments",
    kind: "Deployment",
    namespaced: true,
    verbs: CRD_VERBS,
  },
  {
    group: "apps",
    versions: ["v1"],
    resource: "replicasets",
    kind: "ReplicaSet",
    namespaced: true,
    verbs: CRD_VERBS,
  },
  {
    group: "",
    versions: ["v1"],
    resource: "events",
    kind: "Event",
    namespaced: true,
    verbs: ["get", "list", "watch"],
  },
];

/** kube-apiserver's `Status` for a failure. */
export function status(
  code: number,
  reason: string | undefined,
  message: string,
  details?: Record<string, unknown>,
) {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    ...(reason ? { reason } : {}),
    ...(details ? { details } : {}),
    code,
  };
}

class HttpError extends Error {
  readonly body: ReturnType<typeof status>;
  constructor(body: ReturnType<typeof status>) {
    super(body.message);
    this.body = body;
  }
}

const clone = <T>(v: T): T => structuredClone(v);

/** RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return clone(patch);
  const result: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/** Parses and evaluates a Kubernetes label selector (equality- and set-based). */
export function matchesLabelSelector(selector: string, labels: Record<string, string>): boolean {
  const requirements = selector.match(/([^,(]+(\([^)]*\))?)/g) ?? [];
  return requirements.every((raw) => {
    const req = raw.trim();
    if (req === "") return true;
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(req);
    if (m) {
      const values = (m[3] as string).split(",").map((v) => v.trim());
      const has = (m[1] as string) in labels && values.includes(labels[m[1] as string] as string);
      return m[2] === "in" ? has : !has;
    }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(req);
    if (m) {
      const equal = labels[m[1] as string] === m[3];
      return m[2] === "!=" ? !equal : equal;
    }
    if (req.startsWith("!")) return !(req.slice(1).trim() in labels);
    if (/^[\w./-]+$/.test(req)) return req in labels;
    throw new HttpError(
      status(400, "BadRequest", `unable to parse requirement: found '${req}', expected: identifier`),
    );
  });
}

/** A throwaway self-signed CA/serving certificate for 127.0.0.1 and localhost. */
function makeCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), "kube-emulator-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=kube-emulator",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyCertSign",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    return {
      key: readFileSync(join(dir, "key.pem"), "utf8"),
      cert: readFileSync(join(dir, "cert.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface KubeApiEmulatorOptions {
  /** Bearer tokens and what they may do. Default: one token "admin-token" with every permission. */
  tokens?: Record<string, TokenGrant>;
}

export class KubeApiEmulator {
  readonly audit: AuditEntry[] = [];
  /** Fault hooks (429, 5xx windows, held requests, writes applied but unanswered, 409 storms). */
  readonly faultPlan = new KubeFaultPlan();
  private readonly store = new Map<string, KubeObject>();
  private readonly tokens: Record<string, TokenGrant>;
  private readonly faults: Fault[] = [];
  private readonly meshFaults: MeshFault[] = []; // mesh helper
  /** deployments helper: apps/v1 workloads and events, set by `new DeploymentController(kube)`. */
  workloads?: WorkloadsApi;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  private revision = 1000;
  private server?: Server;
  private certificate?: { key: string; cert: string };
  port = 0;

  constructor(options: KubeApiEmulatorOptions = {}) {
    this.tokens = options.tokens ?? { "admin-token": { user: "kubernetes-admin", rules: "all" } };
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.certificate = makeCertificate();
    this.server = createServer({ key: this.certificate.key, cert: this.certificate.cert }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((done) => this.server?.listen(0, "127.0.0.1", done));
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("kube emulator: no port");
    this.port = address.port;
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((done) => (this.server ? this.server.close(() => done()) : done()));
  }

  /** Registers a token (for example a ServiceAccount bound to a Role) after start. */
  grant(token: string, grant: TokenGrant): void {
    this.tokens[token] = grant;
  }

  /** A kubeconfig for `token`, trusting this emulator's CA. */
  kubeconfig(token = Object.keys(this.tokens)[0] as string, namespace = "default"): string {
    return dump(
      {
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "emulator",
            cluster: {
              server: this.url,
              "certificate-authority-data": Buffer.from(this.certificate?.cert ?? "").toString("base64"),
            },
          },
        ],
        users: [{ name: "action", user: { token } }],
        contexts: [{ name: "emulator", context: { cluster: "emulator", user: "action", namespace } }],
        "current-context": "emulator",
      },
      { lineWidth: -1 },
    );
  }

  /** The next `count` matching requests answer `status` (or hang until the client gives up). */
  injectFault(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  // mesh helper
  injectMeshFault(fault: MeshFault): void {
    this.meshFaults.push(fault);
  }

  // ---- Direct access for tests and the traffic simulator (not through HTTP, not audited) ----

  private key(resource: string, namespace: string | undefined, name: string): string {
    return `${resource}/${namespace ?? ""}/${name}`;
  }

  private typeOf(resource: string): ResourceType {
    const t = RESOURCE_TYPES.find((r) => r.resource === resource);
    if (!t) throw new Error(`kube emulator: unknown resource ${resource}`);
    return t;
  }

  private nextVersion(): string {
    this.revision += 1;
    return String(this.revision);
  }

  /** Stores an object as if created through the API (no admission). */
  seed(
    resource: string,
    object: Omit<KubeObject, "metadata"> & { metadata: Partial<KubeObject["metadata"]> & { name: string } },
  ): KubeObject {
    const type = this.typeOf(resource);
    const obj = clone(object) as KubeObject;
    // One storage: objects are kept in the first (storage) version and served in the one asked for.
    obj.apiVersion = type.group ? `${type.group}/${type.versions[0]}` : "v1";
    obj.kind ??= type.kind;
    obj.metadata = {
      ...obj.metadata,
      uid: randomUUID(),
      resourceVersion: this.nextVersion(),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    if (!type.namespaced) delete obj.metadata.namespace;
    if (type.resource === "httproutes") defaultHttpRoute(obj);
    this.store.set(this.key(resource, obj.metadata.namespace, obj.metadata.name), obj);
    return clone(obj);
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.store.get(this.key(resource, namespace, name));
    return obj ? clone(obj) : undefined;
  }

  list(resource: string, namespace?: string): KubeObject[] {
    return [...this.store.entries()]
      .filter(([key]) => key.startsWith(`${resource}/`))
      .map(([, o]) => o)
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .map(clone);
  }

  /** deployments helper: deletes an object (the controller's pods, ReplicaSets, cascades). */
  remove(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = this.key(resource, namespace, name);
    const obj = this.store.get(key);
    if (!obj || !this.store.delete(key)) return undefined;
    return { ...clone(obj), metadata: { ...clone(obj.metadata), resourceVersion: this.nextVersion() } };
  }

  /** Another writer edits the object (as kubectl edit would): resourceVersion and generation move on. */
  editOutOfBand(
    resource: string,
    namespace: string | undefined,
    name: string,
    edit: (o: KubeObject) => void,
  ): KubeObject {
    const key = this.key(resource, namespace, name);
    const current = this.store.get(key);
    if (!current) throw new Error(`kube emulator: no ${resource} ${namespace}/${name}`);
    const next = clone(current);
    edit(next);
    this.commit(key, current, next);
    return clone(next);
  }

  private commit(key: string, previous: KubeObject | undefined, next: KubeObject): KubeObject {
    const prevMeta: Record<string, unknown> = previous?.metadata ?? {};
    const specChanged = JSON.stringify(previous?.spec) !== JSON.stringify(next.spec);
    next.metadata = {
      ...next.metadata,
      uid: (prevMeta.uid as string) ?? randomUUID(),
      creationTimestamp: prevMeta.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      resourceVersion: this.nextVersion(),
      generation: ((prevMeta.generation as number) ?? 0) + (previous === undefined || specChanged ? 1 : 0),
    };
    this.store.set(key, next);
    return next;
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const body = await new Promise<string>((done) => {
      let text = "";
      req.setEncoding("utf8").on("data", (c: string) => {
        text += c;
      });
      req.on("end", () => done(text));
    });
    const entry: Partial<AuditEntry> = {
      time: new Date().toISOString(),
      method: req.method ?? "GET",
      path: url.pathname + url.search,
    };
    const send = (code: number, payload: unknown) => {
      if (entry.verb) this.audit.push({ ...(entry as AuditEntry), code });
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    try {
      const auth = req.headers.authorization ?? "";
      const grant = auth.startsWith("Bearer ") ? this.tokens[auth.slice(7)] : undefined;
      if (!grant) {
        send(401, status(401, "Unauthorized", "Unauthorized"));
        return;
      }
      entry.user = grant.user;
      // deployments helper
      if (this.workloads && (await this.workloads.handle(req, res, url, body, grant))) return;
      const discovery = this.discovery(url.pathname);
      if (discovery) {
        send(200, discovery);
        return;
      }
      const route = this.route(url.pathname, req.method ?? "GET", url.searchParams);
      Object.assign(entry, route, { contentType: req.headers["content-type"] });
      if (body) entry.requestBody = safeJson(body);
      this.authorize(grant, route);
      // faults helper: the fault plan answers, holds, or lets the write through unanswered.
      const planned = this.faultPlan.decide({
        verb: route.verb,
        resource: route.resource,
        name: route.name,
        namespace: route.namespace,
        at: Date.now(),
      });
      if (planned?.kind === "answer") {
        const payload = status(planned.code, planned.reason || undefined, planned.message, {
          ...(route.name ? { name: route.name } : {}),
          group: route.group,
          kind: route.resource,
          ...(planned.headers?.["Retry-After"]
            ? { retryAfterSeconds: Number(planned.headers["Retry-After"]) }
            : {}),
        });
        this.audit.push({ ...(entry as AuditEntry), code: planned.code });
        res.writeHead(planned.code, { "content-type": "application/json", ...planned.headers });
        res.end(JSON.stringify(payload));
        return;
      }
      if (planned?.kind === "hold") {
        let gone = false;
        this.hanging.add(res);
        res.on("close", () => {
          this.hanging.delete(res);
          if (!gone) this.audit.push({ ...(entry as AuditEntry), code: 0 });
          gone = true;
        });
        await planned.released;
        if (gone || res.destroyed) return;
        gone = true;
        this.hanging.delete(res);
      }
      if (planned?.kind === "apply-then") {
        const { object } = this.serve(route, req.headers["content-type"] ?? "", body, url.searchParams);
        this.audit.push({
          ...(entry as AuditEntry),
          code: 200,
          object: object && clone(object),
          unanswered: planned.outcome,
        });
        if (planned.outcome === "drop") res.socket?.destroy();
        else this.hanging.add(res);
        return;
      }
      // mesh helper
      const meshFault = this.meshFaults.find(
        (f) =>
          (!f.match?.verb || f.match.verb === route.verb) &&
          (!f.match?.resource || f.match.resource === route.resource) &&
          f.active(),
      )?.answer;
      if (meshFault && meshFault !== "apply-then-reset") {
        if (entry.verb) this.audit.push({ ...(entry as AuditEntry), code: meshFault.status });
        res.writeHead(meshFault.status, { "content-type": "application/json", ...meshFault.headers });
        res.end(JSON.stringify(status(meshFault.status, undefined, "injected by the mesh helper")));
        return;
      }
      const fault = this.takeFault(route.verb, route.resource);
      if (fault === "hang") {
        this.hanging.add(res);
        res.on("close", () => this.hanging.delete(res));
        if (entry.verb) this.audit.push({ ...(entry as AuditEntry), code: 0 });
        return;
      }
      if (fault === 500)
        throw new HttpError(status(500, "InternalError", "Internal error occurred: injected fault"));
      if (fault === 503)
        throw new HttpError(
          status(503, "ServiceUnavailable", "the server is currently unable to handle the request"),
        );
      if (fault === 409) throw new HttpError(this.conflict(route.type, route.name ?? ""));
      const { code, payload, object } = this.serve(
        route,
        req.headers["content-type"] ?? "",
        body,
        url.searchParams,
      );
      if (object) entry.object = clone(object);
      if (meshFault === "apply-then-reset") {
        // mesh helper: applied, then the connection drops before any answer.
        if (entry.verb) this.audit.push({ ...(entry as AuditEntry), code: 0, object: entry.object });
        res.socket?.destroy();
        return;
      }
      send(code, payload);
    } catch (error) {
      if (error instanceof HttpError) send(error.body.code, error.body);
      else send(500, status(500, "InternalError", `Internal error occurred: ${String(error)}`));
    }
  }

  private takeFault(verb: Verb, resource: string): Fault["status"] | undefined {
    const fault = this.faults.find(
      (f) =>
        f.count > 0 &&
        (!f.match?.verb || f.match.verb === verb) &&
        (!f.match?.resource || f.match.resource === resource),
    );
    if (!fault) return undefined;
    fault.count -= 1;
    if (fault.count === 0) this.faults.splice(this.faults.indexOf(fault), 1);
    return fault.status;
  }

  private discovery(path: string): unknown {
    if (path === "/api")
      return {
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: `127.0.0.1:${this.port}` }],
      };
    if (path === "/version")
      return { major: "1", minor: "31", gitVersion: "v1.31.0-emulator", platform: "linux/amd64" };
    if (path === "/apis") {
      return {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: [
          {
            name: ISTIO_GROUP,
            versions: ISTIO_VERSIONS.map((v) => ({ groupVersion: `${ISTIO_GROUP}/${v}`, version: v })),
            preferredVersion: { groupVersion: `${ISTIO_GROUP}/v1`, version: "v1" },
          },
          {
            name: GATEWAY_GROUP,
            versions: [{ groupVersion: `${GATEWAY_GROUP}/v1`, version: "v1" }],
            preferredVersion: { groupVersion: `${GATEWAY_GROUP}/v1`, version: "v1" },
          },
          // deployments helper
          {
            name: "apps",
            versions: [{ groupVersion: "apps/v1", version: "v1" }],
            preferredVersion: { groupVersion: "apps/v1", version: "v1" },
          },
        ],
      };
    }
    if (path === `/apis/${ISTIO_GROUP}`) {
      return {
        kind: "APIGroup",
        apiVersion: "v1",
        name: ISTIO_GROUP,
        versions: ISTIO_VERSIONS.map((v) => ({ groupVersion: `${ISTIO_GROUP}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${ISTIO_GROUP}/v1`, version: "v1" },
      };
    }
    if (path === `/apis/${GATEWAY_GROUP}`) {
      const v1 = { groupVersion: `${GATEWAY_GROUP}/v1`, version: "v1" };
      return {
        kind: "APIGroup",
        apiVersion: "v1",
        name: GATEWAY_GROUP,
        versions: [v1],
        preferredVersion: v1,
      };
    }
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(path);
    if (!m) return undefined;
    const group = m[2] ?? "";
    const version = m[1] ?? m[3] ?? "";
    const types = RESOURCE_TYPES.filter((t) => t.group === group && t.versions.includes(version));
    if (types.length === 0) return undefined;
    return {
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: group ? `${group}/${version}` : version,
      resources: types.map((t) => ({
        name: t.resource,
        singularName: t.kind.toLowerCase(),
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: t.verbs,
        ...(t.shortNames ? { shortNames: t.shortNames } : {}),
      })),
    };
  }

  private route(path: string, method: string, query: URLSearchParams) {
    const m =
      /^\/(?:api\/(?<coreVersion>v1)|apis\/(?<group>[^/]+)\/(?<version>[^/]+))(?:\/namespaces\/(?<namespace>[^/]+))?\/(?<resource>[^/]+)(?:\/(?<name>[^/]+))?$/.exec(
        path,
      );
    // /api/v1/namespaces/{name} is the namespace object itself, not a namespace scope.
    const nsObject = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path);
    const g = nsObject
      ? {
          coreVersion: "v1",
          resource: "namespaces",
          name: nsObject[1] as string,
          namespace: undefined,
          group: undefined,
          version: undefined,
        }
      : m?.groups;
    const type = g
      ? RESOURCE_TYPES.find((t) => t.resource === g.resource && t.group === (g.group ?? ""))
      : undefined;
    const version = g?.coreVersion ?? g?.version ?? "";
    if (!g || !type?.versions.includes(version)) {
      throw new HttpError(status(404, "NotFound", "the server could not find the requested resource", {}));
    }
    const name = g.name;
    const namespace = type.namespaced ? g.namespace : undefined;
    const methodVerb: Record<string, Verb> = {
      GET: name ? "get" : "list",
      POST: "create",
      PUT: "update",
      PATCH: "patch",
      DELETE: "delete",
    };
    let verb = methodVerb[method];
    if (method === "GET" && query.get("watch") === "true") verb = "watch";
    if (!verb)
      throw new HttpError(
        status(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`),
      );
    if (!type.verbs.includes(verb))
      throw new HttpError(
        status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"),
      );
    return { type, group: type.group, version, resource: type.resource, namespace, name, verb };
  }

  authorize(
    grant: TokenGrant,
    r: { verb: Verb; group: string; resource: string; namespace?: string; name?: string; type: ResourceType },
  ) {
    if (grant.rules === "all") return;
    // kube-apiserver's RequestInfo: a request for the namespace object itself is in that namespace,
    // so a namespaced Role can grant `get` on its own namespace.
    const namespace = r.resource === "namespaces" ? r.name : r.namespace;
    const inNamespace =
      !grant.namespaces || (namespace !== undefined && grant.namespaces.includes(namespace));
    const allowed =
      inNamespace &&
      grant.rules.some(
        (rule) =>
          (rule.apiGroups.includes(r.group) || rule.apiGroups.includes("*")) &&
          (rule.resources.includes(r.resource) || rule.resources.includes("*")) &&
          (rule.verbs.includes(r.verb) || rule.verbs.includes("*")) &&
          (!rule.resourceNames?.length || (r.name !== undefined && rule.resourceNames.includes(r.name))),
      );
    if (allowed) return;
    const qualified = r.group ? `${r.resource}.${r.group}` : r.resource;
    const subject = r.name ? `${qualified} "${r.name}"` : qualified;
    const scope = namespace ? ` in the namespace "${namespace}"` : " at the cluster scope";
    throw new HttpError(
      status(
        403,
        "Forbidden",
        `${subject} is forbidden: User "${grant.user}" cannot ${r.verb} resource "${r.resource}" in API group "${r.group}"${scope}`,
        { ...(r.name ? { name: r.name } : {}), group: r.group, kind: r.resource },
      ),
    );
  }

  private conflict(type: ResourceType, name: string) {
    const qualified = type.group ? `${type.resource}.${type.group}` : type.resource;
    return status(
      409,
      "Conflict",
      `Operation cannot be fulfilled on ${qualified} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: type.group, kind: type.resource },
    );
  }

  private notFound(type: ResourceType, name: string) {
    const qualified = type.group ? `${type.resource}.${type.group}` : type.resource;
    return status(404, "NotFound", `${qualified} "${name}" not found`, {
      name,
      group: type.group,
      kind: type.resource,
    });
  }

  private serve(
    r: ReturnType<KubeApiEmulator["route"]>,
    contentType: string,
    body: string,
    query: URLSearchParams,
  ): { code: number; payload: unknown; object?: KubeObject } {
    const { type, version, namespace, name } = r;
    const apiVersion = type.group ? `${type.group}/${version}` : version;
    const storageVersion = type.group ? `${type.group}/${type.versions[0]}` : version;
    const present = (o: KubeObject): KubeObject => ({ ...clone(o), apiVersion, ...this.statusOf(type, o) });
    const dryRun = query.get("dryRun") === "All";

    if (r.verb === "list") {
      const selector = query.get("labelSelector") ?? "";
      const items = this.list(type.resource, namespace).filter((o) =>
        matchesLabelSelector(selector, o.metadata.labels ?? {}),
      );
      return {
        code: 200,
        payload: {
          apiVersion,
          kind: `${type.kind}List`,
          metadata: { resourceVersion: String(this.revision) },
          items: items.map(present),
        },
      };
    }
    if (r.verb === "create") {
      const obj = parseBody(body) as KubeObject;
      const objName = obj.metadata?.name;
      if (!objName)
        throw new HttpError(
          status(
            422,
            "Invalid",
            `${type.kind}.${type.group} "" is invalid: metadata.name: Required value: name or generateName is required`,
          ),
        );
      const key = this.key(type.resource, namespace, objName);
      if (this.store.has(key)) {
        throw new HttpError(
          status(409, "AlreadyExists", `${type.resource}.${type.group} "${objName}" already exists`, {
            name: objName,
            group: type.group,
            kind: type.resource,
          }),
        );
      }
      obj.metadata = { ...obj.metadata, namespace };
      for (const f of ["uid", "resourceVersion", "generation", "creationTimestamp"]) delete obj.metadata[f];
      obj.apiVersion = storageVersion;
      obj.kind = type.kind;
      this.admit(type, obj);
      if (dryRun) return { code: 201, payload: present(obj) };
      const stored = this.commit(key, undefined, obj);
      return { code: 201, payload: present(stored), object: stored };
    }

    const key = this.key(type.resource, namespace, name as string);
    const current = this.store.get(key);
    if (!current) throw new HttpError(this.notFound(type, name as string));
    if (r.verb === "get") return { code: 200, payload: present(current) };

    let next: KubeObject;
    if (r.verb === "update") {
      next = parseBody(body) as KubeObject;
      const rv = next.metadata?.resourceVersion;
      if (!rv) {
        throw new HttpError(
          status(
            422,
            "Invalid",
            `${type.kind}.${type.group} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`,
            {
              name,
              group: type.group,
              kind: type.kind,
              causes: [
                {
                  reason: "FieldValueInvalid",
                  message: "Invalid value: 0x0: must be specified for an update",
                  field: "metadata.resourceVersion",
                },
              ],
            },
          ),
        );
      }
      if (rv !== current.metadata.resourceVersion) throw new HttpError(this.conflict(type, name as string));
    } else {
      next = this.patch(type, current, contentType, body);
      const rv = next.metadata?.resourceVersion;
      if (rv !== undefined && rv !== current.metadata.resourceVersion)
        throw new HttpError(this.conflict(type, name as string));
    }
    // Identity fields are the server's, whatever the client sent.
    next.metadata = { ...next.metadata, name: current.metadata.name, namespace: current.metadata.namespace };
    next.apiVersion = storageVersion;
    next.kind = type.kind;
    this.admit(type, next);
    if (dryRun) return { code: 200, payload: present(next) };
    const stored = this.commit(key, current, next);
    return { code: 200, payload: present(stored), object: stored };
  }

  private patch(type: ResourceType, current: KubeObject, contentType: string, body: string): KubeObject {
    const mediaType = contentType.split(";")[0]?.trim();
    if (mediaType === "application/json-patch+json") {
      const ops = parseBody(body);
      if (!Array.isArray(ops)) {
        throw new HttpError(
          status(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        );
      }
      const invalid = fastJsonPatch.validate(ops as Operation[]);
      if (
        invalid &&
        invalid.name !== "TEST_OPERATION_FAILED" &&
        invalid.name !== "OPERATION_PATH_UNRESOLVABLE"
      ) {
        throw new HttpError(status(400, "BadRequest", invalid.message.split("\n")[0] as string));
      }
      try {
        return fastJsonPatch.applyPatch(clone(current), ops as Operation[], true, false)
          .newDocument as KubeObject;
      } catch {
        // kube-apiserver: a patch that decodes but cannot be applied (a failed `test` included) is
        // 422 Invalid with this generic message (handlers/patch.go, kubernetes PR 68346).
        throw new HttpError(
          status(422, "Invalid", "the server rejected our request due to an error in our request", {}),
        );
      }
    }
    if (mediaType === "application/merge-patch+json") {
      return applyMergePatch(current, parseBody(body)) as KubeObject;
    }
    const accepted = type.group
      ? "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
      : "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml";
    throw new HttpError(
      status(
        415,
        "UnsupportedMediaType",
        `the body of the request was in an unknown format - accepted media types include: ${accepted}`,
      ),
    );
  }

  /** The status a controller keeps on Gateway API objects (istiod's, gateway-api.ts), as of now. */
  private statusOf(type: ResourceType, o: KubeObject): { status?: unknown } {
    const lookup = (resource: string, namespace: string | undefined, name: string) =>
      this.store.get(this.key(resource, namespace, name));
    if (type.resource === "httproutes") return { status: httpRouteStatus(o, lookup) };
    // A status seeded with the object stands for what the controller wrote (a waypoint not yet programmed).
    if (type.resource === "gateways") return { status: o.status ?? gatewayStatus(o) };
    return {};
  }

  /** The CRD's structural schema (422 Invalid) and istiod's validating webhook (400). */
  private admit(type: ResourceType, obj: KubeObject): void {
    if (type.resource === "httproutes") {
      this.admitHttpRoute(type, obj);
      return;
    }
    if (type.resource !== "virtualservices" && type.resource !== "destinationrules") return;
    const invalid = (field: string, value: unknown, detail: string) =>
      new HttpError(
        status(
          422,
          "Invalid",
          `${type.kind}.${type.group} "${obj.metadata.name}" is invalid: ${field}: Invalid value: ${JSON.stringify(value)}: ${detail}`,
          {
            name: obj.metadata.name,
            group: type.group,
            kind: type.kind,
            causes: [
              {
                reason: "FieldValueInvalid",
                message: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
                field,
              },
            ],
          },
        ),
      );
    const denied = (message: string) =>
      new HttpError(
        status(
          400,
          undefined,
          `admission webhook "validation.istio.io" denied the request: configuration is invalid: ${message}`,
        ),
      );
    const spec = obj.spec as Record<string, unknown> | undefined;
    if (spec !== undefined && (typeof spec !== "object" || Array.isArray(spec)))
      throw invalid("spec", spec, "spec in body must be of type object");
    if (type.resource === "destinationrules") {
      const subsets = (spec?.subsets ?? []) as unknown;
      if (!Array.isArray(subsets))
        throw invalid("spec.subsets", subsets, "spec.subsets in body must be of type array");
      return;
    }
    const hosts = spec?.hosts;
    if (hosts !== undefined && !(Array.isArray(hosts) && hosts.every((h) => typeof h === "string"))) {
      throw invalid("spec.hosts", hosts, "spec.hosts in body must be of type array of strings");
    }
    // istiod: no hosts makes it a delegate (PILOT_ENABLE_VIRTUAL_SERVICE_DELEGATE, on by default), which
    // may carry neither gateways nor tcp/tls routes.
    if (!Array.isArray(hosts) || hosts.length === 0) {
      const delegateProblem = (["gateways", "tls", "tcp"] as const).find(
        (field) => ((spec?.[field] ?? []) as unknown[]).length > 0,
      );
      if (delegateProblem)
        throw denied(
          `delegate virtual service must have no ${delegateProblem === "gateways" ? "gateways" : `${delegateProblem} route`} specified`,
        );
    }
    const http = spec?.http ?? [];
    if (!Array.isArray(http)) throw invalid("spec.http", http, "spec.http in body must be of type array");
    http.forEach((route: Record<string, unknown>, i: number) => {
      const destinations = route?.route ?? [];
      if (!Array.isArray(destinations))
        throw invalid(`spec.http[${i}].route`, destinations, "must be of type array");
      let total = 0;
      destinations.forEach((d: Record<string, unknown>, j: number) => {
        const field = `spec.http[${i}].route[${j}]`;
        const destination = d?.destination as Record<string, unknown> | undefined;
        if (!destination || typeof destination.host !== "string")
          throw invalid(`${field}.destination.host`, destination?.host, "Required value");
        const weight = d.weight;
        if (weight !== undefined && !(typeof weight === "number" && Number.isInteger(weight))) {
          throw invalid(
            `${field}.weight`,
            weight,
            `${field}.weight in body must be of type integer: "${typeof weight}"`,
          );
        }
        if (typeof weight === "number" && (weight < 0 || weight > 100))
          throw denied(`weight ${weight} < 0 or > 100`);
        total += typeof weight === "number" ? weight : 0;
      });
      if (destinations.length > 1 && total !== 100) throw denied(`total destination weight ${total} != 100`);
    });
  }

  /** The HTTPRoute CRD: its defaults, then its schema (422 Invalid with details.causes). */
  private admitHttpRoute(type: ResourceType, obj: KubeObject): void {
    defaultHttpRoute(obj);
    const bad = invalidHttpRoute(obj);
    if (!bad) return;
    const message = `Invalid value: ${JSON.stringify(bad.value)}: ${bad.detail}`;
    throw new HttpError(
      status(
        422,
        "Invalid",
        `${type.kind}.${type.group} "${obj.metadata.name}" is invalid: ${bad.field}: ${message}`,
        {
          name: obj.metadata.name,
          group: type.group,
          kind: type.kind,
          causes: [{ reason: "FieldValueInvalid", message, field: bad.field }],
        },
      ),
    );
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new HttpError(
      status(400, "BadRequest", `the object provided is unrecognized (${(e as Error).message})`),
    );
  }
}
