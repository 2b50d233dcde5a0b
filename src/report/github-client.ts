/**
 * The Octokit the reporter uses, and what its failures mean.
 *
 * Octokit's retry plugin retries 5xx and network failures (with its own backoff), the throttling
 * plugin spaces writes as GitHub asks and waits out a short secondary rate limit, and every single
 * HTTP attempt gives up after GITHUB_REQUEST_TIMEOUT_MS, so a GitHub that does not answer holds no
 * more than that per attempt. A caller's AbortSignal (passed as `request.signal`) ends a call at
 * once, without retries.
 */
import * as core from "@actions/core";
import { getOctokit } from "@actions/github";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import Bottleneck from "bottleneck/light.js";
import {
  GITHUB_MAX_INLINE_RETRY_AFTER_S,
  GITHUB_REQUEST_TIMEOUT_MS,
  GITHUB_WRITE_SPACING_MS,
} from "../constants.ts";

export type Octokit = ReturnType<typeof getOctokit>;

/** Thrown instead of a request once the caller aborted: not a RequestError, so never retried. */
export class ReportAborted extends Error {
  // The retry plugin reads `error.request.request`; an empty object makes it give up at once.
  readonly request = {};
  constructor() {
    super("reporting to GitHub was stopped");
    this.name = "ReportAborted";
  }
}

type OctokitPlugin = Parameters<typeof getOctokit>[2];
type RequestOptions = { request?: { signal?: AbortSignal } } & Record<string, unknown>;

/**
 * Registered before the retry and throttling plugins, so it wraps each single HTTP attempt (the
 * last-registered hook is the outermost): every attempt gets its own timeout.
 */
type RequestAttempt = (options: RequestOptions) => Promise<unknown>;
const perAttemptTimeout = ((octokit: {
  hook: {
    wrap: (name: "request", hook: (request: RequestAttempt, options: RequestOptions) => unknown) => void;
  };
}) => {
  octokit.hook.wrap("request", (request: RequestAttempt, options: RequestOptions) => {
    const caller = options.request?.signal;
    if (caller?.aborted) throw new ReportAborted();
    const timeout = AbortSignal.timeout(GITHUB_REQUEST_TIMEOUT_MS);
    const signal = caller ? AbortSignal.any([caller, timeout]) : timeout;
    return request({ ...options, request: { ...options.request, signal } }).catch((error: unknown) => {
      if (caller?.aborted) throw new ReportAborted();
      throw error;
    });
  });
  return {};
}) as unknown as OctokitPlugin;

export interface ClientOptions {
  baseUrl: string;
  /** Octokit's retry count for 5xx and network failures (default 1: a later update retries too). */
  retries?: number;
  /**
   * Whether Octokit may wait out a short secondary rate limit itself. A flush says no: it retries
   * within its own deadline, and a timer Octokit left behind would keep the step alive past it.
   */
  mayWait?: () => boolean;
}

export function createOctokit(token: string, options: ClientOptions): Octokit {
  return getOctokit(
    token,
    {
      baseUrl: options.baseUrl,
      retry: { retries: options.retries ?? 1 },
      throttle: {
        // Writes one at a time, GITHUB_WRITE_SPACING_MS apart (see constants.ts for why not 1 s).
        write: new Bottleneck.Group({ maxConcurrent: 1, minTime: GITHUB_WRITE_SPACING_MS }),
        // A primary rate limit resets within the hour: never wait for it here; a later update retries.
        onRateLimit: () => false,
        // A short secondary rate limit is waited out once; a long one is left to a later update,
        // which honours the Retry-After (see `failureOf`).
        onSecondaryRateLimit: (
          retryAfter: number,
          _options: unknown,
          _octokit: unknown,
          retryCount: number,
        ) => retryCount < 1 && retryAfter <= GITHUB_MAX_INLINE_RETRY_AFTER_S && (options.mayWait?.() ?? true),
      },
      log: {
        debug: (m: string) => core.debug(m),
        info: (m: string) => core.debug(m),
        warn: (m: string) => core.debug(m),
        error: (m: string) => core.debug(m),
      },
    },
    perAttemptTimeout,
    retry as unknown as OctokitPlugin,
    throttling as unknown as OctokitPlugin,
  );
}

/** What a failed call means for its channel. */
export type Failure =
  /** The token may not do this (a fork's read-only token, a missing permission): stop the channel. */
  | { kind: "forbidden"; text: string; status: number }
  /**
   * Anything that may pass later (5xx, timeout, rate limit): try again with the next update.
   * `asked`: GitHub said how long to wait (a Retry-After), rather than the 60 s guessed for a limit.
   */
  | { kind: "transient"; text: string; retryAfterMs?: number; asked?: boolean }
  /** The comment was deleted meanwhile: find or create it again. */
  | { kind: "gone"; text: string };

interface ErrorShape {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | undefined> };
}

function firstLine(error: unknown): string {
  const e = error as ErrorShape;
  return `${e.status ? `${e.status} ` : ""}${e.message ?? String(error)}`.split("\n")[0] as string;
}

/** Classifies a failed GitHub call: only an answer that proves there is no permission stops a channel. */
export function failureOf(error: unknown, { updatingComment = false } = {}): Failure {
  const e = error as ErrorShape;
  const text = firstLine(error);
  const headers = e.response?.headers ?? {};
  const retryAfter = Number(headers["retry-after"]);
  const retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined;
  const rateLimited =
    e.status === 429 ||
    headers["x-ratelimit-remaining"] === "0" ||
    /rate limit/i.test(e.message ?? "") ||
    (e.status === 403 && retryAfterMs !== undefined);
  if (rateLimited)
    return {
      kind: "transient",
      text,
      retryAfterMs: retryAfterMs ?? 60_000,
      asked: retryAfterMs !== undefined,
    };
  if (e.status === 404 && updatingComment) return { kind: "gone", text };
  if (e.status === 401 || e.status === 403 || e.status === 404)
    return { kind: "forbidden", text, status: e.status };
  return { kind: "transient", text };
}

/** GitHub's 422 for a body over its limit ("body is too long (maximum is 65536 characters)"): retrying it as it is cannot succeed. */
export function isTooLong(error: unknown): boolean {
  const e = error as { status?: number; message?: string; response?: { data?: unknown } };
  return e.status === 422 && /too long/i.test(`${e.message ?? ""} ${JSON.stringify(e.response?.data ?? "")}`);
}

/** Waits for `work` or `ms`, whichever comes first, leaving no timer behind (it would keep the step alive). */
export async function within(work: Promise<void> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((done) => (timer = setTimeout(done, Math.max(0, ms))))]);
  clearTimeout(timer);
}
