/**
 * What a user expects of each published HTTPRoute in fixtures/httproute/ (issue 22). Every `*.yaml`
 * there is a case: its header says what the action should do (`# expect: <outcome> with
 * stable=<Service> canary=<Service>: ...`, the outcome one of promoted, manageable, continued,
 * refused), and an entry here, when there is one, adds what prose cannot: the exact refusal
 * message, the inputs a user would write. The traffic follows the route's parents: through the
 * Gateway it is attached to (to its first hostname), or inside the mesh to the Service (GAMMA).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const HTTP_ROUTE_FIXTURES = join(import.meta.dirname, "fixtures", "httproute");

export type HttpRouteOutcome =
  | { kind: "promoted" }
  /** An already-split rule: the first write that moves the canary is `firstWeight` (default: the next of stages 50,100 above it). */
  | { kind: "continued"; firstWeight?: number }
  | { kind: "refused"; message?: RegExp };

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

/** Expectations the header cannot carry, by fixture. */
const MORE: Record<string, Partial<HttpRouteCase>> = {
  "20-istio-httpbin-gateway.yaml": {},
  "21-gwapi-traffic-split-3-no-parent.yaml": {
    outcome: {
      kind: "refused",
      message: /HTTPRoute default\/foo-route has no parentRefs.*add a parentRef to the Gateway/,
    },
  },
};

/** `# expect: continued with stable=a canary=b: ...` -> the outcome and the two Services. */
export function parseExpectation(fixture: string, text: string): HttpRouteCase {
  const line = /^# expect: (.*)$/m.exec(text)?.[1] ?? "";
  const kind = /^(promoted|manageable|continued|refused)\b/.exec(line)?.[1];
  const stable = /\bstable=([a-z0-9.-]+)/.exec(line)?.[1];
  const canary = /\bcanary=([a-z0-9.-]+)/.exec(line)?.[1];
  const outcome: HttpRouteOutcome =
    kind === "refused"
      ? { kind: "refused" }
      : kind === "continued"
        ? { kind: "continued" }
        : { kind: "promoted" };
  return { fixture, expect: line || "(no # expect: line)", stable, canary, outcome, ...MORE[fixture] };
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
