/**
 * Which parts of the raw inputs are secrets, so that `getConfig()` registers each one with
 * `core.setSecret` before anything can log: the GitHub token, every prometheus-headers value,
 * the credentials inside prometheus-url (see redact.ts), and every credential inside a kubeconfig
 * in any form (YAML, one-line JSON, base64 key data, exec env values, auth-provider config), each on
 * its own as well as the whole document. The runner masks a registered value wherever it appears,
 * but only as a whole: a token masked only as part of a multi-line document shows through when a
 * library prints the token alone.
 */
import { Buffer } from "node:buffer";
import { load } from "js-yaml";
import { MIN_MASKED_LENGTH, urlSecrets } from "../redact.ts";

type Raw = Readonly<Record<string, string>>;

/** Keys of a kubeconfig user whose values are never secret (file paths, names, commands). */
const NOT_SECRET_USER_KEYS = new Set([
  "username",
  "client-certificate",
  "client-key",
  "tokenFile",
  "as",
  "as-uid",
  "as-groups",
]);
/** auth-provider config keys that say how, not with what. */
const NOT_SECRET_PROVIDER_KEYS = new Set([
  "cmd-path",
  "cmd-args",
  "expiry",
  "expiry-key",
  "token-key",
  "idp-issuer-url",
  "scopes",
]);
/** A command-line argument that carries a credential: --token=..., --password ..., api-key=... */
const SECRET_ARG = /(?:token|secret|password|passwd|key|credential)[^=]*=(.+)$/i;
/** Fallback for text js-yaml cannot read: `key: value` lines and `"key": "value"` JSON pairs. */
const SECRET_PAIR =
  /["']?(token|client-key-data|client-certificate-data|password|id-token|refresh-token|access-token|client-secret)["']?\s*:\s*["']?([^"'\s,}]+)/g;

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The lines of a base64 PEM key: a library that prints the decoded key prints these. */
function decodedKeyLines(base64: string): string[] {
  const pem = Buffer.from(base64, "base64").toString("utf8");
  if (!pem.includes("-----BEGIN")) return [];
  return pem
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length >= 16 && !l.startsWith("-----"));
}

function userSecrets(user: Record<string, unknown>): string[] {
  const found: string[] = [];
  for (const [key, value] of Object.entries(user)) {
    if (typeof value === "string" && !NOT_SECRET_USER_KEYS.has(key)) {
      found.push(value);
      if (key === "client-key-data") found.push(...decodedKeyLines(value));
    }
  }
  const exec = asRecord(user.exec);
  if (exec) {
    for (const env of asList(exec.env)) {
      const value = asRecord(env)?.value;
      if (typeof value === "string") found.push(value);
    }
    for (const arg of asList(exec.args)) {
      const value = typeof arg === "string" ? SECRET_ARG.exec(arg)?.[1] : undefined;
      if (value) found.push(value);
    }
  }
  const config = asRecord(asRecord(user["auth-provider"])?.config);
  for (const [key, value] of Object.entries(config ?? {})) {
    if (typeof value === "string" && !NOT_SECRET_PROVIDER_KEYS.has(key)) found.push(value);
  }
  return found;
}

/**
 * Every credential a kubeconfig carries, whatever its form. What js-yaml can read is walked
 * (users' tokens, passwords, key data, exec env values and secret arguments, auth-provider config,
 * credentials in cluster and proxy URLs); `key: value` pairs are also matched as text, so a
 * document js-yaml refuses is still masked.
 */
export function kubeconfigSecrets(text: string): string[] {
  const found: string[] = [];
  let doc: Record<string, unknown> | undefined;
  try {
    doc = asRecord(load(text));
  } catch {
    doc = undefined;
  }
  for (const entry of asList(doc?.users)) {
    const user = asRecord(asRecord(entry)?.user);
    if (user) found.push(...userSecrets(user));
  }
  for (const entry of asList(doc?.clusters)) {
    const cluster = asRecord(asRecord(entry)?.cluster);
    for (const key of ["server", "proxy-url"]) {
      const url = cluster?.[key];
      if (typeof url === "string") found.push(...urlSecrets(url));
    }
  }
  for (const m of text.matchAll(SECRET_PAIR)) if (m[2]) found.push(m[2]);
  return [...new Set(found.map((s) => s.trim()))].filter((s) => s.length >= MIN_MASKED_LENGTH);
}

/**
 * The credential inside a header value `<scheme> <credentials>` (RFC 9110 section 11.4), on its
 * own: a server that echoes `Bearer <token>` in an error may quote the token alone, and the runner
 * masks only whole registered values. Basic credentials are masked decoded too (`user:password`
 * and the password), as a library may print them so.
 */
export function credentialsOf(value: string): string[] {
  const match = /^([A-Za-z][\w!#$%&'*+.^`|~-]*)\s+(\S.*)$/.exec(value.trim());
  if (!match) return [];
  const [, scheme, credentials] = match as unknown as [string, string, string];
  const found = [credentials];
  if (scheme.toLowerCase() === "basic") {
    const decoded = Buffer.from(credentials, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0 && /^[\x20-\x7e]+$/.test(decoded)) found.push(decoded, decoded.slice(colon + 1));
  }
  return found.filter((s) => s.length >= MIN_MASKED_LENGTH);
}

/** Every secret in the raw inputs, each to be registered with core.setSecret on its own. */
export function inputSecrets(raw: Raw): string[] {
  const found: string[] = [];
  const token = raw["github-token"]?.trim();
  if (token) found.push(token);
  const kubeconfig = raw.kubeconfig;
  if (kubeconfig?.trim()) found.push(kubeconfig, kubeconfig.trim(), ...kubeconfigSecrets(kubeconfig));
  for (const line of (raw["prometheus-headers"] ?? "").split("\n")) {
    const colon = line.indexOf(":");
    const value = (colon > 0 ? line.slice(colon + 1) : line).trim();
    if (value) found.push(value, ...credentialsOf(value));
  }
  const url = raw["prometheus-url"]?.trim();
  if (url) found.push(...urlSecrets(url));
  // Header values and tokens are masked whatever their length: they are secrets by declaration.
  return [...new Set(found)].filter((s) => s.trim() !== "");
}
