import type { RESULTS } from "../constants.ts";

export type Result = (typeof RESULTS)[number];
