/**
 * A picture of a pull-request comment as a reviewer sees it: the Markdown rendered by `marked`
 * (GitHub-flavoured), styled with `github-markdown-css`, its Mermaid blocks drawn by the `mermaid`
 * package, in headless Chromium at a comment's width (about 880 px). Uses the system's Chromium
 * (Debian's `chromium`) through playwright-core, which downloads no browser of its own.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { marked } from "marked";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
/** The width of a comment's body in GitHub's pull-request timeline. */
export const COMMENT_WIDTH_PX = 880;
const CHROMIUM_PATHS = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The Chromium to drive, or undefined when none is installed (the demo then skips screenshots). */
export function findChromium(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return CHROMIUM_PATHS.find((p) => existsSync(p));
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The comment as an HTML page; Mermaid blocks become `<pre class="mermaid">` for mermaid.run(). */
export function commentPage(markdown: string): string {
  const renderer = new marked.Renderer();
  const code = renderer.code.bind(renderer);
  renderer.code = (token) =>
    token.lang === "mermaid" ? `<pre class="mermaid">${escapeHtml(token.text)}</pre>` : code(token);
  const body = marked.parse(markdown, { gfm: true, async: false, renderer }) as string;
  return `<!doctype html><html><head><meta charset="utf-8"><style>
  body { margin: 0; background: #fff; }
  .markdown-body { box-sizing: border-box; width: ${COMMENT_WIDTH_PX}px; padding: 16px; border: 1px solid #d0d7de; border-radius: 6px; }
  pre.mermaid { background: #fff; text-align: center; }
</style></head><body><article class="markdown-body">${body}</article></body></html>`;
}

/** Renders `markdown` and writes a PNG of the whole comment to `pngPath`. */
export async function screenshotComment(
  markdown: string,
  pngPath: string,
  executablePath: string,
): Promise<void> {
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: COMMENT_WIDTH_PX + 32, height: 800 } });
    await page.setContent(commentPage(markdown));
    await page.addStyleTag({ path: require.resolve("github-markdown-css/github-markdown-light.css") });
    await page.addScriptTag({ path: require.resolve("mermaid/dist/mermaid.min.js") });
    await page.evaluate(async () => {
      const m = (globalThis as unknown as { mermaid: { initialize(c: object): void; run(): Promise<void> } })
        .mermaid;
      m.initialize({ startOnLoad: false, theme: "default" });
      await m.run();
    });
    await page.locator("article").screenshot({ path: pngPath });
  } finally {
    await browser.close();
  }
}
