/**
 * A Prometheus HTTP API client on `fetch`: `/api/v1/query` with a per-request timeout shorter than
 * the analysis interval, retries through src/retry.ts (5xx, 429 after its Retry-After, timeouts,
 * network errors) within a total budget also shorter than the interval, an AbortSignal that ends
 * a hung request at once, and a typed error for each failure class. Values arrive as strings
 * ("NaN", "+Inf" included) and leave as numbers; `warnings` are returned, never dropped.
 */
import * as core from "@actions/core";
import { PROMETHEUS_MAX_REQUEST_TIMEOUT_MS } from "../constants.ts";
import { abortReason, parseRetryAfter, type RetryHint, type RetryOptions, retry } from "../retry.ts";

export type PrometheusProblem = "bad_data" | "execution" | "timeout" | "unreachable" | "not_json" | "http";

export class PrometheusError extends Error implements RetryHint {
  readonly problem: PrometheusProblem;
  readonly status?: number;
  retryAfterMs?: number;
  /** Whether another try may pass: no answer or a 5xx/429 (set where the error is made). */
  readonly transient: boolean;
  constructor(problem: PrometheusProblem, message: string, status?: number, transient = false) {
    super(message);
    this.name = "PrometheusError";
    this.problem = problem;
    this.status = status;
    this.transient = transient;
  }
}

/** One series' raw sample values in time order (an instant sample is a series of one value). */
export interface RangeSeries {
  metric: Record<string, string>;
  values: number[];
  /**
   * Each value's sample time, ms since the epoch. For a range selector these are the times
   * Prometheus scraped (each target at its own offset); for an instant vector, the evaluation time.
   */
  times?: number[];
}

export interface SeriesResult {
  series: RangeSeries[];
  warnings: string[];
}

export interface PrometheusClientOptions {
  url: string;
  /** The URL as messages may show it (no credentials); default the URL's origin. */
  displayUrl?: string;
  /** Sent as given (src/inputs/parsers.ts validates them). */
  headers?: Readonly<Record<string, string>>;
  /** The analysis interval: sets the defaults below so a query never outlasts it. */
  intervalMs?: number;
  /** One request (default: min(10 s, interval x 2/3)). */
  timeoutMs?: number;
  /** Every attempt of one query together (default: interval x 0.8, or 10 s without an interval). */
  retryBudgetMs?: number;
  /** At most this many retries (default: as many as the budget allows). */
  retries?: number;
  /** The first wait between attempts (each wait is capped at 2 s). */
  minRetryDelayMs?: number;
  fetch?: typeof fetch;
  /** For tests in virtual time. */
  sleep?: RetryOptions["sleep"];
  now?: () => number;
}

/** A query's timeout and retry budget for an analysis interval: both end before the next interval. */
export function prometheusTimings(intervalMs: number): { timeoutMs: number; retryBudgetMs: number } {
  return {
    timeoutMs: Math.max(1, Math.min(PROMETHEUS_MAX_REQUEST_TIMEOUT_MS, Math.round((intervalMs * 2) / 3))),
    retryBudgetMs: Math.round(intervalMs * 0.8),
  };
}

/** Parses a Prometheus sample value: decimal strings, "NaN", "+Inf", "-Inf". */
export function parseSampleValue(text: string): number {
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  const n = Number(text);
  if (text.trim() === "" || (Number.isNaN(n) && text !== "NaN"))
    throw new PrometheusError("not_json", `unparseable sample value ${JSON.stringify(text)}`);
  return n;
}

/** A sample's time (float seconds in the API) as whole ms; anything else is not Prometheus' answer. */
function sampleTime(seconds: unknown): number {
  if (typeof seconds !== "number" || !Number.isFinite(seconds))
    throw new PrometheusError("not_json", `unparseable sample time ${JSON.stringify(seconds)}`);
  return Math.round(seconds * 1000);
}

interface ApiBody {
  status?: string;
  errorType?: string;
  error?: string;
  warnings?: string[];
  infos?: string[];
  data?: { resultType?: string; result?: unknown };
}

export class PrometheusClient {
  private readonly options: PrometheusClientOptions & {
    timeoutMs: number;
    retryBudgetMs: number;
    displayUrl: string;
  };

  constructor(options: PrometheusClientOptions) {
    const timings = prometheusTimings(options.intervalMs ?? 15_000);
    this.options = {
      ...options,
      timeoutMs: options.timeoutMs ?? timings.timeoutMs,
      retryBudgetMs:
        options.retryBudgetMs ?? (options.intervalMs === undefined ? 10_000 : timings.retryBudgetMs),
      url: options.url.replace(/\/+$/, ""),
      displayUrl: options.displayUrl ?? new URL(options.url).origin,
    };
  }

  /** The API path joined onto the base URL's path, keeping its query (hosted Prometheus keys). */
  private endpoint(path: string): string {
    const url = new URL(this.options.url);
    url.pathname = `${url.pathname.replace(/\/+$/, "")}${path}`;
    return url.toString();
  }

