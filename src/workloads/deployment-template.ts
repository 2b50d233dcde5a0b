/**
 * The promotion's copy, as pure functions on plain JSON: the canary Deployment's pod template
 * becomes the stable Deployment's, except what makes a pod the stable's (the labels its selector,
 * its subset or its Service select) and what Istio's injector writes itself. Flagger's promotion
 * (pkg/canary/deployment_controller.go) copies the same way; Deployment-level metadata, replicas
 * and the selector are not in the template, so they stay the stable's by construction.
 */

type Json = Record<string, unknown>;

/** The part of a Deployment this module reads. */
export interface DeploymentLike {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    template?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } & Json;
      spec?: unknown;
    };
  } & Json;
}

/**
 * Template annotations Istio's injector sets on pods (a template copied from a pod carries them);
 * copying the canary's would describe a sidecar the stable's pods do not have.
 */
export const INJECTED_ANNOTATIONS = [
  "sidecar.istio.io/status",
  "kubectl.kubernetes.io/default-container",
  "kubectl.kubernetes.io/default-logs-container",
];

/**
 * The stable Deployment's new pod template: the canary's spec and annotations (without Istio's
 * injected ones), the canary's labels, except every label key that tells the versions apart (the
 * Deployments' selectors and the labels each version is selected by, its subset's or Service's):
 * those keep the stable's value, or are left out when the stable has none (a canary-only label on
 * stable pods would put them in the canary's subset).
 */
export function promotedTemplate(
  stable: DeploymentLike,
  canary: DeploymentLike,
  versionLabels: { stable: Record<string, string>; canary: Record<string, string> },
): Json {
  const stableTemplate = stable.spec?.template ?? {};
  const canaryTemplate = structuredClone(canary.spec?.template ?? {});
  const stableLabels = stableTemplate.metadata?.labels ?? {};
  const labels: Record<string, string> = { ...(canaryTemplate.metadata?.labels ?? {}) };
  const identifying = new Set([
    ...Object.keys(stable.spec?.selector?.matchLabels ?? {}),
    ...Object.keys(canary.spec?.selector?.matchLabels ?? {}),
    ...Object.keys(versionLabels.stable),
    ...Object.keys(versionLabels.canary),
  ]);
  for (const key of identifying) {
    const own = stableLabels[key];
    if (own === undefined) delete labels[key];
    else labels[key] = own;
  }
  const annotations: Record<string, string> = {};
  for (const [key, value] of Object.entries(canaryTemplate.metadata?.annotations ?? {})) {
    if (!INJECTED_ANNOTATIONS.includes(key)) annotations[key] = value;
  }
  for (const key of INJECTED_ANNOTATIONS) {
    const own = stableTemplate.metadata?.annotations?.[key];
    if (own !== undefined) annotations[key] = own;
  }
  const metadata: Json = { ...(canaryTemplate.metadata ?? {}), labels };
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  else delete metadata.annotations;
  return { ...canaryTemplate, metadata, spec: canaryTemplate.spec ?? {} };
}

/**
 * The one JSON Patch that writes `template` onto the stable Deployment, guarded by a `test` of the
 * resourceVersion it was planned from: a concurrent edit makes the server refuse it (422 on a
 * failed test) instead of being overwritten.
 */
export function templatePatch(stable: DeploymentLike, template: Json): object[] {
  const resourceVersion = stable.metadata?.resourceVersion;
  if (!resourceVersion) throw new Error(`Deployment ${stable.metadata?.name ?? ""} has no resourceVersion`);
  return [
    { op: "test", path: "/metadata/resourceVersion", value: resourceVersion },
    { op: "replace", path: "/spec/template", value: template },
  ];
}

/** The image of each container of a template, by container name. */
export function templateImages(deployment: DeploymentLike): Record<string, string> {
  const spec = deployment.spec?.template?.spec as
    | { containers?: Array<{ name: string; image?: string }> }
    | undefined;
  return Object.fromEntries((spec?.containers ?? []).map((c) => [c.name, c.image ?? ""]));
}
