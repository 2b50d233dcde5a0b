/**
 * The finalization inputs (issue 14): what happens to the Deployments after a promotion. Pure, as
 * the other parsers in ./parsers.ts.
 */
import { FINALIZE_POLICIES } from "../constants.ts";
import type { FinalizeConfig, FinalizePolicy } from "../rollout/model/settings.ts";
import {
  DNS1123_SUBDOMAIN,
  type Fail,
  type Get,
  parseBoolean,
  parseBoundedDuration,
  show,
} from "./parsers.ts";

export function parseFinalize(get: Get, fail: Fail): FinalizeConfig | undefined {
  const before = { failed: false };
  const failing: Fail = (input, message) => {
    before.failed = true;
    return fail(input, message);
  };
  const policyText = get("finalize") || "auto";
  const policy = (FINALIZE_POLICIES as readonly string[]).includes(policyText)
    ? (policyText as FinalizePolicy)
    : failing(
        "finalize",
        `${show(policyText)} is not allowed; use auto (copy where each version is one Deployment, else leave the stable alone with a warning), copy (the stable Deployment gets the promoted canary's pod template; refused when it cannot) or none (the stable is updated elsewhere, such as by a GitOps controller)`,
      );
  const timeoutText = get("finalize-timeout");
  let timeoutMs: number | undefined;
  if (timeoutText) {
    timeoutMs = parseBoundedDuration("finalize-timeout", timeoutText, failing);
  }
  const scaleDownCanary =
    parseBoolean(get("scale-down-canary")) ??
    failing("scale-down-canary", `${show(get("scale-down-canary"))} is not a boolean; use true or false`);
  const replicasText = get("canary-replicas");
  let canaryReplicas: number | undefined;
  if (replicasText) {
    canaryReplicas =
      /^\d{1,6}$/.test(replicasText) && Number(replicasText) >= 1
        ? Number(replicasText)
        : failing(
            "canary-replicas",
            `${show(replicasText)} is not a replica count from 1 to 999999; leave it empty to use the stable Deployment's count`,
          );
  }
  const name = (input: "stable-deployment" | "canary-deployment"): string | undefined => {
    const text = get(input);
    if (!text) return undefined;
    return DNS1123_SUBDOMAIN.test(text) && text.length <= 253
      ? text
      : failing(
          input,
          `${show(text)} is not a Deployment name (lowercase letters, digits, '-' and '.', at most 253 characters)`,
        );
  };
  const stableDeployment = name("stable-deployment");
  const canaryDeployment = name("canary-deployment");
  if (stableDeployment && stableDeployment === canaryDeployment)
    failing(
      "canary-deployment",
      `${show(canaryDeployment)} is also stable-deployment; the two versions need their own Deployments`,
    );
  if (before.failed) return undefined;
  return {
    policy: policy as FinalizePolicy,
    timeoutMs,
    scaleDownCanary: scaleDownCanary as boolean,
    canaryReplicas,
    stableDeployment,
    canaryDeployment,
  };
}
