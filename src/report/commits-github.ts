/**
 * Asks GitHub's compare API (`GET /repos/{owner}/{repo}/compare/{base}...{head}`, paginated) for
 * the commits between the last promoted release and this one. It starts when the rollout starts
 * and runs in the background: reporting never holds a traffic decision, and a failure is one line
 * in the report. The action waits a bounded time for it only after the rollout has ended.
 */
import * as core from "@actions/core";
import { scrub } from "../redact.ts";
import { logText } from "../untrusted-text.ts";
import {
  COMPARE_PER_PAGE,
  CompareAnswerError,
  type ComparePage,
  commitList,
  FULL_SHA,
  laterPages,
  parseComparePage,
} from "./commits.ts";
import { type Octokit, within } from "./github-client.ts";
import type { CommitList } from "./types.ts";

export interface CommitLister {
  /** Starts asking for the commits from `recorded` (the record's promoted commit) to `head`, once. */
  start(recorded: string | undefined, head: string): void;
  /** The list as it is now; undefined before `start`. */
  current(): CommitList | undefined;
  /** Waits at most `ms` for GitHub's answer; then stops asking, and the list says so. */
  settle(ms: number): Promise<void>;
}

export interface CompareTarget {
  /** Undefined without a token or a repository: the list then says why it is missing. */
  octokit?: Octokit;
  /** "owner/repo". */
  repository?: string;
  serverUrl: string;
}

/** What a failed call says, in one line, without anything a library may have echoed of a credential. */
function failureText(error: unknown, base: string, head: string): string {
  if (error instanceof CompareAnswerError) return error.message;
  const e = error as { status?: number; message?: string };
  if (e.status === 404)
    return `GitHub does not know ${base.slice(0, 7)} or ${head.slice(0, 7)} in this repository, or they share no history (404)`;
  const hint = e.status === 401 || e.status === 403 ? "; the token needs the permission contents: read" : "";
  const text = `GitHub's compare failed: ${e.status ? `${e.status} ` : ""}${e.message ?? String(error)}`;
  return `${scrub(text).split("\n")[0]}${hint}`;
}

export class CompareCommitLister implements CommitLister {
  private list?: CommitList;
  private work?: Promise<void>;
  private readonly stop = new AbortController();
  private readonly target: CompareTarget;
  private readonly onChange: () => void;

  constructor(target: CompareTarget, onChange: () => void) {
    this.target = target;
    this.onChange = onChange;
  }

  current(): CommitList | undefined {
    return this.list;
  }

  start(recorded: string | undefined, head: string): void {
    if (this.list) return;
    const { octokit, repository } = this.target;
    if (recorded === undefined) this.list = { kind: "first" };
    else if (!FULL_SHA.test(recorded))
      this.list = { kind: "unavailable", why: "the promoted commit the record names is not a 40-hex sha" };
    else if (!FULL_SHA.test(head))
      this.list = {
        kind: "unavailable",
        why: "this run's commit is not a 40-hex sha (not run by GitHub Actions)",
      };
    else if (!octokit || !repository)
      this.list = { kind: "unavailable", why: "no GitHub token or repository to ask" };
    else {
      this.list = { kind: "pending", base: recorded, head };
      this.work = this.fetch(octokit, repository, recorded, head).then((list) => this.settled(list));
    }
  }

  async settle(ms: number): Promise<void> {
    if (this.list?.kind !== "pending") return;
    await within(this.work, ms);
    if (this.list?.kind !== "pending") return;
    this.stop.abort();
    const why =
      ms === 0
        ? "GitHub had not answered when the job was cancelled"
        : `GitHub did not answer within ${ms / 1000}s`;
    this.settled({ kind: "unavailable", why });
  }

  private settled(list: CommitList): void {
    if (this.list?.kind !== "pending") return;
    this.list = list;
    // Counts and shas only: the messages and names stay out of the log.
    if (list.kind === "listed")
      core.info(
        `Commits since the last promoted release ${list.base.slice(0, 7)}: ${list.total} (${list.status}); the report lists them`,
      );
    else if (list.kind === "unavailable") core.info(logText(`Commits not listed in the report: ${list.why}`));
    this.onChange();
  }

  private async fetch(octokit: Octokit, repository: string, base: string, head: string): Promise<CommitList> {
    const [owner, repo] = repository.split("/") as [string, string];
    const page = async (n: number): Promise<{ page: number; answer: ComparePage }> => {
      const { data } = await octokit.rest.repos.compareCommitsWithBasehead({
        owner,
        repo,
        basehead: `${base}...${head}`,
        per_page: COMPARE_PER_PAGE,
        page: n,
        request: { signal: this.stop.signal },
      });
      return { page: n, answer: parseComparePage(data, COMPARE_PER_PAGE) };
    };
    try {
      const first = await page(1);
      const later = [];
      for (const n of laterPages(first.answer.total)) later.push(await page(n));
      return commitList({ base, head, serverUrl: this.target.serverUrl, repository }, [first, ...later]);
    } catch (error) {
      return { kind: "unavailable", why: failureText(error, base, head) };
    }
  }
}
