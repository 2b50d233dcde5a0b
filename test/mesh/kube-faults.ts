/**
 * Fault hooks for the Kubernetes API emulator, modelled on what a real kube-apiserver (and the
 * proxies and load balancers in front of it) does under stress:
 *
 * - `throttle`: 429 TooManyRequests with `Retry-After` and a `Status` whose
 *   `details.retryAfterSeconds` matches (apimachinery's `errors.NewTooManyRequests`);
 * - `failFor`: 5xx for a time window, starting now or at the first matching request;
 * - `hold`: requests that are never answered until `release()` (an overloaded or partitioned server);
 * - `applyThenDrop`: the write is stored, then the connection is dropped or left hanging, so the
 *   client cannot know it succeeded;
 * - `conflictStorm`: 409 Conflict on writes (another writer winning every race);
 * - `deny`: a validating admission webhook (a policy engine) that denies writes: 400 with
 *   `admission webhook "<name>" denied the request: <message>`, as kube-apiserver words it when the
 *   webhook sets no code of its own;
 * - `forbid`: RBAC that no longer allows the write (a Role edited or its binding removed): 403
 *   Forbidden, worded as kube-apiserver's authorizer words it;
 * - `reject`: any other answer (an admission webhook's denial, 403, 404);
 * - `onRequest`: a listener that runs before a request is served (kill the action, edit the object
 *   between the action's read and its write, ...).
 *
 * The emulator asks `decide()` once per API request, after authentication and authorization.
 */
import type { Verb } from "./kube-api.ts";

export interface RequestInfo {
  verb: Verb;
  resource: string;
  name?: string;
  namespace?: string;
  /** Milliseconds since the epoch when the request arrived. */
  at: number;
}

export interface FaultMatch {
  verbs?: Verb[];
  resource?: string;
  /** Only requests for the object of this name. */
  name?: string;
  /** Only after a request with this verb has been seen since the fault was added. */
  after?: Verb;
  /** Let this many matching requests through first (e.g. 1: spare the first write, hit the second). */
  skip?: number;
}

/** What the emulator does with one request. */
export type FaultDecision =
  | { kind: "answer"; code: number; reason: string; message: string; headers?: Record<string, string> }
  | { kind: "hold"; released: Promise<void> }
  | { kind: "apply-then"; outcome: "drop" | "hang" };

interface Rule {
  match: FaultMatch;
  /** Requests this rule may still take (Infinity for a time window). */
  remaining: number;
  /** Window in ms; starts at `startsAt`, or at the first matching request when undefined. */
  windowMs?: number;
  startsAt?: number;
  armed: boolean;
  decide: (info: RequestInfo) => FaultDecision;
}

export const TOO_MANY_REQUESTS = "Too many requests, please try again later.";

/** kube-apiserver's 5xx answers (a 502 comes from a load balancer in front of it). */
const SERVER_ERRORS: Record<number, FaultDecision> = {
  500: {
    kind: "answer",
    code: 500,
    reason: "InternalError",
    message: "Internal error occurred: etcdserver: request timed out",
  },
  502: { kind: "answer", code: 502, reason: "", message: "Bad Gateway" },
  503: {
    kind: "answer",
    code: 503,
    reason: "ServiceUnavailable",
    message: "the server is currently unable to handle the request",
  },
};

export class KubeFaultPlan {
  private rules: Rule[] = [];
  private listeners: Array<(info: RequestInfo) => void> = [];
  private releaseHeld: Array<() => void> = [];
  /** Every request a rule answered, held or dropped: when and how (for measuring outages). */
  readonly hits: Array<RequestInfo & { fault: string }> = [];

  /** `count` matching requests answer 429 with `Retry-After: retryAfterSeconds`. */
  throttle(options: { retryAfterSeconds: number; count?: number } & FaultMatch): void {
    const { retryAfterSeconds, count = 1, ...match } = options;
    this.add(match, count, undefined, () => ({
      kind: "answer",
      code: 429,
      reason: "TooManyRequests",
      message: TOO_MANY_REQUESTS,
      headers: { "Retry-After": String(retryAfterSeconds) },
    }));
  }

  /**
   * Every matching request answers `status` (500 InternalError or 503 ServiceUnavailable) for `ms`
   * milliseconds, from now or (`fromFirstMatch`) from the first matching request.
   */
  failFor(
    ms: number,
    options: { status?: 500 | 502 | 503; fromFirstMatch?: boolean } & FaultMatch = {},
  ): void {
    const { status = 500, fromFirstMatch = false, ...match } = options;
    this.add(
      match,
      Number.POSITIVE_INFINITY,
      ms,
      () => SERVER_ERRORS[status] as FaultDecision,
      fromFirstMatch ? undefined : Date.now(),
    );
  }

  /** The next `count` matching requests answer `status` (500 InternalError, 502, 503). */
  fail(options: { status?: 500 | 502 | 503; count?: number } & FaultMatch = {}): void {
    const { status = 500, count = 1, ...match } = options;
    this.add(match, count, undefined, () => SERVER_ERRORS[status] as FaultDecision);
  }

