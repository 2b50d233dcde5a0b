/**
 * Before all traffic moves back to the stable Deployment at finalization (issue 20): is it still
 * the template the promotion copied, and can it serve? Pure: the adapter reads the objects; these
 * compare them and name, for a person, what changed and who changed it (from the Deployment's
 * `metadata.managedFields`, which the API server keeps per field manager with the time of its
 * last write). Everything read here is untrusted text: it is quoted and cut short.
 */
import { type DeploymentLike, templateImages } from "./deployment-template.ts";

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: string | Date;
}

/** A value from the cluster as a person reads it in one line: JSON-quoted, at most 80 characters. */
function quoted(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 79)}…` : text);
}

/** What differs between the copied template and the one the Deployment has now, by container image first. */
export function templateChange(copied: unknown, now: DeploymentLike): string {
  const before = templateImages({ spec: { template: copied as DeploymentLike["spec"] } } as DeploymentLike);
  const after = templateImages(now);
  const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((name) => before[name] !== after[name])
    .map((name) =>
      after[name] === undefined
        ? `container ${quoted(name)} was removed`
        : before[name] === undefined
          ? `container ${quoted(name)} was added (${quoted(after[name])})`
          : `container ${quoted(name)} runs ${quoted(after[name])}, not the promoted ${quoted(before[name] ?? "")}`,
    );
  return changed.length > 0
    ? `its pod template is no longer the promoted one: ${changed.join("; ")}`
    : "its pod template is no longer the promoted one (it differs in more than the images)";
}

function entriesOf(deployment: { metadata?: unknown }): ManagedFieldsEntry[] {
  return ((deployment.metadata as { managedFields?: ManagedFieldsEntry[] } | undefined)?.managedFields ??
    []) as ManagedFieldsEntry[];
}

const time = (e: ManagedFieldsEntry) => new Date(e.time ?? 0).getTime();
const entryKey = (e: ManagedFieldsEntry) =>
  JSON.stringify([e.manager, e.operation, e.subresource ?? "", time(e)]);

/** The Deployment's managedFields entries as keys, taken right after the copy (see `writersSince`). */
export function writerKeys(deployment: { metadata?: unknown }): string[] {
  return entriesOf(deployment).map(entryKey);
}

/**
 * The writers of the Deployment since the copy other than `self`, newest first, as
 * `"kubectl-scale" (Update of /scale at 2026-12-06T08:10:03Z)`: the entries that are new or newer
 * than `before` (the entries right after the copy), else, as managedFields times have one-second
 * resolution, those written in the copy's second or later.
 */
export function writersSince(
  deployment: { metadata?: unknown },
  since: Date,
  self: string,
  before?: readonly string[],
): string[] {
  const others = entriesOf(deployment).filter((e) => e.manager !== self);
  const known = new Set(before ?? []);
  const changed = before ? others.filter((e) => !known.has(entryKey(e))) : [];
  const floor = Math.floor(since.getTime() / 1000) * 1000;
  return (changed.length > 0 ? changed : others.filter((e) => time(e) >= floor))
    .sort((a, b) => time(b) - time(a))
    .slice(0, 3)
    .map(
      (e) =>
        `${quoted(e.manager ?? "(no manager)")} (${e.operation ?? "Update"}${e.subresource ? ` of /${e.subresource}` : ""} at ${new Date(time(e)).toISOString().replace(/\.000Z$/, "Z")})`,
    );
}

/** True when the pod runs every image of `images` in the container of the same name. */
export function runsImages(
  pod: { spec?: { containers?: Array<{ name: string; image?: string }> } },
  images: Record<string, string>,
): boolean {
  const running = new Map((pod.spec?.containers ?? []).map((c) => [c.name, c.image]));
  return Object.entries(images).every(([name, image]) => running.get(name) === image);
}
