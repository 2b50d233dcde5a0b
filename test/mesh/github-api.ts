/**
 * A GitHub REST API emulator for `GITHUB_API_URL`, for what the action calls: issue comments (list
 * with real pagination and `Link` headers, create, update), a commit's pull requests, commit
 * statuses, deployments and deployment statuses, workflow run attempts, the comparison of two
 * commits (./github-commits.ts), and GraphQL `viewer { login }`. As for a
 * workflow's GITHUB_TOKEN, `GET /user` answers 403. It records every request and can answer 403 on
 * writes, as GitHub does for a fork's read-only token.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { CommitHistory } from "./github-commits.ts";
import { GitHubFaultPlan } from "./github-faults.ts";
import { pageOf } from "./github-pages.ts";

export interface GitHubUser {
  login: string;
  id: number;
  type: "Bot" | "User";
}

export interface Comment {
  id: number;
  node_id: string;
  body: string;
  user: GitHubUser;
  created_at: string;
  updated_at: string;
  html_url: string;
  issue_url: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  status: number;
  user?: string;
}

/** A workflow run's `status` as the REST API gives it. */
export type WorkflowRunStatus = "queued" | "in_progress" | "completed" | "waiting" | "requested" | "pending";

export const BOT: GitHubUser = { login: "github-actions[bot]", id: 41898282, type: "Bot" };
export const HUMAN: GitHubUser = { login: "octocat", id: 583231, type: "User" };

/** GitHub's answer to a comment body over 65,536 characters. */
export const TOO_LONG = {
  message: "Validation Failed",
  errors: [
    {
      resource: "IssueComment",
      code: "custom",
      field: "body",
      message: "body is too long (maximum is 65536 characters)",
    },
  ],
  status: "422",
};

const FORBIDDEN = {
  message: "Resource not accessible by integration",
  documentation_url: "https://docs.github.com/rest",
  status: "403",
};

