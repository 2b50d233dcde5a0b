/**
 * The action's two steps. Each catches everything and ends in `core.setFailed` with a one-line
 * reason; importing this module does no work.
 */
import * as core from "@actions/core";
import { getConfig } from "./inputs.ts";
import { markMainStarted } from "./state-helper.ts";

/** One line for `core.setFailed`: the runner shows it as the step's annotation. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, " ").trim() || "unknown error";
}

export async function run(): Promise<void> {
  try {
    markMainStarted();
    const config = getConfig();
    core.info(
      `istio-canary: ${config.command} of VirtualService ${config.namespace}/${config.virtualService}`,
    );
    throw new Error(`command '${config.command}' is not implemented in this build yet`);
  } catch (error) {
    core.setFailed(oneLine(error));
  }
}

export async function runPost(): Promise<void> {
  try {
    core.debug("post step: nothing to clean up");
  } catch (error) {
    core.setFailed(oneLine(error));
  }
}
