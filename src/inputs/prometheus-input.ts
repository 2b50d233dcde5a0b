/**
 * The Prometheus inputs: the URL (http or https, no userinfo, shown only redacted) and the extra
 * request headers, whose values may be secrets and so are never shown in a message.
 */
import { ACTION_SET_HEADERS } from "../constants.ts";
import { redactUrl } from "../redact.ts";
import { type Fail, type Get, show } from "./parsers.ts";
import type { PrometheusConfig } from "./types.ts";

// RFC 9110 field-name token.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// RFC 9110 field-value characters: tab, space, visible ASCII, and the visible part of obs-text
// (Latin-1 0xA0-0xFF). Anything else (CR, LF, NUL, other controls, DEL, C1 controls, code points
// above 0xFF) would be refused by fetch at request time or, worse, split the request.
const HEADER_VALUE = /^[\t\x20-\x7E\xA0-\xFF]*$/;

export function parseHeaders(text: string, fail: Fail): Record<string, string> {
  const headers: Record<string, string> = {};
  const seen = new Set<string>();
  const input = "prometheus-headers";
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `line ${i + 1}`;
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim() : "";
    if (!HEADER_NAME.test(name)) {
      fail(
        input,
        `${where} is not a 'Name: value' header with a name of letters, digits and !#$%&'*+.^_\`|~- (its content is not shown because it may be a secret)`,
      );
      return;
    }
    const value = line.slice(colon + 1).trim();
    if (ACTION_SET_HEADERS.includes(name.toLowerCase())) {
      fail(
        input,
        `${where} sets ${name}, which the action sets itself; remove it (any other header, such as Authorization or X-Scope-OrgID, is allowed)`,
      );
      return;
    }
    if (seen.has(name.toLowerCase())) {
      fail(input, `${where} sets ${name} a second time; give each header once`);
      return;
    }
    seen.add(name.toLowerCase());
    if (value === "") {
      fail(input, `${where} (${name}) has an empty value; is the secret it comes from set?`);
      return;
    }
    if (!HEADER_VALUE.test(value)) {
      const bad = [...value].find((c) => !HEADER_VALUE.test(c)) ?? "";
      const code = `U+${(bad.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
      fail(
        input,
        `${where} (${name}) has the character ${code} in its value (not shown: it may be a secret); a header value allows tabs, spaces, visible ASCII and Latin-1 letters and signs (U+00A0 to U+00FF), and no CR, LF, NUL or other control characters`,
      );
      return;
    }
    headers[name] = value;
  });
  return headers;
}

export function parsePrometheus(get: Get, fail: Fail, optional: boolean): PrometheusConfig | undefined {
  const urlText = get("prometheus-url");
  const headers = parseHeaders(get("prometheus-headers"), fail);
  if (!urlText) {
    if (optional) return undefined;
    return fail(
      "prometheus-url",
      "is required unless skip-analysis is true: the base URL of the Prometheus HTTP API, such as http://prometheus.istio-system:9090",
    );
  }
  // Shown redacted: the URL may carry a key in its query, userinfo or path.
  const shown = show(redactUrl(urlText));
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    return fail(
      "prometheus-url",
      `${shown} is not a URL; use an http or https URL such as http://prometheus.istio-system:9090`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return fail(
      "prometheus-url",
      `${shown} uses ${url.protocol.replace(":", "")}; only http and https are allowed`,
    );
  }
  if (url.username || url.password) {
    return fail(
      "prometheus-url",
      `${shown} carries credentials before its host (user:password@), which fetch cannot send; put them in prometheus-headers (for example 'Authorization: Basic ...') so they are masked`,
    );
  }
  return {
    url: url.toString().replace(/\/+$/, ""),
    displayUrl: redactUrl(url.toString()),
    headers: Object.freeze(headers),
  };
}
