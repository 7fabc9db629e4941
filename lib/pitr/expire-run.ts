/**
 * Expiry of a PITR source's sets (issue 13, "Retention"): the host's pgBackRest never expires
 * anything (`expire-auto=n`, its own retention at the maximum); this is where sets go, by the
 * decision of Lifeboat's policy (retention.ts), through `pgbackrest expire`:
 *
 * - the sets are pgBackRest's own (`info`); each set's status is the verdict of its Lifeboat run
 *   in the source's PITR catalog (`runs/<source>-pitr/`, the run whose manifest names the set's
 *   label): `verified`, `failed`, or `unverified` when no run has a verdict for it (a set made
 *   outside Lifeboat's schedule, or whose run did not finish);
 * - the policy is the tier's, exactly as the logical pruner builds it (`policyForTier`);
 * - `pgbackrest expire` removes the decided sets, dependents first, then the WAL no kept full
 *   needs. Nothing runs when nothing is to be removed, or on a dry run.
 *
 * In the versioned, Object-Locked bucket a removal is a delete marker: every version stays under
 * its lock (and the offsite copy replicates no delete), so an expiry hides a set from pgBackRest
 * and destroys nothing before the bucket's lifecycle does.
 *
 * Idempotent: an expiry interrupted part way leaves fewer sets in `info`; the next one decides
 * the rest again. What runs `pgbackrest expire` needs the repository's s3:DeleteObject.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { listRuns, type RunRecord, type RunStatus } from '../catalog/catalog';
import { pitrCatalogName } from '../domain/layout';
import { policyForTier } from '../retention/policy';
import type { PruneSourceSpec } from '../retention/prune';
import type { PgBackRest } from './pgbackrest';
import { decidePitrRetention, type PitrRetentionDecision } from './retention';

export interface PitrExpireOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** The source (its name, not its PITR catalog's) and its tier, as the logical pruner takes them. */
  readonly source: PruneSourceSpec;
  /** pgBackRest for the source's repository, with the repository's delete permission. */
  readonly runner: Pick<PgBackRest, 'info' | 'expire'>;
  /** The policy's clock. */
  readonly now: Date;
  /** Decide and log only. @default false */
  readonly dryRun?: boolean;
  /** One line per set, and one for what was done. @default - dropped */
  readonly log?: (line: string) => void;
}

export interface PitrExpireResult extends PitrRetentionDecision {
  readonly source: string;
  readonly dryRun: boolean;
  /** Whether `pgbackrest expire` ran (false on a dry run, or when nothing was to be removed). */
  readonly applied: boolean;
}

/** Decides the source's sets and expires those the policy removes (see the module comment). */
export async function applyPitrRetention(opts: PitrExpireOptions): Promise<PitrExpireResult> {
  const { source, runner } = opts;
  const log = opts.log ?? (() => undefined);
  const dryRun = opts.dryRun ?? false;
  const policy = policyForTier(source.tier);
  // The sets first: a set made after this listing is not decided (the next expiry decides it).
  const { sets } = await runner.info();
  const statuses = statusesByLabel(await listRuns(opts.s3, opts.bucket, pitrCatalogName(source.name)));
  const decision = decidePitrRetention(sets, statuses, policy, opts.now);
  const byLabel = new Map(sets.map((set) => [set.label, set]));
  const line = (action: string) => (entry: PitrRetentionDecision['keep'][number]) =>
    log(`${source.name}: set ${entry.set} (${byLabel.get(entry.set)?.type ?? '?'}, ${entry.status}) ${action}: ${entry.reason}`);
  decision.keep.forEach(line('kept'));
  decision.remove.forEach(line(dryRun ? 'would be removed' : 'removed'));
  const applied = !dryRun && decision.expire.sets.length > 0;
  if (applied) await runner.expire(decision.expire);
  log(`${source.name}: ${decision.keep.length} set(s) kept, ${decision.remove.length} ${dryRun ? 'to remove (dry run: nothing removed)' : 'removed'}` +
    (applied ? `; the WAL kept from the oldest of ${decision.expire.archiveFulls} kept full(s) on` : ''));
  return { source: source.name, dryRun, applied, ...decision };
}

/**
 * Each set's status from the runs of its PITR catalog: the verdict of the newest run of the set
 * that has one (a retry's verdict is newer evidence than the first's); `unverified` when none
 * has. A set no run names has no entry (decidePitrRetention reads it as unverified).
 */
export function statusesByLabel(runs: readonly RunRecord[]): Record<string, RunStatus> {
  const statuses: Record<string, RunStatus> = {};
  const newestFirst = [...runs].sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
  for (const run of newestFirst) {
    const label = run.manifest?.pitr?.label;
    if (label === undefined) continue;
    if (statuses[label] === undefined || (statuses[label] === 'unverified' && run.status !== 'unverified')) statuses[label] = run.status;
  }
  return statuses;
}
