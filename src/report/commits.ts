/**
 * The commits since the last promoted release: GitHub's compare answer checked and cut down to what
 * the report shows, and its Markdown. Pure; the calls are in ./commits-github.ts.
 *
 * Everything here comes from GitHub and the cluster's record: a sha is used only when it is 40 hex
 * digits, a page only when its counts add up, and messages and names are text (escaped where shown).
 */
import { codeSpanText, LINE_BREAKS, markdownText } from "../untrusted-text.ts";
import type { CommitList, ListedCommit, ReportModel } from "./types.ts";

/** The report lists at most this many commits (the newest), then links to GitHub's compare page. */
export const MAX_LISTED_COMMITS = 30;
/** A commit's title is cut here (git's own advice for a subject line is 50 to 72 characters). */
export const MAX_TITLE_CHARS = 72;
const MAX_AUTHOR_CHARS = 60;
/** The page size asked of the compare API (its maximum is 100). */
export const COMPARE_PER_PAGE = 100;

export const FULL_SHA = /^[0-9a-f]{40}$/;
/** A GitHub login: letters, digits and single hyphens, up to 39; an app's bot account ends in [bot]. */
const LOGIN = /^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}(?:\[bot\])?$/;
const STATUSES = ["ahead", "behind", "diverged", "identical"] as const;
type CompareStatus = (typeof STATUSES)[number];

/** GitHub answered, but not as its documentation says it does. */
export class CompareAnswerError extends Error {
  constructor(message: string) {
    super(`GitHub's compare answer does not add up: ${message}`);
    this.name = "CompareAnswerError";
  }
}

export interface ComparePage {
  status: CompareStatus;
  aheadBy: number;
  behindBy: number;
  total: number;
  commits: ListedCommit[];
}

/** Control characters and the bidirectional overrides that would make a title read as other text. */
const INVISIBLE = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** The first line of `text`, without invisible characters, cut to `max` characters (not within a surrogate pair). */
function shortText(text: string, max: number): string {
  const line = (text.split(LINE_BREAKS)[0] ?? "").replace(INVISIBLE, " ").trim();
  const chars = [...line];
  return chars.length <= max ? line : `${chars.slice(0, max - 1).join("")}…`;
}

