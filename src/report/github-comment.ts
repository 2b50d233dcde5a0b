/**
 * The one pull-request comment per VirtualService: found again by its hidden marker among the
 * token's own comments (across every page), updated in place, and cut to a length GitHub takes.
 */
import * as core from "@actions/core";
import { scrub } from "../redact.ts";
import { isTooLong, type Octokit, ReportAborted } from "./github-client.ts";
import { MAX_COMMENT_CHARS, truncate } from "./markdown.ts";

/** A comment GitHub refuses as too long is halved at most this many times in one attempt, to no less than MIN_COMMENT_CHARS. */
const MAX_SHORTENINGS = 4;
const MIN_COMMENT_CHARS = 1_000;

export interface PullRequestCommentOptions {
  octokit: Octokit;
  repo: { owner: string; repo: string };
  /** The hidden marker the comment starts with (one per VirtualService). */
  mark: string;
  commit: string;
  /** The pull request named by the input or the event, if any: otherwise looked up by the commit. */
  pullRequest?: number;
  /** Per-call request options (the signal; no retries by Octokit during a flush). */
  requestOptions: (signal: AbortSignal) => { signal: AbortSignal; retries?: number };
}

export class PullRequestComment {
  /** null: looked up, none. */
  pullRequest: number | null | undefined;
  private login?: string | null;
  private commentId?: number;
  /** The longest comment GitHub took (lowered by a 422 "too long"). */
  private commentLimit = MAX_COMMENT_CHARS;
  private readonly octokit: Octokit;
  private readonly repo: { owner: string; repo: string };
  private readonly mark: string;
  private readonly commit: string;
  private readonly requestOptions: PullRequestCommentOptions["requestOptions"];

  constructor(options: PullRequestCommentOptions) {
    this.octokit = options.octokit;
    this.repo = options.repo;
    this.mark = options.mark;
    this.commit = options.commit;
    this.pullRequest = options.pullRequest;
    this.requestOptions = options.requestOptions;
  }

  /** Whether a comment was written or found: a 404 then means it was deleted, not forbidden. */
  get exists(): boolean {
    return !!this.commentId;
  }

  /** GitHub says the comment was deleted: the next write creates it again. */
  forget(): void {
    this.commentId = undefined;
  }

  /** The pull request of the commit, looked up once; a failed lookup is tried again next time. */
  private async pullRequestNumber(signal: AbortSignal): Promise<number | undefined> {
    if (this.pullRequest !== undefined) return this.pullRequest ?? undefined;
    if (this.commit === "unknown") {
      this.pullRequest = null;
      return undefined;
    }
    const pulls = await this.octokit.rest.repos.listPullRequestsAssociatedWithCommit({
      ...this.repo,
      commit_sha: this.commit,
      request: this.requestOptions(signal),
    });
    const open = pulls.data.find((p) => p.state === "open") ?? pulls.data[0];
    this.pullRequest = open?.number ?? null;
    if (!open)
      core.info(
        "No pull request found for this run: no comment; the job summary and the commit status carry the report",
      );
    return open?.number;
  }

  /** The token's login: REST /user answers 403 to a workflow's GITHUB_TOKEN, GraphQL's viewer does not. */
  private async whoAmI(signal: AbortSignal): Promise<string | undefined> {
    if (this.login !== undefined) return this.login ?? undefined;
    try {
      this.login = (
        await this.octokit.rest.users.getAuthenticated({ request: this.requestOptions(signal) })
      ).data.login;
    } catch (error) {
      if (error instanceof ReportAborted) throw error;
      try {
        this.login = (
          await this.octokit.graphql<{ viewer: { login: string } }>("query { viewer { login } }", {
            request: this.requestOptions(signal),
          })
        ).viewer.login;
      } catch (graphqlError) {
        if (graphqlError instanceof ReportAborted) throw graphqlError;
        this.login = null;
      }
    }
    return this.login ?? undefined;
  }

  private async findComment(pullRequest: number, signal: AbortSignal): Promise<number | undefined> {
    const login = await this.whoAmI(signal);
    const iterator = this.octokit.paginate.iterator(this.octokit.rest.issues.listComments, {
      ...this.repo,
      issue_number: pullRequest,
      per_page: 100,
      request: this.requestOptions(signal),
    });
    for await (const page of iterator) {
      const mine = page.data.find(
        (c) => c.body?.startsWith(this.mark) && (!login || c.user?.login === login),
      );
      if (mine) return mine.id;
    }
    return undefined;
  }

  /**
   * Writes the comment; a body GitHub refuses as too long (422) is cut at a line to half its length
   * and written again at once, up to MAX_SHORTENINGS times, and later reports keep to that length.
   * Retrying the same body could never succeed.
   */
  async write(markdown: string, signal: AbortSignal): Promise<void> {
    const pullRequest = await this.pullRequestNumber(signal);
    if (!pullRequest) return;
    let body = truncate(scrub(markdown), this.commentLimit);
    for (let shortened = 0; ; shortened++) {
      try {
        await this.writeComment(pullRequest, body, signal);
        return;
      } catch (error) {
        const half = Math.floor(body.length / 2);
        if (!isTooLong(error) || shortened >= MAX_SHORTENINGS || half < MIN_COMMENT_CHARS) throw error;
        this.commentLimit = half;
        core.info(
          `GitHub refused the comment as too long (${body.length} characters); writing it cut to ${this.commentLimit} (the job summary has all of it)`,
        );
        body = truncate(body, this.commentLimit);
      }
    }
  }

  private async writeComment(pullRequest: number, body: string, signal: AbortSignal): Promise<void> {
    this.commentId ??= await this.findComment(pullRequest, signal);
    if (this.commentId) {
      await this.octokit.rest.issues.updateComment({
        ...this.repo,
        comment_id: this.commentId,
        body,
        request: this.requestOptions(signal),
      });
    } else {
      this.commentId = (
        await this.octokit.rest.issues.createComment({
          ...this.repo,
          issue_number: pullRequest,
          body,
          request: this.requestOptions(signal),
        })
      ).data.id;
    }
  }
}
