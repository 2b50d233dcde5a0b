/**
 * State the main step leaves for the post step (as actions/checkout's state-helper.ts). The runner
 * runs `post` in a new process with these values; `isPost` tells the one bundle which step it is,
 * and `inFlight` says whether main stopped in the middle of a stage (cancelled or crashed).
 */
import * as core from "@actions/core";
import { StateKey } from "./constants.ts";

export const isPost = (): boolean => core.getState(StateKey.isPost) === "true";

/** Marks the process as the main step, so the post step that follows knows it is the post step. */
export function markMainStarted(): void {
  core.saveState(StateKey.isPost, "true");
}

export interface InFlight {
  rolloutId: string;
  stage: number;
  weight: number;
  /** Set once the last stage passed: the post step must not roll back, only record the pass. */
  passed?: { reason: string; finalize: boolean };
}

/**
 * Written at every weight change: if main never clears it, the post step cleans up. The same value
 * is kept as the last move, which is never cleared: after a clean end the post step still checks
 * that no route was left on the canary (one of several VirtualServices that refused the rollback).
 */
export function recordInFlight(value: InFlight): void {
  core.saveState(StateKey.rolloutInFlight, JSON.stringify(value));
  core.saveState(StateKey.rolloutMoved, JSON.stringify(value));
}

export function clearInFlight(): void {
  core.saveState(StateKey.rolloutInFlight, "");
}

export function getInFlight(): InFlight | undefined {
  return savedMove(StateKey.rolloutInFlight);
}

/** The last weight main moved to, whether or not it ended cleanly; undefined when it moved none. */
export function getLastMove(): InFlight | undefined {
  return savedMove(StateKey.rolloutMoved);
}

function savedMove(key: string): InFlight | undefined {
  const text = core.getState(key);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as InFlight;
  } catch {
    return undefined;
  }
}

/** Main added a preview route (`command: preview`): the post step removes it unless a rollout took it over. */
export function savePreviewAdded(value: { header: string; value: string }): void {
  core.saveState(StateKey.previewAdded, JSON.stringify(value));
}

export function getPreviewAdded(): { header: string; value: string } | undefined {
  const text = core.getState(StateKey.previewAdded);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as { header: string; value: string };
  } catch {
    return undefined;
  }
}
