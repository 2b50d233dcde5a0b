/**
 * Virtual time for tests and the benchmark (hours of rollout in milliseconds). Two shapes, for the
 * two ways the product takes time: the engine's `Clock` port, and the `now`/`sleep` functions the
 * retry helper and the adapters built on it take as options.
 */
import type { Clock } from "../../src/rollout/clock.ts";

/** The engine's clock in virtual time: it only moves when slept on, and sleeping moves it at once. */
export class VirtualClock implements Clock {
  private time: number;
  constructor(start = Date.UTC(2026, 10, 26, 12, 0, 0)) {
    this.time = start;
  }
  now(): Date {
    return new Date(this.time);
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.time += ms;
  }
}

export interface VirtualClockOptions {
  /** Where the clock starts, in ms since the epoch; default 2026-11-27T12:00:00Z. */
  start?: number;
  /** Handed on as `random` (the backoff's jitter), for code that takes one. */
  random?: () => number;
}

/** `now` and `sleep` for code that takes them as options (src/retry.ts and its callers). */
export function virtualClock(options: VirtualClockOptions = {}) {
  let t = options.start ?? Date.parse("2026-11-27T12:00:00Z");
  const waits: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      waits.push(ms);
      t += ms;
    },
    /** Every wait asked for, in order. */
    waits,
    random: options.random,
  };
}