const count = (value: unknown, name: string): number => {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
    throw new CompareAnswerError(`${name} is not a count`);
  return value;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function listedCommit(value: unknown, index: number): ListedCommit {
  const sha = isRecord(value) ? value.sha : undefined;
  if (typeof sha !== "string" || !FULL_SHA.test(sha))
    throw new CompareAnswerError(`commit ${index + 1} has no 40-hex sha`);
  const record = value as Record<string, unknown>;
  const commit = isRecord(record.commit) ? record.commit : {};
  const message = typeof commit.message === "string" ? commit.message : "";
  const gitAuthor = isRecord(commit.author) ? commit.author : {};
  const name = typeof gitAuthor.name === "string" ? shortText(gitAuthor.name, MAX_AUTHOR_CHARS) : "";
  const account = isRecord(record.author) ? record.author.login : undefined;
  const login = typeof account === "string" && LOGIN.test(account) ? account : undefined;
  return {
    sha,
    title: shortText(message, MAX_TITLE_CHARS) || "(no message)",
    author: name || login || "unknown author",
    ...(login ? { login } : {}),
  };
}

/** One page of `GET /repos/{owner}/{repo}/compare/{base}...{head}`, checked against GitHub's documented shape. */
export function parseComparePage(data: unknown, perPage: number): ComparePage {
  if (!isRecord(data)) throw new CompareAnswerError("not an object");
  const status = STATUSES.find((s) => s === data.status);
  if (!status) throw new CompareAnswerError(`status is not one of ${STATUSES.join(", ")}`);
  const aheadBy = count(data.ahead_by, "ahead_by");
  const behindBy = count(data.behind_by, "behind_by");
  const total = count(data.total_commits, "total_commits");
  const expected: CompareStatus =
    aheadBy > 0 ? (behindBy > 0 ? "diverged" : "ahead") : behindBy > 0 ? "behind" : "identical";
  if (status !== expected)
    throw new CompareAnswerError(`status ${status} with ahead_by ${aheadBy} and behind_by ${behindBy}`);
  if (total !== aheadBy) throw new CompareAnswerError(`total_commits ${total} is not ahead_by ${aheadBy}`);
  if (!Array.isArray(data.commits) || data.commits.length > perPage)
    throw new CompareAnswerError(`commits is not a list of at most ${perPage}`);
  return { status, aheadBy, behindBy, total, commits: data.commits.map(listedCommit) };
}

/** How many commits the compare API puts on page `page` of `total`. */
const pageSize = (total: number, page: number, perPage = COMPARE_PER_PAGE): number =>
  Math.max(0, Math.min(perPage, total - (page - 1) * perPage));

/**
 * The pages after the first to read for the newest `want` commits of `total` (the API lists
 * them oldest first): none when the first page holds them all, else the last one or two.
 */
export function laterPages(total: number, want = MAX_LISTED_COMMITS, perPage = COMPARE_PER_PAGE): number[] {
  const last = Math.ceil(total / perPage);
  if (last <= 1) return [];
  const pages = [last];
  if (pageSize(total, last, perPage) < want && last - 1 > 1) pages.unshift(last - 1);
  return pages;
}

/**
 * The list the report shows, from the pages read in order (the first, then `laterPages`), checked:
 * each page holds as many commits as the total says, they agree on the counts, and the newest
 * commit is the head asked about.
 */
export function commitList(
  where: { base: string; head: string; serverUrl: string; repository: string },
  pages: ReadonlyArray<{ page: number; answer: ComparePage }>,
  perPage = COMPARE_PER_PAGE,
): CommitList {
  const first = pages[0]?.answer;
  if (!first) throw new CompareAnswerError("no page");
  for (const { page, answer } of pages) {
    if (answer.status !== first.status || answer.total !== first.total || answer.behindBy !== first.behindBy)
      throw new CompareAnswerError(`page ${page} disagrees with page 1 on the counts`);
    if (answer.commits.length !== pageSize(first.total, page, perPage))
      throw new CompareAnswerError(
        `page ${page} lists ${answer.commits.length} commits of ${first.total} (${perPage} a page)`,
      );
  }
  const all = pages.flatMap((p) => p.answer.commits);
  if (first.total > 0 && all.at(-1)?.sha !== where.head)
    throw new CompareAnswerError("the newest commit is not the one rolled out");
  const repo = `${where.serverUrl}/${where.repository}`;
  return {
    kind: "listed",
    base: where.base,
    head: where.head,
    status: first.status,
    total: first.total,
    behindBy: first.behindBy,
    commits: all.slice(-MAX_LISTED_COMMITS).reverse(),
    compareUrl: `${repo}/compare/${where.base}...${where.head}`,
    commitUrl: `${repo}/commit`,
  };
}

const short = (sha: string) => `\`${codeSpanText(sha.slice(0, 7))}\``;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** "Alice (alice), Bob": the authors of the listed commits, once each, newest first. */
function authorsOf(commits: readonly ListedCommit[]): string {
  const seen = new Map<string, ListedCommit>();
  for (const c of commits) seen.set(c.login ?? c.author, seen.get(c.login ?? c.author) ?? c);
  return [...seen.values()].map(author).join(", ");
}

/**
 * An author as text: the name, and the login without `@` (a comment updated at every stage must not
 * notify people at every edit; the login says who it is).
 */
const author = (c: ListedCommit): string =>
  c.login && c.login !== c.author
    ? `${markdownText(c.author)} (${markdownText(c.login)})`
    : markdownText(c.author);

/** What this list is to a reader of this report: suspects after a rollback, release notes after a promotion. */
function lead(model: ReportModel, list: Extract<CommitList, { kind: "listed" }>): string {
  const since = `since the last promoted release ${short(list.base)}`;
  const what = `${plural(list.total, "commit")} ${since}`;
  if (model.result === "rolled-back")
    return `**Commits in the rolled-back release**: ${what}, by ${authorsOf(list.commits)}:`;
  if (model.result === "promoted") return `**Release notes**: ${what}:`;
  return `**Commits in this release**: ${what}:`;
}

/** The report's commit section, as Markdown lines (none for a report that started no rollout). */
export function renderCommits(model: ReportModel): string[] {
  const list = model.commits;
  if (!list) return [];
  if (list.kind === "first")
    return [
      "No earlier promoted release is recorded on the VirtualService (a first rollout): no commits to list.",
    ];
  if (list.kind === "pending")
    return [`Commits since the last promoted release ${short(list.base)}: GitHub has not answered yet.`];
  if (list.kind === "unavailable")
    return [`Commits since the last promoted release: not listed (${markdownText(list.why)}).`];
  const compare = `[${list.base.slice(0, 7)}...${list.head.slice(0, 7)}](${list.compareUrl})`;
  if (list.status === "identical")
    return [`This is the commit of the last promoted release ${short(list.base)}: no new commits.`];
  if (list.status === "behind")
    return [
      `This commit is ${plural(list.behindBy, "commit")} behind the last promoted release ${short(list.base)} (an older version): no new commits (${compare}).`,
    ];
  const items = list.commits.map(
    (c) => `- [${short(c.sha)}](${list.commitUrl}/${c.sha}) ${markdownText(c.title)} — ${author(c)}`,
  );
  const more = list.total - list.commits.length;
  if (more > 0) items.push(`- … and ${plural(more, "earlier commit")}: ${compare}`);
  // After a rollback the list is what a reader looks for; otherwise it is folded, below the stages.
  const lines =
    model.result === "rolled-back"
      ? [lead(model, list), "", ...items]
      : [
          lead(model, list),
          "",
          `<details><summary>${plural(list.total, "commit")}</summary>`,
          "",
          ...items,
          "",
          "</details>",
        ];
  if (list.status === "diverged")
    lines.push(
      "",
      `The last promoted release is not an ancestor of this commit: ${list.behindBy} of its commits ${list.behindBy === 1 ? "is" : "are"} not in this one (${compare}).`,
    );
  return lines;
}
