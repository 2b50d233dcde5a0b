/**
 * Time, injected: the engine runs in real time in the action and in virtual time in tests and
 * benchmarks (hours of rollout in milliseconds).
 */
export interface Clock {
  now(): Date;
  /** Resolves after `ms`, or rejects with `signal.reason` as soon as the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/** A clock that only moves when slept on: sleeping advances it at once. */
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
