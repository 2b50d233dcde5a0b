/**
 * The commits since the last promoted release in the report: GitHub's compare answer checked (a page
 * whose counts do not add up is refused), bounded (the newest MAX_LISTED_COMMITS, then a link),
 * escaped (messages and names are text, never markup, mentions or workflow commands), and said
 * as suspects after a rollback and as release notes after a promotion. The pages are the GitHub
 * emulator's answers (test/mesh/github-commits.ts, checked against git in test/emulators/).
 */
import { describe, expect, it } from "vitest";
import {
  COMPARE_PER_PAGE,
  CompareAnswerError,
  commitList,
  laterPages,
  MAX_LISTED_COMMITS,
  MAX_TITLE_CHARS,
  parseComparePage,
  renderCommits,
} from "../../src/report/commits.ts";
import { renderMarkdown } from "../../src/report/markdown.ts";
import { buildReport } from "../../src/report/model.ts";
import type { CommitList } from "../../src/report/types.ts";
import type { Result } from "../../src/rollout/result.ts";
import { CommitHistory, type GitCommit } from "../mesh/github-commits.ts";

const WHERE = { serverUrl: "https://github.com", repository: "acme/shop" };

/** What the action makes of the emulator's compare answers for base...head, read as the lister reads them. */
function listFrom(history: CommitHistory, base: string, head: string): CommitList {
  const page = (n: number) => {
    const url = new URL(`http://x/compare?per_page=${COMPARE_PER_PAGE}&page=${n}`);
    const answer = history.compare("http://x", "acme/shop", `${base}...${head}`, url);
    return { page: n, answer: parseComparePage(answer.body, COMPARE_PER_PAGE) };
  };
  const first = page(1);
  const later = laterPages(first.answer.total).map(page);
  return commitList({ base, head, ...WHERE }, [first, ...later]);
}

/** A history of `n` commits after a promoted release; its base, head, and the commits in order. */
function release(n: number, make?: (i: number) => Partial<GitCommit>) {
  const history = new CommitHistory();
  const base = history.add({ message: "the promoted release" }).sha;
  const shas = history.line(n, base, make);
  return { history, base, head: shas.at(-1) as string, shas };
}

function report(commits: CommitList, result?: Result): string {
  const at = new Date().toISOString();
  const model = buildReport(
    [
      {
        type: "started",
        at,
        command: "rollout",
        rolloutId: "r1",
        commit: "c".repeat(40),
        stages: [10, 100],
        fromStage: 0,
        weight: 0,
      },
      ...(result
        ? [
            {
              type: "finished" as const,
              at,
              result,
              weight: 0,
              reason: "done",
              failed: result === "rolled-back",
            },
          ]
        : []),
    ],
    { namespace: "shop", virtualService: "backend", commits },
  );
  return renderMarkdown(model);
}

describe("which commits are listed", () => {
  it("lists every commit of a short release, newest first", () => {
    const { history, base, head, shas } = release(4);
    const list = listFrom(history, base, head);
    if (list.kind !== "listed") throw new Error(list.kind);
    expect(list.commits.map((c) => c.sha)).toEqual([...shas].reverse());
    expect(list).toMatchObject({ total: 4, status: "ahead", behindBy: 0 });
  });

  it.each([
    MAX_LISTED_COMMITS + 1,
    COMPARE_PER_PAGE,
    COMPARE_PER_PAGE + 1,
    COMPARE_PER_PAGE + 10,
    2 * COMPARE_PER_PAGE + 5,
    3 * COMPARE_PER_PAGE + 29,
  ])("of %i commits, lists the newest MAX_LISTED_COMMITS and links the compare page for the rest", (n) => {
    const { history, base, head, shas } = release(n);
    const list = listFrom(history, base, head);
    if (list.kind !== "listed") throw new Error(list.kind);
    expect(list.total).toBe(n);
    expect(list.commits.map((c) => c.sha)).toEqual(shas.slice(-MAX_LISTED_COMMITS).reverse());
    const text = report(list, "rolled-back");
    expect(text).toMatch(new RegExp(`… and ${n - MAX_LISTED_COMMITS} earlier commits?: `));
    expect(text).toContain(`(https://github.com/acme/shop/compare/${base}...${head})`);
    expect(text.match(/^- \[`[0-9a-f]{7}`\]/gm)).toHaveLength(MAX_LISTED_COMMITS);
  });

  it("says a release is the promoted one, or behind it, instead of listing nothing", () => {
    const { history, base, head } = release(3);
    expect(report(listFrom(history, head, head))).toMatch(/This is the commit of the last promoted release/);
    const behind = renderCommits({ commits: listFrom(history, head, base) } as never).join("\n");
    expect(behind).toMatch(/3 commits behind the last promoted release/);
  });

  it("lists a diverged release's own commits and says how many of the promoted release's it lacks", () => {
    const { history, base } = release(5);
    const side = history.line(2, base);
    const promoted = history.line(1, history.line(3, base).at(-1));
    const list = listFrom(history, promoted.at(-1) as string, side.at(-1) as string);
    if (list.kind !== "listed") throw new Error(list.kind);
    expect(list).toMatchObject({ status: "diverged", total: 2, behindBy: 4 });
    expect(renderCommits({ commits: list } as never).join("\n")).toMatch(
      /4 of its commits are not in this one/,
    );
  });
});

