/** What a run of the action is asked to do (the `command` input): the engine's entry points. */
import type { COMMANDS } from "../constants.ts";

export type Command = (typeof COMMANDS)[number];
