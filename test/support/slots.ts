/**
 * A limit on how many of a test file's concurrent cases run their work at once: each case waits for
 * a slot. The corpus files use it so that on two cores the meshes (each a Prometheus, a simulator
 * and the action's process) do not make Prometheus answer slower than the action's query timeout.
 */
export function slots(atOnce: number): <T>(work: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (running >= atOnce) await new Promise<void>((go) => waiting.push(go));
    running += 1;
    try {
      return await work();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };
}