  /**
   * An instant query whose result is a vector or, for a bare range selector such as
   * `metric[90s]`, a matrix of every raw sample in the range.
   */
  async querySeries(promql: string, time?: Date, signal?: AbortSignal): Promise<SeriesResult> {
    const form = new URLSearchParams({ query: promql });
    if (time) form.set("time", (time.getTime() / 1000).toFixed(3));
    const { retries, minRetryDelayMs, retryBudgetMs, timeoutMs } = this.options;
    core.debug(`PromQL at ${time?.toISOString() ?? "now"}: ${promql}`);
    const body = await retry(
      // Each attempt's timeout also ends with the budget, so a query never outlasts the interval.
      ({ remainingMs }) =>
        this.post("/api/v1/query", form, Math.max(1, Math.min(timeoutMs, remainingMs)), signal),
      {
        budgetMs: retryBudgetMs,
        signal,
        ...(retries === undefined ? {} : { maxAttempts: retries + 1 }),
        ...(minRetryDelayMs === undefined ? {} : { baseWaitMs: minRetryDelayMs }),
        sleep: this.options.sleep,
        now: this.options.now,
      },
    );
    const { resultType, result } = body.data ?? {};
    if ((resultType !== "vector" && resultType !== "matrix") || !Array.isArray(result)) {
      throw new PrometheusError(
        "not_json",
        `expected a vector or matrix result, got ${resultType ?? "nothing"}`,
      );
    }
    core.debug(
      `PromQL answer: ${resultType}, ${result.length} series, ${body.warnings?.length ?? 0} warning(s)`,
    );
    type Raw = {
      metric?: Record<string, string>;
      value?: [number, string];
      values?: Array<[number, string]>;
    };
    return {
      series: (result as Raw[]).map((r) => {
        const samples = resultType === "vector" ? [r.value ?? [0, ""]] : (r.values ?? []);
        return {
          metric: r.metric ?? {},
          values: samples.map(([, v]) => parseSampleValue(v)),
          times: samples.map(([t]) => sampleTime(t)),
        };
      }),
      warnings: [...(body.warnings ?? [])],
    };
  }

  /**
   * The type Prometheus' metadata API gives a metric (`counter`, `gauge`, `histogram`...), or
   * undefined when it has none (federation, remote write and recording rules carry no metadata).
   * One attempt: it only sharpens a preflight refusal.
   */
  async metricType(metric: string, signal?: AbortSignal): Promise<string | undefined> {
    const form = new URLSearchParams({ metric, limit: "1" });
    const body = await this.post("/api/v1/metadata", form, this.options.timeoutMs, signal, "GET");
    const entries = (body.data as unknown as Record<string, Array<{ type?: unknown }>> | undefined)?.[metric];
    const type = Array.isArray(entries) ? entries[0]?.type : undefined;
    return typeof type === "string" ? type : undefined;
  }

  /** One attempt; every failure is a PrometheusError that says whether another try may pass. */
  private async post(
    path: string,
    form: URLSearchParams,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    method: "GET" | "POST" = "POST",
  ): Promise<ApiBody> {
    const doFetch = this.options.fetch ?? fetch;
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      const get = method === "GET";
      // A GET carries the form in the query, after any the base URL has (hosted Prometheus keys).
      const url = new URL(this.endpoint(path));
      if (get) for (const [key, value] of form) url.searchParams.append(key, value);
      response = await doFetch(url.toString(), {
        method,
        headers: {
          ...(get ? {} : { "content-type": "application/x-www-form-urlencoded" }),
          accept: "application/json",
          ...this.options.headers,
        },
        ...(get ? {} : { body: form }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const timedOut = timeout.aborted || (error as Error).name === "TimeoutError";
      throw new PrometheusError(
        timedOut ? "timeout" : "unreachable",
        timedOut
          ? `no answer from ${this.options.displayUrl} within ${timeoutMs} ms`
          : `cannot reach ${this.options.displayUrl}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
        undefined,
        true,
      );
    }
    let body: ApiBody;
    try {
      body = JSON.parse(text) as ApiBody;
    } catch {
      throw this.failure(
        new PrometheusError(
          "not_json",
          `${this.options.displayUrl}${path} answered ${response.status} with a body that is not JSON (is prometheus-url the Prometheus API?)`,
          response.status,
          retriable(response.status),
        ),
        response,
      );
    }
    if (response.ok && body.status === "success") return body;
    const type = body.errorType ?? "";
    const problem: PrometheusProblem =
      type === "bad_data"
        ? "bad_data"
        : type === "execution"
          ? "execution"
          : type === "timeout" || response.status === 503
            ? "timeout"
            : "http";
    throw this.failure(
      new PrometheusError(
        problem,
        `${response.status} ${type || response.statusText}: ${body.error ?? text.slice(0, 200)}`,
        response.status,
        retriable(response.status),
      ),
      response,
    );
  }

  private failure(error: PrometheusError, response: Response): PrometheusError {
    error.retryAfterMs = parseRetryAfter(
      response.headers.get("retry-after"),
      (this.options.now ?? Date.now)(),
    );
    return error;
  }
}

/** What may pass on its own: 5xx (overloaded, timed out) and 429 (rate limited). */
function retriable(status: number): boolean {
  return status >= 500 || status === 429;
}
