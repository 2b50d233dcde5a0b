/** Virtual time for code that takes `sleep` and `now`: every wait moves the clock at once. */
export interface VirtualClockOptions {
  /** Where the clock starts, in ms since the epoch; default 2026-11-27T12:00:00Z. */
  start?: number;
  /** Handed on as `random` (the backoff's jitter), for code that takes one. */
  random?: () => number;
}

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
