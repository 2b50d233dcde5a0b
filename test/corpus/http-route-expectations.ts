/**
 * What a user expects of each published HTTPRoute in fixtures/httproute/ (issue 22). Every `*.yaml`
 * there is a case, and its header says what the action should do, in one format:
 *
 *     # source: <owner>/<repo> <path>@<commit> (<where it is published>)
 *     # expect: <manageable|continued|refused> [with stable=<Service> canary=<Service>]: <why, in prose>
 *     # refusal: /<regex>/       (refused only: the reason AND the fix the message must give)
 *
 * `manageable`: the action promotes it; `continued`: an already-split rule is adopted, then
 * promoted. An entry in MORE adds what a header cannot: the inputs a user would write. The traffic
 * follows the route's parents: through the Gateway it is attached to (to its first hostname), or
 * inside the mesh to the Service (GAMMA).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const HTTP_ROUTE_FIXTURES = join(import.meta.dirname, "fixtures", "httproute");

export type HttpRouteOutcome =
  | { kind: "promoted" }
  /** An already-split rule: the first write that moves the canary is `firstWeight` (default: the next of stages 50,100 above it). */
  | { kind: "continued"; firstWeight?: number }
  /** `message`: the refusal's reason and fix, which the error must match. */
  | { kind: "refused"; message: RegExp };

export interface HttpRouteCase {
  fixture: string;
  /** The `# expect:` line, for the test's name and its failures. */
  expect: string;
  stable?: string;
  canary?: string;
  outcome: HttpRouteOutcome;
  /** More inputs (routes, stages...). */
  inputs?: Record<string, string>;
}

/** What the header cannot carry, by fixture. */
const MORE: Record<string, Partial<HttpRouteCase>> = {
  // The message for its one rule with matches says to select it with routes: "#0"; a user who
  // does meets the refusal the fixture is about (the Service that selects both versions).
  "05-istio-bookinfo-gateway.yaml": { inputs: { routes: "#0" } },
};

/** `/a.*b/` -> the RegExp, or an error naming the fixture. */
function refusalPattern(fixture: string, text: string): RegExp {
  const source = /^# refusal: \/(.+)\/$/m.exec(text)?.[1];
  if (!source)
    throw new Error(`${fixture}: a refused case needs a '# refusal: /<regex>/' line (its reason and fix)`);
  return new RegExp(source);
}

/** The header's `# expect:` (and `# refusal:`) lines -> the outcome and the two Services. */
export function parseExpectation(fixture: string, text: string): HttpRouteCase {
  const line = /^# expect: (.*)$/m.exec(text)?.[1] ?? "";
  const kind = /^(manageable|continued|refused)\b/.exec(line)?.[1];
  if (!kind) throw new Error(`${fixture}: '# expect:' must start with manageable, continued or refused`);
  const stable = /\bstable=([a-z0-9.-]+)/.exec(line)?.[1];
  const canary = /\bcanary=([a-z0-9.-]+)/.exec(line)?.[1];
  const outcome: HttpRouteOutcome =
    kind === "refused"
      ? { kind: "refused", message: refusalPattern(fixture, text) }
      : kind === "continued"
        ? { kind: "continued" }
        : { kind: "promoted" };
  return { fixture, expect: line, stable, canary, outcome, ...MORE[fixture] };
}

/** Every fixture in fixtures/httproute/, each with what the user expects. */
export function httpRouteCases(dir = HTTP_ROUTE_FIXTURES): HttpRouteCase[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  } catch {
    return [];
  }
  return files.sort().map((f) => parseExpectation(f, readFileSync(join(dir, f), "utf8")));
}
