/**
 * An HTTP proxy on loopback in front of a real server (Prometheus): it answers after `delayMs`
 * (a Prometheus that answers after 60 s), can switch to another server behind the same URL, and can
 * strip a path prefix so the action can be given a URL with a token in its path, as hosted
 * Prometheus services issue them.
 */
import { createServer, request, type Server } from "node:http";
import type { Socket } from "node:net";

export interface SlowProxyOptions {
  target: string;
  /** A leading path segment (e.g. "/tok_123") removed before forwarding. */
  stripPrefix?: string;
}

export class SlowProxy {
  /** How long each request waits before it is forwarded; change it at any time. */
  delayMs = 0;
  /** Where requests go; change it to put another server behind the same URL. */
  target: string;
  /** Requests received, with when they arrived. */
  readonly requests: Array<{ at: number; path: string }> = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  private readonly options: SlowProxyOptions;

  constructor(options: SlowProxyOptions) {
    this.options = options;
    this.target = options.target;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const path = req.url ?? "/";
      this.requests.push({ at: Date.now(), path });
      const forwardPath =
        this.options.stripPrefix && path.startsWith(this.options.stripPrefix)
          ? path.slice(this.options.stripPrefix.length) || "/"
          : path;
      const forward = () => {
        if (req.destroyed || res.destroyed) return;
        const target = new URL(this.target);
        const upstream = request(
          {
            host: target.hostname,
            port: target.port,
            method: req.method,
            path: forwardPath,
            headers: { ...req.headers, host: target.host },
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on("error", () => {
          if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
          res.end("bad gateway");
        });
        req.pipe(upstream);
      };
      if (this.delayMs > 0) {
        const timer = setTimeout(forward, this.delayMs);
        res.on("close", () => clearTimeout(timer));
      } else forward();
    });
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((done) => this.server?.listen(0, "127.0.0.1", done));
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("slow proxy: no port");
    this.port = address.port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((done) => (this.server ? this.server.close(() => done()) : done()));
  }
}
