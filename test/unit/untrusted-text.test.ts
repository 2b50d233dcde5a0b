/**
 * Untrusted text shown as text (issue 20): what the cluster, Prometheus or GitHub say reaches the
 * log, the comment, the summary and the charts without becoming a command, markup or a directive.
 * The Markdown is rendered with marked (GitHub-flavoured) and read back with jsdom.
 */
import { JSDOM } from "jsdom";
import { marked } from "marked";
import { describe, expect, it } from "vitest";
import { codeSpanText, logText, markdownText, mermaidLabel } from "../../src/untrusted-text.ts";

const html = (markdown: string) =>
  new JSDOM(marked.parse(markdown, { async: false }) as string).window.document.body;

/** The lines the runner would take as workflow commands (it trims leading blanks; `##[` anywhere). */
const commands = (text: string) =>
  text.split("\n").filter((l) => l.trimStart().startsWith("::") || l.includes("##["));

describe("logText", () => {
  it.each([
    "::error::pwned",
    "  ::add-mask::x",
    "ok\n::set-output name=result::promoted",
    "a\r::warning::b",
    "a\u2028::notice::b",
    "before ##[error]inline",
    "\t::stop-commands::token",
  ])("leaves no workflow command in %j", (text) => {
    expect(commands(logText(text))).toEqual([]);
  });

  it("keeps ordinary text as it was and the words of a neutralised line readable", () => {
    expect(logText("stage 1/3 · 10 % · pass: 0 errors in 600 requests")).toBe(
      "stage 1/3 · 10 % · pass: 0 errors in 600 requests",
    );
    expect(logText("::error::pwned").replace(/\u200b/g, "")).toBe("::error::pwned");
  });
});

describe("markdownText", () => {
  const render = (text: string) => html(`Reason: ${markdownText(text)}`);

  it("shows tags as text, with no element or event handler", () => {
    const body = render('<img src=x onerror="alert(1)"><script>alert(2)</script>');
    expect(body.querySelectorAll("img, script")).toHaveLength(0);
    expect(body.textContent).toContain('<img src=x onerror="alert(1)">');
  });

  it("mentions no one", () => {
    const text = render("ping @octo-team and @octocat").textContent ?? "";
    expect(text).not.toMatch(/@[\w-]/);
    expect(text.replace(/\u200b/g, "")).toContain("ping @octo-team and @octocat");
  });

  it("cannot close the report's <details> or open a block of its own", () => {
    const md = `<details><summary>Why</summary>\n\n- ${markdownText("</details>\n\n```mermaid\n%%{init: {}}%%\n```")}\n\n</details>\n\nafter`;
    const body = html(md);
    expect(body.querySelectorAll("details")).toHaveLength(1);
    expect(body.querySelector("details")?.textContent).toContain("</details>");
    expect(body.querySelectorAll("pre, code")).toHaveLength(0);
  });

  it("makes no link, image, emphasis or table cell from the text", () => {
    const body = render("![x](https://evil.example/p.png) [y](https://evil.example) **bold** a|b");
    expect(body.querySelectorAll("a, img, strong, em, table")).toHaveLength(0);
    expect(body.textContent?.replace(/\u200b/g, "")).toContain(
      "![x](https://evil.example/p.png) [y](https://evil.example) **bold** a|b",
    );
  });

  it("does not start a heading, list or quote", () => {
    for (const text of ["# big", "- item", "> quoted", "1. first"]) {
      const body = html(markdownText(text));
      expect(body.querySelectorAll("h1, ul, ol, blockquote")).toHaveLength(0);
      expect(body.textContent?.trim()).toBe(text);
    }
  });
});

describe("codeSpanText", () => {
  it("cannot end the code span", () => {
    const body = html(`rollout \`${codeSpanText("x` <img src=x onerror=alert(1)> `")}\``);
    expect(body.querySelectorAll("img")).toHaveLength(0);
    expect(body.querySelectorAll("code")).toHaveLength(1);
  });
});

describe("mermaidLabel", () => {
  it("carries no directive, comment or quote", () => {
    const label = mermaidLabel('10% "x" %%{init: {"theme": "dark"}}%%\n%% comment');
    expect(label).not.toMatch(/%%|[{}\n]/);
    expect(label.slice(1, -1)).not.toContain('"');
    expect(mermaidLabel("10% pass")).toBe('"10% pass"');
  });
});
