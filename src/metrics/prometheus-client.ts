/**
 * A Prometheus HTTP API client on `fetch`: `/api/v1/query` with a per-request timeout, retries with
 * exponential backoff and jitter (p-retry) for 503, other 5xx and network errors only, and a typed
 * error for each failure class. Values arrive as strings ("NaN", "+Inf" included) and leave as
 * numbers; `warnings` are returned, never dropped.
 */
import pRetry, { AbortError } from "p-retry";

export type PrometheusProblem = "bad_data" | "execution" | "timeout" | "unreachable" | "not_json" | "http";

export class PrometheusError extends Error {
  readonly problem: PrometheusProblem;
  readonly status?: number;
  constructor(problem: PrometheusProblem, message: string, status?: number) {
    super(message);
    this.name = "PrometheusError";
    this.problem = problem;
    this.status = status;
  }
}

export interface InstantSample {
  metric: Record<string, string>;
  value: number;
}

export interface QueryResult {
  samples: InstantSample[];
  warnings: string[];
}

/** One series' raw sample values in time order (an instant sample is a series of one value). */
export interface RangeSeries {
  metric: Record<string, string>;
  values: number[];
}

export interface SeriesResult {
  series: RangeSeries[];
  warnings: string[];
}

export interface PrometheusClientOptions {
  url: string;
  headers?: Readonly<Record<string, string>>;
  timeoutMs?: number;
  retries?: number;
  minRetryDelayMs?: number;
  fetch?: typeof fetch;
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

interface ApiBody {
  status?: string;
  errorType?: string;
  error?: string;
  warnings?: string[];
  infos?: string[];
  data?: { resultType?: string; result?: unknown };
}

export class PrometheusClient {
  private readonly options: Required<Omit<PrometheusClientOptions, "headers" | "fetch">> &
    Pick<PrometheusClientOptions, "headers" | "fetch">;

  constructor(options: PrometheusClientOptions) {
    this.options = {
      timeoutMs: 10_000,
      retries: 3,
      minRetryDelayMs: 500,
      ...options,
      url: options.url.replace(/\/+$/, ""),
    };
  }

  /** An instant query of a vector expression; `time` defaults to the server's now. */
  async query(promql: string, time?: Date): Promise<QueryResult> {
    const { series, warnings } = await this.querySeries(promql, time);
    return { samples: series.map((s) => ({ metric: s.metric, value: s.values.at(-1) as number })), warnings };
  }

  /**
   * An instant query whose result is a vector or, for a bare range selector such as
   * `metric[90s]`, a matrix of every raw sample in the range.
   */
  async querySeries(promql: string, time?: Date): Promise<SeriesResult> {
    const form = new URLSearchParams({ query: promql });
    if (time) form.set("time", (time.getTime() / 1000).toFixed(3));
    const body = await pRetry(() => this.post("/api/v1/query", form), {
      retries: this.options.retries,
      minTimeout: this.options.minRetryDelayMs,
      factor: 2,
      randomize: true,
    });
    const { resultType, result } = body.data ?? {};
    if ((resultType !== "vector" && resultType !== "matrix") || !Array.isArray(result)) {
      throw new PrometheusError(
        "not_json",
        `expected a vector or matrix result, got ${resultType ?? "nothing"}`,
      );
    }
    type Raw = {
      metric?: Record<string, string>;
      value?: [number, string];
      values?: Array<[number, string]>;
    };
    return {
      series: (result as Raw[]).map((r) => ({
        metric: r.metric ?? {},
        values: (resultType === "vector" ? [r.value ?? [0, ""]] : (r.values ?? [])).map(([, v]) =>
          parseSampleValue(v),
        ),
      })),
      warnings: [...(body.warnings ?? [])],
    };
  }

  /** One attempt. Retryable failures throw plain errors; final ones throw AbortError(PrometheusError). */
  private async post(path: string, form: URLSearchParams): Promise<ApiBody> {
    const doFetch = this.options.fetch ?? fetch;
    let response: Response;
    try {
      response = await doFetch(`${this.options.url}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
          ...this.options.headers,
        },
        body: form,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const timedOut = (error as Error).name === "TimeoutError";
      throw new PrometheusError(
        timedOut ? "timeout" : "unreachable",
        timedOut
          ? `no answer from ${this.options.url} within ${this.options.timeoutMs} ms`
          : `cannot reach ${this.options.url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
      );
    }
    const text = await response.text();
    let body: ApiBody;
    try {
      body = JSON.parse(text) as ApiBody;
    } catch {
      const error = new PrometheusError(
        "not_json",
        `${this.options.url}${path} answered ${response.status} with a body that is not JSON (is prometheus-url the Prometheus API?)`,
        response.status,
      );
      if (response.status >= 500) throw error;
      throw new AbortError(error);
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
    const error = new PrometheusError(
      problem,
      `${response.status} ${type || response.statusText}: ${body.error ?? text.slice(0, 200)}`,
      response.status,
    );
    // Retry only what may pass on its own: 503 (overloaded, timeout) and other 5xx.
    if (response.status >= 500) throw error;
    throw new AbortError(error);
  }
}
