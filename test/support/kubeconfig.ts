/** Builds kubeconfig documents for tests (content only; the emulator issues its own). */
import { dump } from "js-yaml";

export interface KubeconfigOptions {
  server: string;
  token: string;
  caData?: string;
  context?: string;
  currentContext?: string | null;
  namespace?: string;
}

export function kubeconfigYaml(o: KubeconfigOptions): string {
  const context = o.context ?? "test";
  return dump(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "emulator",
          cluster: o.caData
            ? { server: o.server, "certificate-authority-data": o.caData }
            : { server: o.server, "insecure-skip-tls-verify": true },
        },
      ],
      users: [{ name: "action", user: { token: o.token } }],
      contexts: [
        {
          name: context,
          context: { cluster: "emulator", user: "action", namespace: o.namespace ?? "default" },
        },
      ],
      ...(o.currentContext === null ? {} : { "current-context": o.currentContext ?? context }),
    },
    { lineWidth: -1 },
  );
}
