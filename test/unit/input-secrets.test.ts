/**
 * Which parts of the inputs are masked one by one, and how URLs are shown: every credential of a
 * kubeconfig in any form, every credential a URL carries, and nothing of them in what is shown.
 */
import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { inputSecrets, kubeconfigSecrets } from "../../src/inputs/secrets.ts";
import { redactUrl, registerSecret, scrub, urlSecrets } from "../../src/redact.ts";

const PEM = [
  "-----BEGIN EC PRIVATE KEY-----",
  "MHcCAQEEIBkg4LVWM9nuwNSk3yBrcB7a3yWzhKqYtO0vqQmiHmcVoAoGCCqGSM49",
  "AwEHoUQDQgAEe+ZOO8b4VhXh6o8LHxE2h2j3Vv0r3m1Xq6mZ4vU5QxW3nY8y9Z0a",
  "-----END EC PRIVATE KEY-----",
].join("\n");

describe("kubeconfig credentials", () => {
  it("finds each credential of a YAML kubeconfig: token, password, key data and its decoded lines, exec env, auth-provider", () => {
    const keyData = Buffer.from(PEM).toString("base64");
    const yaml = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: Q0EtQ0VSVA==}
users:
- name: token-user
  user: {token: yaml-token-0001}
- name: basic
  user: {username: admin, password: basic-password-2}
- name: cert
  user: {client-certificate: /etc/cert.pem, client-key-data: ${keyData}}
- name: exec
  user:
    exec:
      command: aws
      args: ["eks", "get-token", "--token=exec-arg-secret-3"]
      env: [{name: AWS_SECRET_ACCESS_KEY, value: exec-env-secret-4}]
- name: oidc
  user:
    auth-provider:
      name: oidc
      config: {client-secret: oidc-client-secret-5, refresh-token: oidc-refresh-6, idp-issuer-url: "https://issuer"}
contexts:
- name: x
  context: {cluster: c, user: token-user}
current-context: x
`;
    const secrets = kubeconfigSecrets(yaml);
    for (const s of [
      "yaml-token-0001",
      "basic-password-2",
      keyData,
      "MHcCAQEEIBkg4LVWM9nuwNSk3yBrcB7a3yWzhKqYtO0vqQmiHmcVoAoGCCqGSM49",
      "exec-arg-secret-3",
      "exec-env-secret-4",
      "oidc-client-secret-5",
      "oidc-refresh-6",
    ])
      expect(secrets, s).toContain(s);
    for (const notSecret of ["admin", "/etc/cert.pem", "https://issuer", "aws", "Q0EtQ0VSVA=="])
      expect(secrets).not.toContain(notSecret);
  });

  it("finds the token of a one-line JSON kubeconfig, and of text js-yaml cannot read", () => {
    const json = JSON.stringify({
      apiVersion: "v1",
      clusters: [{ name: "c", cluster: { server: "https://h" } }],
      users: [{ name: "u", user: { token: "json-token-0042" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
    });
    expect(kubeconfigSecrets(json)).toContain("json-token-0042");
    expect(kubeconfigSecrets('{"users":[{"user":{"token":"broken-json-token"}}]')).toContain(
      "broken-json-token",
    );
    expect(kubeconfigSecrets("users:\n- user:\n    token: broken-yaml-token\n  : [")).toContain(
      "broken-yaml-token",
    );
  });

  it("masks the whole document as well as each credential, and every header value and URL credential", () => {
    const kubeconfig = "users:\n- name: u\n  user: {token: abcd-token}\n";
    const secrets = inputSecrets({
      kubeconfig,
      "github-token": "ghs_x",
      "prometheus-headers": "Authorization: Bearer header-secret\nX-Scope-OrgID: ab",
      "prometheus-url": "https://prom.example/a1b2c3d4e5f6a7b8c9d0x?api_key=query-secret",
    });
    for (const s of [
      kubeconfig,
      "abcd-token",
      "ghs_x",
      "Bearer header-secret",
      "ab",
      "a1b2c3d4e5f6a7b8c9d0x",
      "query-secret",
    ])
      expect(secrets, s).toContain(s);
  });
});

describe("URLs", () => {
  it("lists userinfo, query values and path tokens, raw and decoded, and no short values", () => {
    const secrets = urlSecrets(
      "https://grafana:p%40ss-word@prom.example/t0ken1234567890abcdefgh/api?orgId=1&key=k%2Bey-value",
    );
    for (const s of [
      "grafana",
      "p%40ss-word",
      "p@ss-word",
      "t0ken1234567890abcdefgh",
      "k%2Bey-value",
      "k+ey-value",
    ])
      expect(secrets, s).toContain(s);
    expect(secrets).not.toContain("1"); // masking "1" would blank every 1 of the log
  });

  it.each([
    ["https://user:pw@prom.example:9090/?api_key=x", "https://prom.example:9090"],
    ["http://prom.example/prometheus/", "http://prom.example/prometheus"],
    ["https://prom.example/a1b2c3d4e5f6a7b8c9d0e1/api/prom?x=1#frag", "https://prom.example/***/api/prom"],
    [
      "https://aps.example/workspaces/ws-12345678-abcd-1234-abcd-123456789012",
      "https://aps.example/workspaces/***",
    ],
    ["user:pw@prom:9090/x?key=y", "prom:9090/x"],
  ])("shows %s as %s", (url, shown) => expect(redactUrl(url)).toBe(shown));

  it("scrubs registered secrets out of what the action writes itself", () => {
    const masked: string[] = [];
    registerSecret("scrub-me-0042", (s) => masked.push(s));
    registerSecret("ab", (s) => masked.push(s));
    expect(masked).toEqual(["scrub-me-0042", "ab"]);
    expect(scrub("cannot reach https://h/?k=scrub-me-0042: ab")).toBe("cannot reach https://h/?k=***: ab");
  });
});