describe("a compare answer that does not add up is refused", () => {
  const good = () => {
    const { history, base, head } = release(3);
    const url = new URL("http://x/compare?per_page=100&page=1");
    return {
      body: history.compare("http://x", "acme/shop", `${base}...${head}`, url).body as Record<
        string,
        unknown
      >,
      base,
      head,
    };
  };
  it.each<[string, (b: Record<string, unknown>) => void]>([
    ["a status GitHub does not have", (b) => (b.status = "sideways")],
    ["a status the counts contradict", (b) => (b.status = "identical")],
    ["total_commits other than ahead_by", (b) => (b.total_commits = 2)],
    ["a negative count", (b) => (b.behind_by = -1)],
    [
      "a commit without a 40-hex sha",
      (b) => (((b.commits as Array<{ sha: string }>)[0] as { sha: string }).sha = "abc"),
    ],
    [
      "more commits than a page holds",
      (b) => (b.commits = Array.from({ length: 101 }, () => (b.commits as unknown[])[0])),
    ],
  ])("%s", (_what, damage) => {
    const { body } = good();
    damage(body);
    expect(() => parseComparePage(body, COMPARE_PER_PAGE)).toThrow(CompareAnswerError);
  });

  it("a page that lists fewer commits than the total says, or whose newest commit is not the head", () => {
    const { body, base, head } = good();
    const short = { ...body, commits: (body.commits as unknown[]).slice(1) };
    expect(() =>
      commitList({ base, head, ...WHERE }, [{ page: 1, answer: parseComparePage(short, 100) }]),
    ).toThrow(/page 1 lists 2 commits of 3/);
    expect(() =>
      commitList({ base, head: "d".repeat(40), ...WHERE }, [
        { page: 1, answer: parseComparePage(body, 100) },
      ]),
    ).toThrow(/not the one rolled out/);
  });
});

describe("messages and names are text", () => {
  const hostile = release(1, () => ({
    message: `@everyone Fix <img src=x onerror=alert(1)> **now** [click](javascript:alert(1)) ${"x".repeat(200)}\n::error::second line`,
    author: {
      name: "<b>Eve</b> @admins ::set-output",
      email: "eve@example.com",
      date: "2026-01-01T00:00:00Z",
    },
    login: "eve](javascript:x)",
  }));

  it("shows the first line, cut, escaped for Markdown and HTML, mentioning no one", () => {
    const text = report(listFrom(hostile.history, hostile.base, hostile.head), "rolled-back");
    const line = text.split("\n").find((l) => l.startsWith("- [`")) as string;
    expect(line).not.toMatch(/<img|<b>|(?<!\\)\*\*now|(?<!\\)\]\(javascript|@everyone|@admins/);
    expect(line).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(line).toContain("@\u200beveryone");
    expect(text).not.toContain("second line");
    expect(text).not.toMatch(/^::/m);
    const list = listFrom(hostile.history, hostile.base, hostile.head);
    if (list.kind !== "listed") throw new Error(list.kind);
    expect([...(list.commits[0]?.title ?? "")]).toHaveLength(MAX_TITLE_CHARS);
    // Not a GitHub login: not shown as one.
    expect(list.commits[0]?.login).toBeUndefined();
  });

  it("drops the bidirectional overrides that would make a title read as other text", () => {
    const { history, base, head } = release(1, () => ({ message: "ok \u202eevil\u202c done" }));
    const list = listFrom(history, base, head);
    if (list.kind !== "listed") throw new Error(list.kind);
    expect(list.commits[0]?.title).toBe("ok  evil  done");
  });
});

describe("what the list is to the reader", () => {
  const { history, base, head } = release(3, (i) => ({
    login: i === 1 ? "bob" : "ada",
    author: { name: i === 1 ? "Bob" : "Ada", email: "x@example.com", date: "2026-01-01T00:00:00Z" },
  }));
  const list = listFrom(history, base, head);

  it("after a rollback: the commits in the rolled-back release and their authors, unfolded", () => {
    const text = report(list, "rolled-back");
    expect(text).toMatch(
      /\*\*Commits in the rolled-back release\*\*: 3 commits since the last promoted release `[0-9a-f]{7}`, by Ada \(ada\), Bob \(bob\):/,
    );
    expect(text).not.toMatch(/<details><summary>3 commits/);
  });

  it("after a promotion: release notes, folded", () => {
    const text = report(list, "promoted");
    expect(text).toMatch(/\*\*Release notes\*\*: 3 commits since the last promoted release/);
    expect(text).toMatch(/<details><summary>3 commits<\/summary>/);
  });

  it("a first rollout, and a list GitHub could not give, say so in one line", () => {
    expect(report({ kind: "first" })).toMatch(
      /No earlier promoted release is recorded on the VirtualService \(a first rollout\)/,
    );
    const failed = report({ kind: "unavailable", why: "GitHub's compare failed: 502 <b>Server Error</b>" });
    expect(failed).toContain(
      "Commits since the last promoted release: not listed (GitHub's compare failed: 502 &lt;b&gt;Server Error&lt;/b&gt;).",
    );
  });
});
