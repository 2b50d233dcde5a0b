/**
 * PromQL for Istio's standard metrics. Every label value is escaped, so a subset or namespace name
 * cannot change the query. Raw counters only: no rate() or increase(), which extrapolate and miss a
 * series' first increment; counts are differences of raw counters (see counts.ts).
 */

import { escapeLabelValue, range } from "../promql-text.ts";

export type LabelMatchers = string;

export function matcher(label: string, value: string): string {
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label)) throw new Error(`not a Prometheus label name: ${label}`);
  return `${label}="${escapeLabelValue(value)}"`;
}

/**
 * The label that identifies a version from a DestinationRule subset's pod labels. A sidecar
 * (reporter `destination` or `source`) copies the `version` label to `destination_version`;
 * otherwise the canonical revision (`service.istio.io/canonical-revision`, else
 * `app.kubernetes.io/version`) is in `destination_canonical_revision`. A waypoint (reporter
 * `waypoint`) knows its endpoints by their workload metadata, which has no app version (istio/proxy's
 * istio_stats: "Endpoint encoding does not have app and version"), so its `destination_version` is
 * `unknown`: there the version is the canonical revision, which Istio takes from
 * `service.istio.io/canonical-revision`, else `app.kubernetes.io/version`, else `version`.
 */
export function versionMatcher(
  subsetLabels: Readonly<Record<string, string>>,
  reporter = "destination",
): string | undefined {
  const revision =
    subsetLabels["service.istio.io/canonical-revision"] ?? subsetLabels["app.kubernetes.io/version"];
  if (reporter === "waypoint") {
    const waypointRevision = revision ?? subsetLabels.version;
    return waypointRevision ? matcher("destination_canonical_revision", waypointRevision) : undefined;
  }
  if (subsetLabels.version) return matcher("destination_version", subsetLabels.version);
  return revision ? matcher("destination_canonical_revision", revision) : undefined;
}

/**
 * The reporter to query. `auto` (the input's default, so the runner always passes a value and
 * "left unset" cannot be seen): `waypoint` when the canary runs in ambient mode, where only the
 * waypoint reports L7 metrics, else `destination` (the canary's own sidecar). Also the warning when
 * a reporter named explicitly does not fit the data plane.
 */
export function effectiveReporter(
  reporter: string,
  dataplane: "sidecar" | "ambient",
): { reporter: string; warning?: string } {
  if (reporter === "auto") return { reporter: dataplane === "ambient" ? "waypoint" : "destination" };
  if (dataplane === "ambient" && reporter !== "waypoint")
    return {
      reporter,
      warning: `the canary runs in ambient mode, where a waypoint reports the L7 metrics with reporter="waypoint" (early ambient releases labelled them "destination"), but reporter is ${reporter}: leave it at auto unless your Istio reports otherwise (versions are matched by destination_canonical_revision either way)`,
    };
  if (dataplane === "sidecar" && reporter === "waypoint")
    return {
      reporter,
      warning: `reporter is waypoint, but the canary runs with sidecars, which report "destination" and "source": leave it at auto unless a waypoint also serves these pods`,
    };
  return { reporter };
}

/** Matchers for one destination service as Istio's reporter labels it. */
export function serviceMatchers(reporter: string, serviceName: string, namespace: string): string {
  return [
    matcher("reporter", reporter),
    matcher("destination_service_name", serviceName),
    matcher("destination_service_namespace", namespace),
  ].join(",");
}

/** Every series of the request counter: its value now, or its raw samples over the window. */
export function requestsQuery(selector: LabelMatchers, windowMs?: number): string {
  return range(`istio_requests_total{${selector}}`, windowMs);
}

/**
 * The histogram's `_count` and the `le` bucket of the threshold, per series, in one query (the
 * count has no `le` label, which `le=~"…|"` also matches). Envoy writes bucket bounds without a
 * trailing `.0`; both forms are accepted.
 */
export function latencyQuery(selector: LabelMatchers, thresholdMs: number, windowMs?: number): string {
  const le = String(thresholdMs).replace(".", "\\\\.");
  return range(
    `{__name__=~"istio_request_duration_milliseconds_(bucket|count)",${selector},le=~"(${le}(\\\\.0)?)?"}`,
    windowMs,
  );
}
