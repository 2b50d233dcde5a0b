/**
 * The `http-route` input (issue 22): exactly one of virtual-service / http-route, the two Services
 * as stable-host and canary-host, `routes` by rule name or #index, and stages below 1 % accepted for
 * an HTTPRoute and refused for a VirtualService with the reason.
 */
import { describe, expect, it } from "vitest";
import { InputError, parseConfig } from "../../src/inputs/config.ts";

const route = {
  "http-route": "backend",
  "stable-host": "backend-v1",
  "canary-host": "backend-v2",
  "prometheus-url": "http://prometheus.istio-system:9090/",
};
const vs = {
  "virtual-service": "backend",
  "stable-subset": "v1",
  "canary-subset": "v2",
  "prometheus-url": route["prometheus-url"],
};

function problems(raw: Record<string, string>): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    if (e instanceof InputError) return e.problems.map((p) => `${p.input}: ${p.message}`);
    throw e;
  }
  return [];
}

describe("http-route", () => {
  it("names HTTPRoutes (namespace/name, several in lockstep) with rules selected by name or #index", () => {
    const c = parseConfig({
      ...route,
      "http-route": "backend, istio-ingress/backend-gw",
      routes: "primary\nbackend-gw:#0",
    });
    expect(c.routeKind).toBe("HTTPRoute");
    expect(c.virtualServices.map((r) => [r.namespace, r.name, r.routes])).toEqual([
      ["default", "backend", ["primary"]],
      ["istio-ingress", "backend-gw", ["primary", "#0"]],
    ]);
    expect(c.split).toEqual({ mode: "host", stableHost: "backend-v1", canaryHost: "backend-v2" });
    expect(parseConfig(vs).routeKind).toBe("VirtualService");
  });

  it("takes stages below 1 % and with decimals for an HTTPRoute, and pause-after one of them", () => {
    const c = parseConfig({ ...route, stages: "0.1,1,2.5,50,100", "pause-after": "2.5" });
    expect(c.stages).toEqual([0.1, 1, 2.5, 50, 100]);
    expect(c.pauseAfter).toBe(2.5);
    expect(problems({ ...route, stages: "0.0001,100" })[0]).toMatch(/^stages: .*at most 3 decimals/);
  });

  it("refuses them for a VirtualService, saying why and what takes them", () => {
    expect(problems({ ...vs, stages: "0.1,1,10,50,100" })).toEqual([
      `stages: "0.1,1,10,50,100" has "0.1": Istio's VirtualService weights are whole percentages, so a stage below 1 % or between two percentages cannot be written there (a Gateway API HTTPRoute, in http-route, takes proportional weights and such stages); use strictly increasing whole numbers from 1 to 100, ending at 100, such as 1,10,50,100`,
    ]);
  });

  it("refuses both inputs at once, subsets with an HTTPRoute, and an HTTPRoute without its Services", () => {
    expect(problems({ ...route, "virtual-service": "backend" })[0]).toMatch(
      /^http-route: cannot be combined with virtual-service/,
    );
    expect(
      problems({
        ...route,
        "stable-host": "",
        "canary-host": "",
        "stable-subset": "v1",
        "canary-subset": "v2",
      }),
    ).toEqual([
      "stable-subset: cannot be used with http-route: an HTTPRoute splits traffic between two Services (its backendRefs), not DestinationRule subsets; set stable-host and canary-host to the stable and canary Services",
    ]);
    expect(problems({ ...route, "stable-host": "", "canary-host": "" })[0]).toMatch(
      /^stable-host: is required with http-route/,
    );
    expect(problems({ ...route, "http-route": "Not_A_Name" })[0]).toMatch(
      /^http-route: "Not_A_Name" is not a Kubernetes name/,
    );
  });
});