  /**
   * `count` matching requests (default every one) answer `code` with this reason and message, as the
   * API server answers them: an admission webhook's denial (`admission webhook "x" denied the
   * request: ...`, with the code the webhook chose), a 403 Forbidden from RBAC, a 404 NotFound.
   */
  reject(options: { code: number; reason: string; message: string; count?: number } & FaultMatch): void {
    const { code, reason, message, count = Number.POSITIVE_INFINITY, ...match } = options;
    this.add(match, count, undefined, () => ({ kind: "answer", code, reason, message }));
  }

  /** `count` matching writes answer 409 Conflict (or every one for `ms` when given). */
  conflictStorm(options: { count?: number; ms?: number } & FaultMatch = {}): void {
    const { count = 10, ms, ...match } = options;
    const verbs = match.verbs ?? ["patch", "update"];
    this.add({ ...match, verbs }, ms === undefined ? count : Number.POSITIVE_INFINITY, ms, (info) => ({
      kind: "answer",
      code: 409,
      reason: "Conflict",
      message: `Operation cannot be fulfilled on ${info.resource}.networking.istio.io "${info.name ?? ""}": the object has been modified; please apply your changes to the latest version and try again`,
    }));
  }

  /**
   * Matching writes are denied by an admission webhook: the next `count`, or every one for `ms` from
   * the first denied (kube-apiserver's answer when a webhook denies without a code: 400, no reason).
   */
  deny(options: { count?: number; ms?: number; webhook?: string; message?: string } & FaultMatch = {}): void {
    const {
      count = 1,
      ms,
      webhook = "policy.example.com",
      message = "changes are frozen",
      ...match
    } = options;
    const verbs = match.verbs ?? ["patch", "update", "create"];
    this.add({ ...match, verbs }, ms === undefined ? count : Number.POSITIVE_INFINITY, ms, () => ({
      kind: "answer",
      code: 400,
      reason: "",
      message: `admission webhook "${webhook}" denied the request: ${message}`,
    }));
  }

  /** Matching writes are forbidden by RBAC: the next `count`, or every one for `ms` from the first. */
  forbid(options: { count?: number; ms?: number; user?: string } & FaultMatch = {}): void {
    const { count = 1, ms, user = "kubernetes-admin", ...match } = options;
    const verbs = match.verbs ?? ["patch", "update", "create"];
    this.add({ ...match, verbs }, ms === undefined ? count : Number.POSITIVE_INFINITY, ms, (info) => ({
      kind: "answer",
      code: 403,
      reason: "Forbidden",
      message: `${info.resource}.networking.istio.io "${info.name ?? ""}" is forbidden: User "${user}" cannot ${info.verb} resource "${info.resource}" in API group "networking.istio.io"${info.namespace ? ` in the namespace "${info.namespace}"` : ""}`,
    }));
  }

  /** `count` matching requests are held unanswered until `release()` (or the emulator stops). */
  hold(options: { count?: number } & FaultMatch = {}): void {
    const { count = 1, ...match } = options;
    this.add(match, count, undefined, () => ({
      kind: "hold",
      released: new Promise<void>((done) => this.releaseHeld.push(done)),
    }));
  }

  /** `count` matching writes are stored, then the connection is dropped (or left hanging). */
  applyThenDrop(options: { count?: number; outcome?: "drop" | "hang" } & FaultMatch = {}): void {
    const { count = 1, outcome = "drop", ...match } = options;
    this.add({ ...match, verbs: match.verbs ?? ["patch", "update"] }, count, undefined, () => ({
      kind: "apply-then",
      outcome,
    }));
  }

  /** Held requests go on to be served normally. */
  release(): void {
    for (const done of this.releaseHeld.splice(0)) done();
  }

  /** Removes every rule (held requests stay held until `release()`). */
  clear(): void {
    this.rules = [];
  }

  onRequest(listener: (info: RequestInfo) => void): void {
    this.listeners.push(listener);
  }

  /** Called by the emulator for each API request. */
  decide(info: RequestInfo): FaultDecision | undefined {
    for (const listener of this.listeners) listener(info);
    for (const rule of this.rules) {
      const { verbs, resource, after } = rule.match;
      if (resource && resource !== info.resource) continue;
      if (rule.match.name !== undefined && rule.match.name !== info.name) continue;
      if (!rule.armed) {
        if (after === info.verb && (!resource || resource === info.resource)) rule.armed = true;
        continue;
      }
      if (verbs && !verbs.includes(info.verb)) continue;
      if ((rule.match.skip ?? 0) > 0) {
        rule.match.skip = (rule.match.skip ?? 0) - 1;
        continue;
      }
      if (rule.windowMs !== undefined) {
        rule.startsAt ??= info.at;
        if (info.at > rule.startsAt + rule.windowMs) continue;
      }
      if (rule.remaining <= 0) continue;
      rule.remaining -= 1;
      const decision = rule.decide(info);
      this.hits.push({ ...info, fault: decision.kind === "answer" ? String(decision.code) : decision.kind });
      return decision;
    }
    return undefined;
  }

  private add(
    match: FaultMatch,
    remaining: number,
    windowMs: number | undefined,
    decide: Rule["decide"],
    startsAt?: number,
  ): void {
    this.rules.push({
      match: { ...match },
      remaining,
      windowMs,
      startsAt,
      armed: match.after === undefined,
      decide,
    });
  }
}
