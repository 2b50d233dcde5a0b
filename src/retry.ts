/**
 * The product's one retry helper, used by every adapter (Kubernetes reads, writes and read-backs;
 * Prometheus queries). It retries what is transient — 5xx, 429 (waiting at least its
 * `Retry-After`), timeouts and connection errors, and whatever the caller adds (a conflict the
 * router re-plans) — with exponential backoff and jitter, each wait capped (2 s by default, so
 * traffic is safe within seconds of an outage's end), for at most a total time the caller gives.
 * An AbortSignal stops it at once, even mid-wait.
 *
 * Written here rather than on p-retry (which the Prometheus client used before) because p-retry
 * cannot wait for a server's `Retry-After`, measures its budget with `performance.now()` and sleeps
 * with the global `setTimeout`, so neither could be injected for tests in virtual time.
 */

import { RETRY_BASE_WAIT_MS, RETRY_MAX_WAIT_MS } from "./constants.ts";

/** What an adapter's error may say about itself; the helper reads only these fields. */
export interface RetryHint {
  /** The HTTP status the server answered, when it answered. */
  status?: number;
  /** The server's `Retry-After`, in milliseconds. */
  retryAfterMs?: number;
  /** Set by adapters: the request got no answer (connection refused or reset, timed out). */
  transient?: boolean;
}

/** Connection failures worth another try; a wrong host name (ENOTFOUND) or a TLS error is not. */
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** True for a failure that may pass on its own: 5xx, 429, timeouts, connection errors. */
export function isTransient(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const { status, transient, name, code, message } = e as RetryHint & {
      name?: string;
      code?: unknown;
      message?: string;
    };
    if (transient !== undefined) return transient;
    if (typeof status === "number") return status >= 500 || status === 429;
    if (name === "TimeoutError") return true;
    if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
    if (typeof message === "string" && /socket hang up|fetch failed|other side closed/i.test(message))
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Sleeps `ms`, rejecting with the signal's reason as soon as it is aborted. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The error an aborted signal stands for (its reason when that is an Error). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`);
}

export interface RetryAttempt {
  /** 1 for the first attempt. */
  attempt: number;
  /** Milliseconds left of the budget (an attempt may use it to bound its own timeout). */
  remainingMs: number;
  signal?: AbortSignal;
}

export interface RetryOptions {
  /** Retrying stops once another wait would end past this many milliseconds from the first attempt. */
  budgetMs: number;
  signal?: AbortSignal;
  /** At most this many attempts (default: as many as the budget allows). */
  maxAttempts?: number;
  /** Failures the caller also retries (a conflict to re-plan), besides the transient ones. */
  retryAlso?: (error: unknown) => boolean;
  /** Failures never retried even when they look transient. */
  never?: (error: unknown) => boolean;
  baseWaitMs?: number;
  maxWaitMs?: number;
  /** The error to throw when the budget ran out on a failure still worth retrying (default: that failure). */
  onExhausted?: (error: unknown, spent: { attempts: number; elapsedMs: number }) => unknown;
  /** Called before each wait, e.g. to log what is being retried. */
  onRetry?: (info: { error: unknown; attempt: number; waitMs: number }) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

/** The wait before attempt `attempt + 1`: exponential with "equal jitter" (between half and all of it), capped. */
export function backoffMs(attempt: number, base: number, cap: number, random: () => number): number {
  const full = Math.min(cap, base * 2 ** (attempt - 1));
  return Math.round(full / 2 + (random() * full) / 2);
}

/**
 * Runs `attempt` until it succeeds, fails for good, the budget is spent or the signal aborts.
 * Rejects with the last error itself (typed errors stay typed); when the budget ran out on a
 * still-transient failure, `onExhausted` may rewrite that error.
 */
export async function retry<T>(
  attempt: (context: RetryAttempt) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  const base = options.baseWaitMs ?? RETRY_BASE_WAIT_MS;
  const cap = options.maxWaitMs ?? RETRY_MAX_WAIT_MS;
  const { signal } = options;
  const started = now();
  for (let n = 1; ; n++) {
    if (signal?.aborted) throw abortReason(signal);
    const remainingMs = Math.max(0, started + options.budgetMs - now());
    try {
      return await attempt({ attempt: n, remainingMs, signal });
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      const retryable = !options.never?.(error) && (isTransient(error) || !!options.retryAlso?.(error));
      if (!retryable) throw error;
      const hinted = (error as RetryHint | undefined)?.retryAfterMs;
      // The server's Retry-After is a floor, not subject to the cap: it said when to come back.
      const waitMs = Math.max(backoffMs(n, base, cap, random), hinted ?? 0);
      const elapsedMs = now() - started;
      if (
        (options.maxAttempts !== undefined && n >= options.maxAttempts) ||
        elapsedMs + waitMs > options.budgetMs
      )
        throw options.onExhausted ? options.onExhausted(error, { attempts: n, elapsedMs }) : error;
      options.onRetry?.({ error, attempt: n, waitMs });
      await sleep(waitMs, signal);
    }
  }
}
