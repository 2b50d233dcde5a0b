/**
 * The HTTP side of the emulator's Deployment controller (deployments.ts), installed as the
 * emulator's `workloads` hook: apps/v1 `deployments` (get, list, watch, create, update, patch as
 * JSON Patch, merge or strategic merge, delete; the `scale` subresource as autoscaling/v1 Scale and
 * `status`), `replicasets` (get, list, watch, delete) and core/v1 `events` (get, list, watch), with
 * `labelSelector`, `fieldSelector`, server-side Tables for `kubectl get` (pods too: READY 2/2,
 * STATUS CrashLoopBackOff; every other pod request stays the emulator's), and the apps/v1 discovery
 * document that lists the subresources (kubectl's scale client looks `deployments/scale` up there).
 *
 * Requests go through the emulator's own authorization (RBAC resource `deployments/scale` for the
 * subresource, as kube-apiserver's RequestInfo), its audit log and its fault plan.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DeploymentController } from "./deployments.ts";
import {
  APPS_GROUP,
  APPS_V1,
  ApiError,
  parseBody,
  patched,
  rv,
  type StatusBody,
  safeJson,
  scaleOf,
  selects,
  toTable,
  VERBS,
} from "./deployments-http.ts";
import { applyDeploymentDefaults, InvalidDeployment, sameJson } from "./deployments-model.ts";
import { recordUpdate } from "./deployments-objects.ts";
import {
  type AuditEntry,
  type KubeApiEmulator,
  type KubeObject,
  RESOURCE_TYPES,
  status,
  type TokenGrant,
  type Verb,
} from "./kube-api.ts";

type Json = Record<string, unknown>;

const ROUTE =
  /^\/(?:api\/v1|apis\/apps\/v1)(?:\/namespaces\/(?<namespace>[^/]+))?\/(?<resource>deployments|replicasets|events|pods)(?:\/(?<name>[^/]+)(?:\/(?<sub>scale|status))?)?$/;
interface Route {
  verb: Verb;
  group: string;
  version: string;
  /** The RBAC resource: `deployments/scale` for the subresource. */
  resource: string;
  kind: string;
  namespace?: string;
  name?: string;
  sub?: string;
}

export class WorkloadsApi {
  private readonly kube: KubeApiEmulator;
  private readonly controller: DeploymentController;
  constructor(kube: KubeApiEmulator, controller: DeploymentController) {
    this.kube = kube;
    this.controller = controller;
  }

