/**
 * Kubernetes API failures as one clear line: a 403 names the verb, the resource, the namespace and
 * the RBAC rule that would allow it; a 404 names the object; an admission rejection quotes the
 * server. The raw Status is kept for callers that branch on it (409, 422).
 */
import { isTransient, parseRetryAfter, type RetryHint } from "../retry.ts";

export interface KubeStatus {
  code?: number;
  reason?: string;
  message?: string;
  details?: { name?: string; group?: string; kind?: string };
}

export interface KubeRequest {
  verb: "get" | "list" | "patch" | "create" | "update";
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

export class MeshError extends Error implements RetryHint {
  readonly status?: number;
  readonly reason?: string;
  /** The API server's own message, when it sent one. */
  readonly server?: string;
  /** The API server's `Retry-After` (429, some 503s), in milliseconds. */
  retryAfterMs?: number;
  /** True when the request got no answer (refused, reset, timed out): worth another try. */
  transient?: boolean;
  /** The connection error's code (ECONNREFUSED, ENOTFOUND...) when there was no answer. */
  code?: string;
  constructor(message: string, status?: number, reason?: string, server?: string) {
    super(message);
    this.name = "MeshError";
    this.status = status;
    this.reason = reason;
    this.server = server;
    // A MeshError without a status is a planning error (no such route...) unless marked transient.
    this.transient = status === undefined ? false : undefined;
  }

  /** A 404 for an API version the server does not serve (not for a missing object). */
  get isUnservedVersion(): boolean {
    return this.status === 404 && /could not find the requested resource/.test(this.server ?? "");
  }

  /** A JSON Patch whose `test` failed (kube-apiserver: 422 Invalid) or a stale write (409). */
  get isConflict(): boolean {
    return (
      this.status === 409 ||
      (this.status === 422 && this.reason === "Invalid" && /rejected our request/.test(this.server ?? ""))
    );
  }
}

/**
 * `read`'s result, or `denied` when the API answered 403: a check the action may not make is a
 * warning (`warning`, added to `warnings`), not a failure, so a narrower Role still gets a rollout.
 * Any other error is thrown.
 */
export async function forbiddenAsWarning<T, D>(
  read: () => Promise<T>,
  warnings: string[],
  warning: string,
  denied: D,
): Promise<T | D> {
  try {
    return await read();
  } catch (error) {
    if (!(error instanceof MeshError) || error.status !== 403) throw error;
    warnings.push(warning);
    return denied;
  }
}

function parseStatus(body: unknown): KubeStatus {
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as KubeStatus;
    } catch {
      return { message: body };
    }
  }
  return (body ?? {}) as KubeStatus;
}

export function describeObject(r: KubeRequest): string {
  const qualified = r.group ? `${r.resource}.${r.group}` : r.resource;
  return `${qualified} ${r.namespace ? `${r.namespace}/` : ""}${r.name ?? ""}`.trim();
}

/** Turns whatever the client threw into a MeshError with one line of explanation. */
export function toMeshError(error: unknown, r: KubeRequest): MeshError {
  if (error instanceof MeshError) return error;
  const e = error as {
    code?: number;
    body?: unknown;
    message?: string;
    name?: string;
    cause?: { code?: string };
  };
  // An HTTP answer (the client's ApiException carries the response's headers); a DOMException for
  // a timed-out request also has a numeric `code` (23), which is no HTTP status.
  const answered =
    typeof e.code === "number" &&
    typeof (error as { headers?: unknown }).headers === "object" &&
    e.name !== "TimeoutError";
  const code = answered ? e.code : undefined;
  if (code === undefined) {
    const timedOut = e.name === "TimeoutError" || e.name === "AbortError";
    const why = timedOut ? "no answer in time" : (e.cause?.code ?? e.message ?? String(error));
    const unreachable = new MeshError(
      `Kubernetes API unreachable while trying to ${r.verb} ${describeObject(r)}: ${why}`,
    );
    unreachable.transient = timedOut || isTransient(error);
    unreachable.code = e.cause?.code;
    return unreachable;
  }
  const status = parseStatus(e.body);
  const server = (status.message ?? "").replace(/\s+/g, " ").trim();
  const target = describeObject(r);
  if (code === 401)
    return new MeshError(
      `Kubernetes API refused the credentials (401 Unauthorized) while trying to ${r.verb} ${target}: check the kubeconfig's user`,
      401,
      status.reason,
      server,
    );
  if (code === 403) {
    const where = r.namespace ? `in namespace ${r.namespace}` : "at cluster scope";
    return new MeshError(
      `Forbidden: the action's identity cannot ${r.verb} ${r.group ? `${r.resource}.${r.group}` : r.resource} ${where}; grant it a Role rule {apiGroups: ["${r.group}"], resources: ["${r.resource}"], verbs: ["${r.verb}"]} (server: ${server})`,
      403,
      status.reason,
      server,
    );
  }
  if (code === 404)
    return new MeshError(
      `${target} not found (404): check the name and the namespace`,
      404,
      status.reason,
      server,
    );
  if (code === 400 && /admission webhook/.test(server))
    return new MeshError(`Istio rejected the change to ${target}: ${server}`, 400, status.reason, server);
  if (code === 422 && status.reason === "Invalid" && !/rejected our request/.test(server)) {
    return new MeshError(
      `Kubernetes rejected the change to ${target} as invalid: ${server}`,
      422,
      status.reason,
      server,
    );
  }
  const other = new MeshError(
    `Kubernetes API answered ${code}${status.reason ? ` ${status.reason}` : ""} to ${r.verb} ${target}: ${server || "no message"}`,
    code,
    status.reason,
    server,
  );
  other.retryAfterMs = parseRetryAfter(headerOf(error, "retry-after"), Date.now());
  return other;
}

/** A response header of the client's ApiException (a plain object; names in any case). */
function headerOf(error: unknown, name: string): string | undefined {
  const headers = (error as { headers?: Record<string, string> }).headers ?? {};
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}
