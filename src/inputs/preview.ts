/**
 * The preview inputs (issue 23): the header a preview route matches, its value, and whether a
 * rollout keeps the route through its stages. Pure, as the other parsers in ./parsers.ts.
 */
import type { PreviewConfig } from "../rollout/model/settings.ts";
import { type Fail, type Get, show } from "./parsers.ts";

/**
 * Istio requires lowercase header names with `-` as the separator; the pseudo-headers (`:path`)
 * and the ones Istio matches elsewhere (`uri`, `scheme`, `method`, `authority`) are not headers here.
 */
const HEADER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const NOT_HEADERS = new Set(["uri", "scheme", "method", "authority", "host"]);
/** A token a workflow can put in a curl command and a report can show as is (RFC 9110 tchar, less a few). */
const HEADER_VALUE = /^[A-Za-z0-9._~+-]{1,128}$/;

export function parsePreview(get: Get, fail: Fail): PreviewConfig | undefined {
  const header = get("preview-header");
  const headerOk = HEADER_NAME.test(header) && !NOT_HEADERS.has(header);
  if (!headerOk)
    fail(
      "preview-header",
      `${show(header)} is not a header name Istio can match: lowercase letters, digits and '-', at most 63 characters (not uri, scheme, method, authority or host)`,
    );
  const valueText = get("preview-value");
  const value = valueText === "" ? undefined : valueText;
  const valueOk = value === undefined || HEADER_VALUE.test(value);
  if (!valueOk)
    fail(
      "preview-value",
      `${show(valueText)} is not allowed: 1 to 128 letters, digits and . _ ~ + - (leave it empty for the rollout id)`,
    );
  const policyText = get("preview");
  const policy = policyText === "keep" || policyText === "remove" ? policyText : undefined;
  if (!policy)
    fail(
      "preview",
      `${show(policyText)} is not allowed; use remove (the rollout's first stage removes the preview route) or keep (it stays until the rollout ends)`,
    );
  if (!headerOk || !valueOk || !policy) return undefined;
  return { header, ...(value === undefined ? {} : { value }), policy };
}

/** The preview route is written into an Istio VirtualService: not yet into an HTTPRoute (issue 22). */
export function refusePreviewOfHttpRoute(command: string | undefined, routeKind: string, fail: Fail): void {
  if (routeKind === "HTTPRoute" && command === "preview")
    fail(
      "command",
      "preview is not yet supported with http-route: the header-routed preview route is written into an Istio VirtualService (name it in virtual-service)",
    );
}
