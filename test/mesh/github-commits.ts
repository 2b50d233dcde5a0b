/**
 * A repository's commit history for the GitHub API emulator, and GitHub's "Compare two commits"
 * (`GET /repos/{owner}/{repo}/compare/{base}...{head}`) over it, as docs.github.com documents it:
 *
 * - the commits reachable from head and not from base (`git log base..head`), in chronological
 *   order (oldest first), each as the commit object the commits API gives (`sha`, `commit.message`,
 *   `commit.author.{name,email,date}`, `author` the matched account or null, `parents`);
 * - `status` ahead, behind, diverged or identical, `ahead_by`, `behind_by`, `total_commits`
 *   (= ahead_by), `merge_base_commit`, `base_commit`, `html_url`, `permalink_url`;
 * - paginated with `per_page` (default 30, at most 100) and `page`, with a `Link` header; the
 *   changed `files` only on page 1. Without either parameter the list holds at most 250 commits,
 *   the last of them the newest of the comparison;
 * - 404 when base or head is not a commit of the repository, and when they share no history.
 */
import { randomBytes } from "node:crypto";
import { pageOf } from "./github-pages.ts";

export interface GitCommit {
  sha: string;
  message: string;
  author: { name: string; email: string; date: string };
  /** The GitHub account the author's email belongs to; null when GitHub matches none. */
  login: string | null;
  parents: string[];
}

export interface CompareAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const NOT_FOUND = {
  message: "Not Found",
  documentation_url: "https://docs.github.com/rest/commits/commits#compare-two-commits",
  status: "404",
};

/** A fresh 40-hex sha (not a real object id: the emulator only needs it unique). */
export const newSha = (): string => randomBytes(20).toString("hex");

export class CommitHistory {
  /** In the order added, parents before children (the emulator's "chronological" order). */
  private readonly commits: GitCommit[] = [];
  private readonly bySha = new Map<string, GitCommit>();

  add(commit: Partial<GitCommit> & { message: string }): GitCommit {
    const parents = commit.parents ?? (this.commits.length ? [this.commits.at(-1)?.sha as string] : []);
    for (const p of parents) if (!this.bySha.has(p)) throw new Error(`github emulator: unknown parent ${p}`);
    const full: GitCommit = {
      sha: commit.sha ?? newSha(),
      message: commit.message,
      author: commit.author ?? {
        name: "Mona Lisa",
        email: "mona@example.com",
        date: new Date(Date.now() + this.commits.length * 1000).toISOString().replace(/\.\d+Z$/, "Z"),
      },
      login: commit.login === undefined ? "monalisa" : commit.login,
      parents,
    };
    if (this.bySha.has(full.sha)) throw new Error(`github emulator: commit ${full.sha} exists`);
    this.commits.push(full);
    this.bySha.set(full.sha, full);
    return full;
  }

  /** `n` commits in a line after `parent` (default: the last commit added); their shas, oldest first. */
  line(n: number, parent?: string, make: (i: number) => Partial<GitCommit> = () => ({})): string[] {
    const shas: string[] = [];
    let last = parent ?? this.commits.at(-1)?.sha;
    for (let i = 0; i < n; i++) {
      const c = this.add({ message: `Change ${i + 1}`, ...make(i), parents: last ? [last] : [] });
      shas.push(c.sha);
      last = c.sha;
    }
    return shas;
  }

  /** A full sha, or an abbreviation of at least 7 hex digits that names one commit. */
  private resolve(ref: string): GitCommit | undefined {
    if (this.bySha.has(ref)) return this.bySha.get(ref);
    if (!/^[0-9a-f]{7,39}$/.test(ref)) return undefined;
    const found = this.commits.filter((c) => c.sha.startsWith(ref));
    return found.length === 1 ? found[0] : undefined;
  }

  private ancestors(sha: string): Set<string> {
    const seen = new Set<string>();
    const todo = [sha];
    while (todo.length) {
      const s = todo.pop() as string;
      if (seen.has(s)) continue;
      seen.add(s);
      todo.push(...(this.bySha.get(s)?.parents ?? []));
    }
    return seen;
  }

  /** The answer to `GET /repos/{repo}/compare/{basehead}` with `query`, as GitHub gives it. */
  compare(apiUrl: string, repo: string, basehead: string, url: URL): CompareAnswer {
    const [baseRef, headRef, extra] = decodeURIComponent(basehead).split("...");
    const base = baseRef ? this.resolve(baseRef) : undefined;
    const head = headRef ? this.resolve(headRef) : undefined;
    if (!base || !head || extra !== undefined) return { status: 404, body: NOT_FOUND };
    const fromBase = this.ancestors(base.sha);
    const fromHead = this.ancestors(head.sha);
    const common = this.commits.filter((c) => fromBase.has(c.sha) && fromHead.has(c.sha));
    if (common.length === 0)
      return {
        status: 404,
        body: { ...NOT_FOUND, message: `No common ancestor between ${baseRef} and ${headRef}.` },
      };
    const ahead = this.commits.filter((c) => fromHead.has(c.sha) && !fromBase.has(c.sha));
    const behindBy = this.commits.filter((c) => fromBase.has(c.sha) && !fromHead.has(c.sha)).length;
    const status =
      ahead.length > 0 ? (behindBy > 0 ? "diverged" : "ahead") : behindBy > 0 ? "behind" : "identical";
    const paged = url.searchParams.has("per_page") || url.searchParams.has("page");
    const { perPage, page, headers } = pageOf(url, ahead.length);
    const listed = paged ? ahead.slice((page - 1) * perPage, page * perPage) : ahead.slice(-250);
    const object = (c: GitCommit) => commitObject(apiUrl, repo, c);
    const body = {
      url: `${apiUrl}/repos/${repo}/compare/${basehead}`,
      html_url: `https://github.com/${repo}/compare/${basehead}`,
      permalink_url: `https://github.com/${repo}/compare/${base.sha.slice(0, 7)}...${head.sha.slice(0, 7)}`,
      diff_url: `https://github.com/${repo}/compare/${basehead}.diff`,
      patch_url: `https://github.com/${repo}/compare/${basehead}.patch`,
      base_commit: object(base),
      merge_base_commit: object(common.at(-1) as GitCommit),
      status,
      ahead_by: ahead.length,
      behind_by: behindBy,
      total_commits: ahead.length,
      commits: listed.map(object),
      ...(page === 1 ? { files: [] } : {}),
    };
    // Without per_page or page, compare answers with at most 250 commits and no Link header.
    return { status: 200, body, headers: paged ? headers : {} };
  }
}

/** A commit as the commits and compare APIs give it. */
function commitObject(apiUrl: string, repo: string, c: GitCommit) {
  const account = c.login
    ? {
        login: c.login,
        id: 1000 + c.login.length,
        type: c.login.endsWith("[bot]") ? "Bot" : "User",
        html_url: `https://github.com/${c.login}`,
      }
    : null;
  return {
    sha: c.sha,
    node_id: `C_${c.sha.slice(0, 12)}`,
    url: `${apiUrl}/repos/${repo}/commits/${c.sha}`,
    html_url: `https://github.com/${repo}/commit/${c.sha}`,
    commit: {
      author: c.author,
      committer: c.author,
      message: c.message,
      tree: { sha: c.sha.split("").reverse().join(""), url: `${apiUrl}/repos/${repo}/git/trees/${c.sha}` },
      comment_count: 0,
    },
    author: account,
    committer: account,
    parents: c.parents.map((sha) => ({ sha, url: `${apiUrl}/repos/${repo}/commits/${sha}` })),
  };
}
