/**
 * Credentials inside URLs, and the one way the action shows a URL to people.
 *
 * A URL can carry a secret in three places: its userinfo (`https://user:key@host`), its query
 * string (`?api_key=...`; every value counts, since the action cannot know which parameter is the
 * key), and its path, where hosted services put opaque tokens (`https://host/<token>/api/v1`).
 * The rule for the path: a segment of at least 20 characters that mixes letters and digits is a
 * token. Ordinary paths (`/prometheus`, `/api/prom`, `/select/0/prometheus`) have no such segment;
 * an id that is not secret but looks like one (a 36-character workspace UUID) is hidden too, which
 * only costs a working link.
 *
 * `urlSecrets` lists what must be masked; `redactUrl` is what the report, the summary, the outputs
 * and every message show instead of the URL: scheme://host[:port] and the non-secret path only.
 */

/** Segments this long that mix letters and digits are treated as tokens. */
export const PATH_TOKEN_MIN_LENGTH = 20;

/**
 * Values shorter than this are not registered as secrets: the runner would blank every occurrence
 * of, say, "1" in the whole log. The action never prints them anyway (`redactUrl` drops them).
 */
export const MIN_MASKED_LENGTH = 4;

const REDACTED = "***";

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** True for a path segment that looks like an access token (see the rule above). */
export function isPathToken(segment: string): boolean {
  const text = decoded(segment);
  return text.length >= PATH_TOKEN_MIN_LENGTH && /[A-Za-z]/.test(text) && /\d/.test(text);
}

function parsed(text: string): URL | undefined {
  try {
    const url = new URL(text);
    // Only URLs with an authority (http, https, ftp, ...) have a host to keep.
    return url.host ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every secret a URL carries, raw and percent-decoded, each at least MIN_MASKED_LENGTH long.
 * Works on text that is not a valid URL too (it is masked before it is validated).
 */
export function urlSecrets(text: string): string[] {
  const found: string[] = [];
  const url = parsed(text);
  if (url) {
    if (url.username) found.push(url.username);
    if (url.password) found.push(url.password, `${url.username}:${url.password}`);
    for (const [name, value] of url.searchParams) found.push(value, `${name}=${value}`);
    if (url.search.length > 1) {
      // As written (percent-encoded) too: that is how the URL itself shows up in a message.
      found.push(url.search.slice(1));
      for (const pair of url.search.slice(1).split("&")) found.push(pair, pair.slice(pair.indexOf("=") + 1));
    }
    for (const segment of url.pathname.split("/")) if (isPathToken(segment)) found.push(segment);
    if (url.hash.length > 1) found.push(url.hash.slice(1));
  } else {
    // Not a URL with a host: mask what sits where credentials would.
    const userinfo = /^[^/?#]*:\/\/([^/?#@]*)@/.exec(text)?.[1] ?? /^([^/?#@]*)@/.exec(text)?.[1];
    if (userinfo) found.push(userinfo, ...userinfo.split(":"));
    const query = text.split(/[?#]/).slice(1).join("?");
    if (query) {
      found.push(query);
      for (const pair of query.split("&")) found.push(pair, pair.slice(pair.indexOf("=") + 1));
    }
    for (const segment of text.split(/[?#]/)[0]?.split("/") ?? [])
      if (isPathToken(segment)) found.push(segment);
  }
  const all = found.flatMap((s) => [s, decoded(s)]);
  return [...new Set(all)].filter((s) => s.length >= MIN_MASKED_LENGTH);
}

/**
 * What people see of a URL: scheme://host[:port] and the path with token segments replaced by
 * `***`; userinfo, query and fragment are dropped. Text that is not a URL with a host keeps only
 * what precedes any userinfo, query or fragment, with tokens replaced the same way.
 */
export function redactUrl(text: string): string {
  const url = parsed(text);
  if (!url) {
    const withoutQuery = text.split(/[?#]/)[0] ?? "";
    const withoutUserinfo = withoutQuery.replace(/^([^/@]*:\/\/)?[^/@]*@/, "$1");
    return withoutUserinfo
      .split("/")
      .map((s) => (isPathToken(s) ? REDACTED : s))
      .join("/");
  }
  const path = url.pathname
    .split("/")
    .map((s) => (isPathToken(s) ? REDACTED : s))
    .join("/")
    .replace(/\/+$/, "");
  return `${url.protocol}//${url.host}${path}`;
}

/** Every secret registered this run (see `registerSecret`), longest first for `scrub`. */
const registered = new Set<string>();

/**
 * Masks a secret for the runner's log (core.setSecret is passed in, so this module stays free of
 * I/O) and remembers it, so that `scrub` can take it out of what the action writes itself: the
 * PR comment, the commit status, the job summary and the outputs, which the runner does not mask.
 */
export function registerSecret(secret: string, setSecret: (s: string) => void): void {
  setSecret(secret);
  if (secret.length >= MIN_MASKED_LENGTH) registered.add(secret);
}

/** The text with every registered secret replaced by `***`. */
export function scrub(text: string): string {
  let out = text;
  for (const secret of [...registered].sort((a, b) => b.length - a.length)) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}
