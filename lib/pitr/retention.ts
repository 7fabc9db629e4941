/**
 * Retention of a PITR source's sets, decided by Lifeboat's policy (lib/retention/policy.ts),
 * never by the host's pgBackRest: each set is a run at its start time, depending on the sets it
 * references and on its prior chain (pgBackRest expires a set's dependents with it), so a kept
 * differential or incremental keeps its full and its chain; the newest verified sets are never
 * removed, and neither is the newest verified full, whatever depends on it. The decision becomes
 * `pgbackrest expire --set` of each removed set, dependents first, then the WAL no kept set needs
 * (the archive kept from the oldest kept full on, so the WAL of every kept set stays).
 */
import type { RunStatus } from '../catalog/catalog';
import { formatRunId } from '../domain/run-id';
import { decide, type Decision, type RetentionPolicy } from '../retention/policy';
import type { BackupSet } from './pgbackrest-info';

export interface PitrRetentionDecision {
  /** Newest first, with the rules that keep each. */
  readonly keep: readonly (Decision & { readonly set: string })[];
  readonly remove: readonly (Decision & { readonly set: string })[];
  /** What `PgBackRest.expire` is given: the removed sets, dependents before their bases, and the fulls kept. */
  readonly expire: { readonly sets: readonly string[]; readonly archiveFulls: number };
}

/**
 * `statuses`: each set's verdict by label (its verify-set verdict: `verified` or `failed`); a
 * set without one is `unverified`. As for logical runs, only verified sets fill the keep counts
 * and the newest verified ones are never removed, so a run of failed sets never pushes the last
 * restorable one out.
 */
export function decidePitrRetention(
  sets: readonly BackupSet[],
  statuses: Readonly<Record<string, RunStatus>>,
  policy: RetentionPolicy,
  now: Date,
): PitrRetentionDecision {
  const runIdOf = new Map(sets.map((set) => [set.label, formatRunId(set.startTime)]));
  if (new Set(runIdOf.values()).size !== sets.length) {
    throw Object.assign(new Error('pitr retention: two sets started in the same second'), { name: 'InvalidInput' });
  }
  const labelOf = new Map([...runIdOf].map(([label, runId]) => [runId, label]));
  const decision = decide(sets.map((set) => ({
    runId: runIdOf.get(set.label) as string,
    status: statuses[set.label] ?? 'unverified',
    // What a restore reads (references), and the prior chain: pgBackRest expires a set's dependents with it.
    dependsOn: [...new Set([...(set.references ?? []), ...(set.prior ? [set.prior] : [])])]
      .map((label) => runIdOf.get(label)).filter((runId): runId is string => runId !== undefined),
  })), policy, now);
  const named = (entries: readonly Decision[]) => entries.map((entry) => ({ ...entry, set: labelOf.get(entry.runId) as string }));
  let keep = named(decision.keep);
  let remove = named(decision.remove);
  // The newest verified full is what a restore falls back on when everything after it fails: the
  // keep counts may be filled by the newest verified sets of a chain whose own full failed, so it
  // is kept by its own rule (and its WAL with it: archiveFulls counts it). A full depends on nothing.
  const newestFull = sets.filter((set) => set.type === 'full' && statuses[set.label] === 'verified')
    .reduce<BackupSet | undefined>((newest, set) => (!newest || set.startTime > newest.startTime ? set : newest), undefined);
  if (newestFull) {
    const rule = 'the newest verified full: never removed';
    const withRule = (entry: (typeof keep)[number], reasons: readonly string[]) => ({ ...entry, reasons, reason: reasons.join('; ') });
    const removed = remove.find((entry) => entry.set === newestFull.label);
    if (removed) {
      remove = remove.filter((entry) => entry !== removed);
      keep = [...keep, withRule(removed, [rule])].sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
    } else {
      keep = keep.map((entry) => (entry.set === newestFull.label ? withRule(entry, [...entry.reasons, rule]) : entry));
    }
  }
  const kept = new Set(keep.map((entry) => entry.set));
  const byLabel = new Map(sets.map((set) => [set.label, set]));
  // Dependents (differentials, incrementals) first, newest first; fulls last.
  const order = [...remove].sort((a, b) => {
    const fullA = byLabel.get(a.set)?.type === 'full' ? 1 : 0;
    const fullB = byLabel.get(b.set)?.type === 'full' ? 1 : 0;
    return fullA - fullB || (a.set < b.set ? 1 : -1);
  });
  const archiveFulls = Math.max(1, sets.filter((set) => set.type === 'full' && kept.has(set.label)).length);
  return { keep, remove, expire: { sets: order.map((entry) => entry.set), archiveFulls } };
}
