/**
 * State the main step leaves for the post step (as actions/checkout's state-helper.ts).
 * The runner runs `post` in a new process with these values; `isPost` tells the one bundle which
 * of the two it is.
 */
import * as core from "@actions/core";
import { StateKey } from "./constants.ts";

export const isPost = (): boolean => core.getState(StateKey.isPost) === "true";

/** Marks the process as the main step, so the post step that follows knows it is the post step. */
export function markMainStarted(): void {
  core.saveState(StateKey.isPost, "true");
}
