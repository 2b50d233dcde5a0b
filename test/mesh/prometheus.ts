/**
 * Starts the real `prometheus` binary (Debian's package) on a free loopback port with a temporary
 * config that scrapes the given targets every second, and a temporary data folder. A missing
 * binary is an error that says how to install it: tests that need Prometheus never skip silently.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump } from "js-yaml";

const PROMETHEUS_MISSING =
  "prometheus was not found on PATH: run `bash scripts/setup.sh`, which installs Debian's package, or `sudo apt-get install -y prometheus`";

export function findPrometheus(): string {
  for (const candidate of [process.env.PROMETHEUS_BIN, "prometheus"]) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ["--version"], { stdio: "ignore" });
      return candidate;
    } catch {
      // try the next
    }
  }
  throw new Error(PROMETHEUS_MISSING);
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (!address || typeof address === "string") throw new Error("no free port");
  return address.port;
}

export interface PrometheusOptions {
  targets: string[];
  scrapeIntervalSeconds?: number;
  /**
   * The replica's external labels. Prometheus derives each target's scrape offset from them, so the
   * two replicas of an HA pair (`replica: a` / `b`) scrape the same target at different moments.
   */
  externalLabels?: Record<string, string>;
  /** Query parameters on every scrape URL (tells the target which replica asks). */
  scrapeParams?: Record<string, string>;
}

export class PrometheusServer {
  private child?: ChildProcess;
  private dir?: string;
  private log = "";
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(options: PrometheusOptions): Promise<this> {
    const binary = findPrometheus();
    this.dir = mkdtempSync(join(tmpdir(), "prometheus-"));
    // Prometheus durations take no fractions: sub-second intervals are written in milliseconds.
    const seconds = options.scrapeIntervalSeconds ?? 1;
    const interval = Number.isInteger(seconds) ? `${seconds}s` : `${Math.round(seconds * 1000)}ms`;
    writeFileSync(
      join(this.dir, "prometheus.yml"),
      dump(
        {
          global: {
            scrape_interval: interval,
            evaluation_interval: interval,
            ...(options.externalLabels ? { external_labels: options.externalLabels } : {}),
          },
          scrape_configs: [
            {
              job_name: "istio-mesh",
              scrape_interval: interval,
              ...(options.scrapeParams
                ? {
                    params: Object.fromEntries(
                      Object.entries(options.scrapeParams).map(([k, v]) => [k, [v]]),
                    ),
                  }
                : {}),
              static_configs: [{ targets: options.targets }],
            },
          ],
        },
        { lineWidth: -1 },
      ),
    );
    for (let attempt = 0; attempt < 3; attempt++) {
      this.port = await freePort();
      this.log = "";
      this.launch(binary);
      if (await this.waitReady(15_000)) return this;
      await this.stop(false);
    }
    throw new Error(`prometheus did not become ready: ${this.log}`);
  }

  private launch(binary: string): void {
    const dir = this.dir as string;
    this.child = spawn(
      binary,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        "--log.level=warn",
        "--storage.tsdb.retention.time=1h",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.log = (this.log + d).slice(-4000);
    });
  }

  /**
   * faults helper: starts Prometheus again after `kill()` or `stop(false)`, on the same port and
   * data folder, as a restarted server would come back; resolves once it is ready.
   */
  async restart(): Promise<void> {
    await this.stop(false);
    this.launch(findPrometheus());
    if (!(await this.waitReady(15_000))) throw new Error(`prometheus did not restart: ${this.log}`);
  }

  private async waitReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) return false;
      try {
        const res = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(500) });
        if (res.ok) return true;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** Kills Prometheus at once (SIGKILL), as a crash would; the data folder stays until stop(). */
  kill(): void {
    this.child?.kill("SIGKILL");
  }

  async stop(removeData = true): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((done) => child.once("exit", () => done()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    if (removeData && this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