  /** Serves the request when it is one of this API's; false lets the emulator serve it. */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    body: string,
    grant: TokenGrant,
  ): Promise<boolean> {
    const reply = (code: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(code, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(payload));
    };
    if (url.pathname === "/apis/apps/v1" || url.pathname === "/apis/apps") {
      reply(200, url.pathname === "/apis/apps" ? APPS_GROUP : APPS_V1);
      return true;
    }
    const g = ROUTE.exec(url.pathname)?.groups;
    if (!g) return false;
    const group = url.pathname.startsWith("/apis/apps/") ? "apps" : "";
    const core = g.resource === "events" || g.resource === "pods";
    if (core !== (group === "")) return false;
    const table = /as=Table/.test(req.headers.accept ?? "") && !g.sub;
    if (g.resource === "pods" && !(table && req.method === "GET" && url.searchParams.get("watch") === null))
      return false;
    const resource = g.sub ? `${g.resource}/${g.sub}` : (g.resource as string);
    const methodVerb: Record<string, Verb> = {
      GET: g.name ? "get" : /^(true|1)$/.test(url.searchParams.get("watch") ?? "") ? "watch" : "list",
      POST: "create",
      PUT: "update",
      PATCH: "patch",
      DELETE: "delete",
    };
    const verb = methodVerb[req.method ?? "GET"] ?? ("unsupported" as Verb);
    const type = RESOURCE_TYPES.find((t) => t.resource === g.resource) as (typeof RESOURCE_TYPES)[number];
    const route: Route = {
      verb,
      group,
      version: "v1",
      resource,
      kind: type.kind,
      ...(g.namespace ? { namespace: g.namespace } : {}),
      ...(g.name ? { name: g.name } : {}),
      ...(g.sub ? { sub: g.sub } : {}),
    };
    const entry: AuditEntry = {
      time: new Date().toISOString(),
      user: grant.user,
      verb,
      group,
      version: "v1",
      resource,
      ...(route.namespace ? { namespace: route.namespace } : {}),
      ...(route.name ? { name: route.name } : {}),
      method: req.method ?? "GET",
      path: url.pathname + url.search,
      ...(req.headers["content-type"] ? { contentType: req.headers["content-type"] } : {}),
      ...(body ? { requestBody: safeJson(body) } : {}),
      code: 0,
    };
    const audit = (code: number, extra: Partial<AuditEntry> = {}) =>
      this.kube.audit.push({ ...entry, code, ...extra });
    try {
      if (
        !VERBS[resource]?.includes(verb) ||
        (verb === "create" && g.name) ||
        (verb !== "list" && verb !== "watch" && verb !== "create" && !g.name)
      )
        throw new ApiError(
          status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"),
        );
      this.kube.authorize(grant, { ...route, resource, type });
      const planned = this.kube.faultPlan.decide({ verb, resource, name: route.name, at: Date.now() });
      if (planned?.kind === "answer") {
        audit(planned.code);
        const details = { ...(route.name ? { name: route.name } : {}), group, kind: resource };
        reply(
          planned.code,
          status(planned.code, planned.reason || undefined, planned.message, details),
          planned.headers,
        );
        return true;
      }
      if (planned?.kind === "hold") {
        await planned.released;
        if (res.destroyed) return true;
      }
      if (verb === "watch") {
        audit(200);
        this.watch(res, route, url.searchParams, /as=Table/.test(req.headers.accept ?? ""));
        return true;
      }
      const { code, payload, object } = this.serve(
        route,
        req.headers["content-type"] ?? "",
        body,
        url.searchParams,
        table,
      );
      if (planned?.kind === "apply-then") {
        audit(200, { ...(object ? { object } : {}), unanswered: planned.outcome });
        if (planned.outcome === "drop") res.socket?.destroy();
        return true;
      }
      audit(code, object ? { object } : {});
      reply(code, payload);
    } catch (error) {
      const body =
        error instanceof InvalidDeployment
          ? invalid(error)
          : typeof (error as { body?: StatusBody }).body?.code === "number"
            ? (error as { body: StatusBody }).body
            : status(500, "InternalError", `Internal error occurred: ${String(error)}`);
      audit(body.code);
      reply(body.code, body);
    }
    return true;
  }

  private serve(
    r: Route,
    contentType: string,
    body: string,
    query: URLSearchParams,
    table: boolean,
  ): { code: number; payload: unknown; object?: KubeObject } {
    const base = r.resource.split("/")[0] as string;
    const dryRun = query.get("dryRun") === "All";
    if (r.verb === "list") {
      const items = this.kube.list(base, r.namespace).filter(selects(query));
      const resourceVersion = String(Math.max(0, ...this.kube.list(base).map(rv)));
      if (table) return { code: 200, payload: toTable(base, items, resourceVersion) };
      const apiVersion = r.group ? `${r.group}/v1` : "v1";
      return {
        code: 200,
        payload: { apiVersion, kind: `${r.kind}List`, metadata: { resourceVersion }, items },
      };
    }
    const namespace = r.namespace as string;
    if (r.verb === "create") {
      const next = parseBody(body) as KubeObject;
      if (!next.metadata?.name)
        throw new ApiError(
          status(
            422,
            "Invalid",
            `${r.kind}.apps "" is invalid: metadata.name: Required value: name or generateName is required`,
          ),
        );
      if (this.kube.get(base, namespace, next.metadata.name))
        throw new ApiError(
          status(409, "AlreadyExists", `deployments.apps "${next.metadata.name}" already exists`, {
            name: next.metadata.name,
            group: "apps",
            kind: "deployments",
          }),
        );
      next.metadata = { ...next.metadata, namespace };
      for (const f of ["uid", "resourceVersion", "generation", "creationTimestamp"]) delete next.metadata[f];
      delete next.status;
      applyDeploymentDefaults(next);
      this.controller.validate(next);
      if (dryRun) return { code: 201, payload: next };
      const stored = this.controller.create(next);
      return { code: 201, payload: stored, object: stored };
    }
    const name = r.name as string;
    const current = this.kube.get(base, namespace, name);
    if (!current) {
      const qualified = r.group ? `${base}.${r.group}` : base;
      throw new ApiError(
        status(404, "NotFound", `${qualified} "${name}" not found`, { name, group: r.group, kind: base }),
      );
    }
    if (r.verb === "delete") {
      if (!dryRun) this.controller.delete(base, namespace, name);
      const details = { name, group: r.group, kind: base, uid: current.metadata.uid };
      return {
        code: 200,
        payload: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details },
      };
    }
    const view = r.sub === "scale" ? scaleOf(current) : current;
    if (r.verb === "get" && table)
      return { code: 200, payload: toTable(base, [current], String(rv(current))) };
    if (r.verb === "get") return { code: 200, payload: view };

    // update or patch: the new view, then what it changes in the stored Deployment.
    const sent = r.verb === "update" ? (parseBody(body) as KubeObject) : patched(view, contentType, body);
    const sentVersion = sent.metadata?.resourceVersion;
    if (sentVersion !== undefined && sentVersion !== current.metadata.resourceVersion) {
      throw new ApiError(
        status(
          409,
          "Conflict",
          `Operation cannot be fulfilled on deployments.apps "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          { name, group: "apps", kind: "deployments" },
        ),
      );
    }
    const next = structuredClone(current);
    if (r.sub === "scale") {
      const replicas = (sent.spec as Json | undefined)?.replicas ?? 0;
      if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0)
        throw new ApiError(
          status(
            422,
            "Invalid",
            `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
          ),
        );
      (next.spec as Json).replicas = replicas;
    } else if (r.sub === "status") {
      next.status = sent.status;
    } else {
      // The main resource: spec and metadata from the client; status and identity stay the server's.
      next.spec = sent.spec;
      for (const f of ["labels", "annotations", "ownerReferences", "finalizers"] as const) {
        if (sent.metadata?.[f] === undefined) delete next.metadata[f];
        else next.metadata[f] = sent.metadata[f] as never;
      }
      applyDeploymentDefaults(next);
      this.controller.validate(next, current);
    }
    // A semantically equal spec (another key order) is no change: the generation stays.
    if (sameJson(next.spec, current.spec)) next.spec = current.spec;
    else if (r.sub !== "status")
      recordUpdate(
        next,
        current,
        query.get("fieldManager") ?? "unknown",
        r.sub === "scale" ? "scale" : undefined,
      );
    if (dryRun) return { code: 200, payload: r.sub === "scale" ? scaleOf(next) : next };
    const stored = this.controller.write(base, namespace, name, (o) => {
      for (const key of Object.keys(o)) delete o[key];
      Object.assign(o, structuredClone(next));
    });
    this.controller.reconcileSoon(namespace, name);
    return { code: 200, payload: r.sub === "scale" ? scaleOf(stored) : stored, object: stored };
  }

  /** A watch as client-go reads it: one `{type, object}` JSON document per event on a chunked answer. */
  private watch(res: ServerResponse, r: Route, query: URLSearchParams, table: boolean): void {
    const base = r.resource.split("/")[0] as string;
    const matches = (o: KubeObject) =>
      (r.namespace === undefined || o.metadata.namespace === r.namespace) && selects(query)(o);
    const from = Number(query.get("resourceVersion") || 0);
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    // `kubectl get -w` asks for Tables: each event then carries a one-row Table of the object.
    const view = (o: KubeObject) => (table ? toTable(base, [o], String(rv(o))) : o);
    const send = (type: string, o: KubeObject) => res.write(`${JSON.stringify({ type, object: view(o) })}\n`);
    // Without a version, the current state as ADDED; from a version, whatever changed since (the
    // emulator keeps no history, so only the latest state of each object).
    for (const o of this.kube.list(base, r.namespace).filter(matches)) {
      if (from === 0) send("ADDED", o);
      else if (rv(o) > from) send("MODIFIED", o);
    }
    const unsubscribe = this.controller.subscribe((change) => {
      if (change.resource === base && matches(change.object) && rv(change.object) > from)
        send(change.type, change.object);
    });
    const seconds = Number(query.get("timeoutSeconds") || 1800);
    const timer = setTimeout(() => res.end(), seconds * 1000);
    timer.unref();
    res.on("close", () => {
      unsubscribe();
      clearTimeout(timer);
    });
  }
}

function invalid(error: InvalidDeployment): StatusBody {
  const causes = error.problems.map(([field, message]) => ({ reason: "FieldValueInvalid", message, field }));
  return status(422, "Invalid", error.message, {
    name: error.deployment,
    group: "apps",
    kind: "Deployment",
    causes,
  });
}
