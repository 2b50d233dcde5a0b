/**
 * Text from the cluster, Prometheus or GitHub shown as text, escaped for where it is shown. Anyone
 * who can edit the VirtualService (its state annotation, a field manager's name), answer for
 * Prometheus or write a GitHub message chooses this text; it must never become markup, a mention,
 * a chart directive or a command to the runner.
 *
 * - the log: a line that starts with `::` (after blanks, as the runner trims them) is a workflow
 *   command, and so is `##[name]` anywhere in a line (the runner's older syntax);
 * - Markdown and HTML (the PR comment and the job summary, rendered by GitHub): tags, entities,
 *   Markdown punctuation, line starts that open a block, bare URLs GitHub would link, and `@name`
 *   mentions;
 * - a code span: backticks and line breaks would end it;
 * - Mermaid labels: `%%{...}%%` directives are found anywhere in a diagram's text, quotes end a label.
 */

/** U+200B ZERO WIDTH SPACE: not whitespace to the runner (nor to GitHub's mention parser). */
const ZWSP = "\u200b";

/** Every line break a runner or a Markdown renderer splits lines at. */
export const LINE_BREAKS = /\r\n|[\n\r\u2028\u2029\u0085]/;

/** One log line or more, none of which the runner can take as a workflow command. */
export function logText(text: string): string {
  return text
    .split(LINE_BREAKS)
    .map((line) => line.replace(/^(\s*):(?=:)/, `$1:${ZWSP}`).replace(/##\[/g, `#${ZWSP}#[`))
    .join("\n");
}

const HTML_ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };

/**
 * ASCII punctuation that GitHub's Markdown gives a meaning inside a line (code, emphasis, links and
 * images, which need brackets, table cells, strikethrough, math): escaped with a backslash.
 * Parentheses and `!` mean nothing without the brackets, so the raw text stays readable.
 */
const MARKDOWN_INLINE = /[\\`*_[\]|~$]/g;

/**
 * Text for one line of the comment or the summary: line breaks become spaces, HTML is escaped as
 * entities, Markdown punctuation is backslash-escaped, a line start cannot open a heading, list or
 * quote, and `@name` mentions no one.
 */
export function markdownText(text: string): string {
  return (
    text
      .split(LINE_BREAKS)
      .join(" ")
      .replace(/[&<>"]/g, (c) => HTML_ENTITIES[c] as string)
      .replace(MARKDOWN_INLINE, (c) => `\\${c}`)
      .replace(/@(?=[\w-])/g, `@${ZWSP}`)
      // GitHub links bare URLs (`https://...`, `www.`): a word joiner keeps them plain text.
      .replace(/\b(https?|ftp)(?=:\/\/)/gi, `$1${ZWSP}`)
      .replace(/\bwww\./gi, `www${ZWSP}.`)
      .replace(/^(\s*)([#>+=-])/, "$1\\$2")
      .replace(/^(\s*\d+)([.)])/, "$1\\$2")
  );
}

/** Text inside a Markdown code span (`...`): no backtick or line break can end it early. */
export function codeSpanText(text: string): string {
  return text.split(LINE_BREAKS).join(" ").replace(/`/g, "'");
}

/** A Mermaid label's text, quoted: no quote ends it, and no `%%` starts a directive or comment. */
export function mermaidLabel(text: string): string {
  const safe = text
    .split(LINE_BREAKS)
    .join(" ")
    .replace(/"/g, "'")
    .replace(/[{}`#;<>&]/g, "")
    .replace(/%{2,}/g, "%");
  return `"${safe}"`;
}
