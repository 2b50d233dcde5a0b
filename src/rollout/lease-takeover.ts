/**
 * A dead run's lease, taken over as soon as GitHub says that run is over (issue 20). A lease
 * otherwise holds until it expires: for a run killed while finalizing, ~25 minutes at the defaults,
 * during which `command: promote` was refused. The lease holder is read from the cluster, so it is
 * untrusted: the adapter asks GitHub only about runs of this repository, and the release is written
 * only while the lease found is still the one GitHub was asked about. It moves no traffic.
 */

import type { EngineContext } from "./context.ts";
import { leaseBlocks } from "./model/state.ts";

/** The lease changed (renewed, released, taken by someone else) between the question and the write. */
class LeaseMoved extends Error {}

export async function takeOverDeadLease(c: EngineContext): Promise<void> {
  const { runs, traffic, clock, signal } = c.ports;
  if (!runs || c.settings.dryRun) return;
  const view = await traffic.read(signal);
  const lease = leaseBlocks(view.state, c.holder, clock.now());
  if (!lease) return;
  const run = await runs.status(lease.holder, signal);
  if (!run?.ended) return;
  const why = `GitHub reports ${lease.holder} as ${run.status}${run.conclusion ? ` (${run.conclusion})` : ""}: its lease (until ${lease.expiresAt}) is taken over by ${c.holder}`;
  try {
    await traffic.record((previous) => {
      if (previous?.lease?.holder !== lease.holder || previous.lease.expiresAt !== lease.expiresAt)
        throw new LeaseMoved();
      return c.after(previous, { lease: undefined }, "lease-taken-over", why);
    }, signal);
  } catch (error) {
    if (error instanceof LeaseMoved) return;
    throw error;
  }
  await c.emit({ type: "warning", at: c.now(), message: why });
}