export class GitHubApiEmulator {
  readonly requests: RecordedRequest[] = [];
  /** Comments by "owner/repo#number". */
  readonly comments = new Map<string, Comment[]>();
  /** Pull request numbers by commit sha. */
  readonly commitPulls = new Map<string, number[]>();
  readonly statuses: Array<{
    sha: string;
    state: string;
    context: string;
    description: string;
    target_url?: string;
  }> = [];
  readonly deployments: Array<{
    id: number;
    ref: string;
    environment: string;
    statuses: Array<{ state: string; description?: string }>;
  }> = [];
  /**
   * Workflow run attempts by "owner/repo run <id> attempt <n>" (the action's lease holder): what
   * `GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}` answers. Unknown: 404.
   */
  readonly runs = new Map<string, { status: WorkflowRunStatus; conclusion: string | null }>();
  /** The repository's commits, for the compare API (every repository the emulator serves shares it). */
  readonly history = new CommitHistory();
  /** Token -> user. Unknown tokens get 401 Bad credentials. */
  readonly tokens = new Map<string, GitHubUser>([["ghs_bot_token", BOT]]);
  /** When true, every write answers 403 as for a fork's pull request. */
  readOnly = false;
  /** Fault hooks: 502, secondary rate limits, held requests. */
  readonly faultPlan = new GitHubFaultPlan();
  // report helper: a test's own answer to a request (a 502, a rate limit, "hang": never answered).
  fault?: (
    request: RecordedRequest,
  ) => { status: number; body?: unknown; headers?: Record<string, string> } | "hang" | undefined;
  private nextId = 1_000_000;
  private server?: Server;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    await new Promise<void>((done) => this.server?.listen(0, "127.0.0.1", done));
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("github emulator: no port");
    this.port = address.port;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((done) => (this.server ? this.server.close(() => done()) : done()));
  }

  /** Adds a comment as `user` (for example 150 earlier comments by people). */
  addComment(repo: string, issue: number, body: string, user: GitHubUser = HUMAN): Comment {
    const key = `${repo}#${issue}`;
    const list = this.comments.get(key) ?? [];
    this.comments.set(key, list);
    const id = this.nextId++;
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const comment: Comment = {
      id,
      node_id: `IC_${id}`,
      body,
      user,
      created_at: now,
      updated_at: now,
      html_url: `https://github.com/${repo}/pull/${issue}#issuecomment-${id}`,
      issue_url: `${this.url}/repos/${repo}/issues/${issue}`,
    };
    list.push(comment);
    return comment;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    let text = "";
    for await (const chunk of req) text += chunk;
    const body = text ? JSON.parse(text) : undefined;
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      status: 0,
    };
    this.requests.push(record);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
      res.end(payload === undefined ? "" : JSON.stringify(payload));
    };
    // faults helper: the fault plan answers or holds a request before GitHub would serve it.
    const planned = this.faultPlan.decide(record.method, url.pathname);
    if (planned?.kind === "answer") {
      if (planned.afterMs) await new Promise((done) => setTimeout(done, planned.afterMs));
      if (res.destroyed) return;
      return send(planned.status, planned.body, planned.headers);
    }
    if (planned?.kind === "hold") {
      await planned.released;
      if (res.destroyed) return;
    }
    const fault = this.fault?.(record); // report helper
    if (fault === "hang") return;
    if (fault) return send(fault.status, fault.body, fault.headers);
    const auth = req.headers.authorization ?? "";
    const user = this.tokens.get(auth.replace(/^(token|Bearer)\s+/i, ""));
    if (!user)
      return send(401, {
        message: "Bad credentials",
        documentation_url: "https://docs.github.com/rest",
        status: "401",
      });
    record.user = user.login;
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/^\/api\/v3/, "");
    if (this.readOnly && method !== "GET" && path !== "/graphql") return send(403, FORBIDDEN);

    let m: RegExpExecArray | null;
    // A workflow's GITHUB_TOKEN (an installation, a bot) gets 403 here; a person's token gets its user.
    if (method === "GET" && path === "/user")
      return user.type === "Bot" ? send(403, FORBIDDEN) : send(200, user);
    if (method === "POST" && path === "/graphql") {
      if (/viewer\s*\{\s*login/.test(String(body?.query)))
        return send(200, { data: { viewer: { login: user.login } } });
      return send(200, { errors: [{ message: "unsupported query in emulator" }] });
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/comments$/.exec(path);
    if (m) {
      const key = `${m[1]}#${m[2]}`;
      if (method === "GET") return this.paginate(send, url, this.comments.get(key) ?? []);
      if (method === "POST") {
        if (typeof body?.body !== "string")
          return send(422, { message: 'Invalid request.\n\n"body" wasn\'t supplied.', status: "422" });
        if (body.body.length > 65536) {
          return send(422, TOO_LONG);
        }
        return send(201, this.addComment(m[1] as string, Number(m[2]), body.body, user));
      }
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)$/.exec(path);
    if (m) {
      const comment = [...this.comments.entries()]
        .filter(([k]) => k.startsWith(`${m?.[1]}#`))
        .flatMap(([, list]) => list)
        .find((c) => c.id === Number(m?.[2]));
      if (!comment)
        return send(404, {
          message: "Not Found",
          documentation_url: "https://docs.github.com/rest",
          status: "404",
        });
      if (method === "GET") return send(200, comment);
      if (method === "PATCH") {
        if (comment.user.login !== user.login) return send(403, FORBIDDEN);
        if (typeof body?.body === "string" && body.body.length > 65536) {
          return send(422, TOO_LONG);
        }
        comment.body = body.body;
        comment.updated_at = new Date().toISOString().replace(/\.\d+Z$/, "Z");
        return send(200, comment);
      }
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/commits\/([^/]+)\/pulls$/.exec(path);
    if (m && method === "GET") {
      const pulls = (this.commitPulls.get(m[2] as string) ?? []).map((n) => ({
        number: n,
        state: "open",
        html_url: `https://github.com/${m?.[1]}/pull/${n}`,
        head: { sha: m?.[2] },
      }));
      return this.paginate(send, url, pulls);
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/statuses\/([^/]+)$/.exec(path);
    if (m && method === "POST") {
      const status = {
        sha: m[2] as string,
        state: body.state,
        context: body.context ?? "default",
        description: body.description ?? "",
        target_url: body.target_url,
      };
      this.statuses.push(status);
      return send(201, { id: this.nextId++, ...status, creator: user });
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/deployments$/.exec(path);
    if (m) {
      if (method === "POST") {
        const deployment = {
          id: this.nextId++,
          ref: body.ref,
          environment: body.environment ?? "production",
          statuses: [],
        };
        this.deployments.push(deployment);
        return send(201, { ...deployment, sha: body.ref, task: body.task ?? "deploy", creator: user });
      }
      if (method === "GET") return this.paginate(send, url, this.deployments);
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/actions\/runs\/(\d+)\/attempts\/(\d+)$/.exec(path);
    if (m && method === "GET") {
      const run = this.runs.get(`${m[1]} run ${m[2]} attempt ${m[3]}`);
      if (!run) return send(404, { message: "Not Found", status: "404" });
      return send(200, workflowRun(this.url, m[1] as string, Number(m[2]), Number(m[3]), run));
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/compare\/([^/]+)$/.exec(path);
    if (m && method === "GET") {
      const answer = this.history.compare(this.url, m[1] as string, m[2] as string, url);
      return send(answer.status, answer.body, answer.headers);
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/deployments\/(\d+)\/statuses$/.exec(path);
    if (m && method === "POST") {
      const deployment = this.deployments.find((d) => d.id === Number(m?.[2]));
      if (!deployment) return send(404, { message: "Not Found", status: "404" });
      deployment.statuses.push({ state: body.state, description: body.description });
      return send(201, {
        id: this.nextId++,
        state: body.state,
        description: body.description,
        creator: user,
      });
    }
    return send(404, {
      message: "Not Found",
      documentation_url: "https://docs.github.com/rest",
      status: "404",
    });
  }

  /** GitHub's pagination (./github-pages.ts). */
  private paginate(
    send: (s: number, p: unknown, h?: Record<string, string>) => void,
    url: URL,
    items: unknown[],
  ): void {
    const { perPage, page, headers } = pageOf(url, items.length);
    send(200, items.slice((page - 1) * perPage, page * perPage), headers);
  }
}

/** The part of GitHub's workflow-run object (GET .../actions/runs/{id}/attempts/{n}) a client reads. */
function workflowRun(
  apiUrl: string,
  repo: string,
  id: number,
  attempt: number,
  run: { status: WorkflowRunStatus; conclusion: string | null },
) {
  return {
    id,
    name: "deploy",
    node_id: `WFR_${id}`,
    run_number: id,
    run_attempt: attempt,
    event: "push",
    status: run.status,
    conclusion: run.status === "completed" ? run.conclusion : null,
    workflow_id: 1,
    url: `${apiUrl}/repos/${repo}/actions/runs/${id}`,
    html_url: `https://github.com/${repo}/actions/runs/${id}/attempts/${attempt}`,
    created_at: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    updated_at: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
}
