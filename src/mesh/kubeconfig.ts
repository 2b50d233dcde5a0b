/**
 * Loads the kubeconfig with @kubernetes/client-node: the input's content (loaded from memory, never
 * written to disk), else `KUBECONFIG`, `~/.kube/config` or the in-cluster service account; then an
 * optional context. Every problem names the input (and the file it fell back to); no message quotes
 * the document, which holds credentials.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { MeshError } from "./errors.ts";

export interface ClusterOptions {
  kubeconfig?: string;
  context?: string;
  /** Called with each kubeconfig file's text before it is used, so its credentials are masked too. */
  mask?: (text: string) => void;
}

/** Where the in-cluster service account's token lives (what loadFromDefault falls back to). */
const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** Which input a configuration came from, for messages: "Input 'kubeconfig'" plus where it was read. */
const sources = new WeakMap<k8s.KubeConfig, string>();

/** How a loaded configuration is named in messages ("Input 'kubeconfig'" and where it came from). */
export function kubeconfigSource(config: k8s.KubeConfig): string {
  return sources.get(config) ?? "Input 'kubeconfig'";
}

function inputError(source: string, problem: string): MeshError {
  const error = new MeshError(`${source}: ${problem}`);
  error.transient = false;
  return error;
}

/** Loads, selects the context and checks the cluster's server; see the file's comment. */
export function loadKubeConfig(
  options: ClusterOptions,
  env: NodeJS.ProcessEnv = process.env,
): k8s.KubeConfig {
  const config = new k8s.KubeConfig();
  // Where the document came from when the input was not set: named in every message.
  const origin = options.kubeconfig
    ? loadFromInput(config, options.kubeconfig)
    : loadFromEnvironment(config, env, options.mask);
  if (options.context) selectContext(config, options.context, origin);
  const source = sourceOf(origin);
  checkCluster(config, source, options.context !== undefined && options.context !== "");
  sources.set(config, source);
  return config;
}

/** The input's content, parsed from memory; its origin is the input itself (undefined). */
function loadFromInput(config: k8s.KubeConfig, content: string): undefined {
  try {
    config.loadFromString(content);
  } catch (error) {
    throw inputError(
      "Input 'kubeconfig'",
      `is not a valid kubeconfig (${parseProblem(error)}; the content is not shown because it holds credentials)`,
    );
  }
  return undefined;
}

/** Where a kubeconfig is found when the input is not set, as kubectl looks: the files, and their origin. */
function findKubeconfig(env: NodeJS.ProcessEnv): { origin: string; files: string[] } {
  const files = (env.KUBECONFIG ?? "").split(delimiter).filter((f) => f !== "");
  const home = env.HOME || homedir();
  const defaultFile = home ? join(home, ".kube", "config") : undefined;
  if (files.length > 0) {
    const origin = `KUBECONFIG=${files.join(delimiter)}`;
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length > 0)
      throw inputError(sourceOf(origin), `the file ${missing.join(", ")} does not exist`);
    return { origin, files };
  }
  if (defaultFile && existsSync(defaultFile)) return { origin: defaultFile, files: [defaultFile] };
  if (existsSync(SERVICE_ACCOUNT_TOKEN)) return { origin: "the in-cluster service account", files: [] };
  throw inputError(
    "Input 'kubeconfig'",
    `not set, and there is no KUBECONFIG, no ${defaultFile ?? "~/.kube/config"} and no in-cluster service account: set the kubeconfig input (for example kubeconfig: \${{ secrets.KUBECONFIG }})`,
  );
}

/** `KUBECONFIG`'s files merged, `~/.kube/config`, or the in-cluster account; each file masked first. */
function loadFromEnvironment(
  config: k8s.KubeConfig,
  env: NodeJS.ProcessEnv,
  mask: ((text: string) => void) | undefined,
): string {
  const { origin, files } = findKubeconfig(env);
  for (const file of files) {
    try {
      mask?.(readFileSync(file, "utf8"));
    } catch {
      // Unreadable: loading it below says so.
    }
  }
  try {
    // As loadFromDefault does, but from the files checked above (it would fall back silently).
    if (files.length === 0) config.loadFromCluster();
    else {
      config.loadFromFile(files[0] as string);
      for (const file of files.slice(1)) {
        const more = new k8s.KubeConfig();
        more.loadFromFile(file);
        config.mergeConfig(more);
      }
    }
  } catch (error) {
    throw inputError(sourceOf(origin), `is not a valid kubeconfig (${parseProblem(error)})`);
  }
  return origin;
}

function selectContext(config: k8s.KubeConfig, context: string, origin: string | undefined): void {
  if (!config.getContextObject(context)) {
    const known = config.getContexts().map((c) => c.name);
    throw inputError(
      "Input 'context'",
      `the kubeconfig${origin ? ` from ${origin}` : ""} has no context named "${context}" (it has ${known.length > 0 ? known.join(", ") : "none"})`,
    );
  }
  config.setCurrentContext(context);
}

/** The current context names a cluster, and its server is an http(s) URL. */
function checkCluster(config: k8s.KubeConfig, source: string, contextInput: boolean): void {
  const cluster = config.getCurrentCluster();
  if (!cluster) {
    throw inputError(
      contextInput ? "Input 'context'" : source,
      config.getContexts().length === 0
        ? "the kubeconfig has no contexts"
        : `the kubeconfig's current context "${config.getCurrentContext()}" names no cluster it defines; set current-context or the context input`,
    );
  }
  if (!isHttpUrl(cluster.server)) {
    // The value is shown only when it cannot carry credentials (no user info, no query).
    const shown = /^[\w.:/[\]-]{1,200}$/.test(cluster.server) ? ` "${cluster.server}"` : "";
    throw inputError(
      source,
      `cluster "${cluster.name}" has server${shown}, which is not an http(s) URL (expected for example https://10.0.0.1:6443)`,
    );
  }
}

/** YAML parser messages quote the document: only the client's own field checks are safe to show. */
function parseProblem(error: unknown): string {
  const safe = /^(clusters|users|contexts)\[\d+\]\S* is missing$/.exec((error as Error).message)?.[0];
  return safe ?? "its YAML or JSON could not be parsed";
}

function sourceOf(origin: string | undefined): string {
  return origin ? `Input 'kubeconfig' (not set; read from ${origin})` : "Input 'kubeconfig'";
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "https:" || url.protocol === "http:") && url.hostname !== "";
  } catch {
    return false;
  }
}
