/**
 * Applies a retention policy to one source's runs in the bucket. The policy (policy.ts) decides;
 * this module only lists, deletes and reports.
 *
 * Contract:
 * - Dry-run deletes nothing and returns the same rows a real prune would start from.
 * - A run still under Object Lock is skipped and reported (`skip-locked`), never a failure of the
 *   whole prune: retain-until is computed here (the latest of the run's start and its objects'
 *   last-modified times, plus the lock period), and an AccessDenied from S3 on delete — what a
 *   real locked object answers — is read the same way.
 * - A removed run's verification.json is deleted first, alone: if the rest is then interrupted,
 *   what is left is an unverified run (never restored from, removed by the next prune), never a
 *   "verified" run with missing artifacts.
 * - Idempotent: a run half-deleted by an earlier prune is decided and deleted again.
 */
import { DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { listRuns, type RunRecord, type RunStatus } from '../catalog/catalog';
import { runIdToDate } from '../domain/run-id';
import { renderTable } from '../format/table';
import { decide, formatDuration, policyForTier, type Decision, type RetentionDecision, type RetentionPolicy } from './policy';

export type PruneAction = 'keep' | 'remove' | 'skip-locked';

export interface DecisionRow {
  readonly runId: string;
  readonly status: RunStatus;
  readonly action: PruneAction;
  readonly reason: string;
}

export interface PruneOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: string;
  readonly policy: RetentionPolicy;
  readonly now: Date;
  /** Decide and report only. */
  readonly dryRun: boolean;
  /**
   * How long Object Lock retains a run's objects, in seconds: the tier's retention.
   * @default - policy.keepWithinSeconds (policyForTier sets it to the tier's retention)
   */
  readonly lockSeconds?: number;
  /**
   * When the lock on a run's objects ends.
   * @default - retainUntil(run, lockSeconds)
   */
  readonly lockedUntil?: (run: RunRecord) => Date;
}

/** S3 DeleteObjects takes at most this many keys. */
const DELETE_BATCH = 1000;

/**
 * The end of a run's Object Lock: the latest of the manifest's startedAt (or the run id's slot
 * when there is no manifest) and every object's last-modified time, plus the lock period. Objects
 * written after the start (verification.json, offsite.json) are locked from their own write.
 */
export function retainUntil(run: RunRecord, lockSeconds: number): Date {
  const started = run.manifest ? Date.parse(run.manifest.startedAt) : NaN;
  const base = Number.isNaN(started) ? (runIdToDate(run.runId)?.getTime() ?? 0) : started;
  const written = run.objects.map((object) => object.lastModified?.getTime() ?? 0);
  return new Date(Math.max(base, ...written) + lockSeconds * 1000);
}

/** One row per run, newest first, from a policy decision. */
export function decisionRows(decision: RetentionDecision): DecisionRow[] {
  const row = (action: PruneAction) => (d: Decision): DecisionRow => ({ runId: d.runId, status: d.status, action, reason: d.reason });
  return [...decision.keep.map(row('keep')), ...decision.remove.map(row('remove'))].sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
}

export function renderDecisionTable(rows: readonly DecisionRow[]): string {
  return renderTable(['RUN', 'STATUS', 'ACTION', 'REASON'], rows.map((row) => [row.runId, row.status, row.action, row.reason]));
}

export async function pruneSource(opts: PruneOptions): Promise<DecisionRow[]> {
  const { s3, bucket, source, policy, now } = opts;
  const lockSeconds = opts.lockSeconds ?? policy.keepWithinSeconds;
  const lockedUntil = opts.lockedUntil ?? ((run: RunRecord) => retainUntil(run, lockSeconds));
  const runs = await listRuns(s3, bucket, source);
  const byId = new Map(runs.map((run) => [run.runId, run]));
  const rows = decisionRows(decide(runs, policy, now));

  const result: DecisionRow[] = [];
  for (const row of rows) {
    const run = byId.get(row.runId) as RunRecord;
    if (row.action !== 'remove') {
      result.push(row);
      continue;
    }
    const until = lockedUntil(run);
    if (until.getTime() > now.getTime()) {
      result.push({ ...row, action: 'skip-locked', reason: `${row.reason}; locked until ${until.toISOString()} (${formatDuration(Math.ceil((until.getTime() - now.getTime()) / 1000))} left)` });
      continue;
    }
    if (opts.dryRun) {
      result.push(row);
      continue;
    }
    const denied = await deleteRun(s3, bucket, run);
    result.push(denied ? { ...row, action: 'skip-locked', reason: `${row.reason}; S3 denied the delete (${denied}): still locked` } : row);
  }
  return result;
}

/** Deletes a run's objects, verification.json first; returns the denied key, or undefined when all are gone. */
async function deleteRun(s3: S3Client, bucket: string, run: RunRecord): Promise<string | undefined> {
  const keys = run.objects.map((object) => object.key);
  const first = keys.filter((key) => key.endsWith('/verification.json'));
  const rest = keys.filter((key) => !key.endsWith('/verification.json'));
  const batches = [first, ...Array.from({ length: Math.ceil(rest.length / DELETE_BATCH) }, (_, i) => rest.slice(i * DELETE_BATCH, (i + 1) * DELETE_BATCH))];
  for (const batch of batches.filter((b) => b.length > 0)) {
    let errors: { Key?: string; Code?: string; Message?: string }[];
    try {
      const response = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      errors = response.Errors ?? [];
    } catch (error) {
      if ((error as Error).name === 'AccessDenied') return batch[0];
      throw error;
    }
    const denied = errors.find((error) => error.Code === 'AccessDenied');
    if (denied) return denied.Key ?? batch[0];
    if (errors.length > 0) {
      const error = new Error(`deleting ${run.source}/${run.runId}: ${errors.map((e) => `${e.Key}: ${e.Code} ${e.Message ?? ''}`.trim()).join('; ')}`);
      error.name = 'PruneFailed';
      throw error;
    }
  }
  return undefined;
}

/** A source as the Pruner construct passes it to the Lambda (LIFEBOAT_SOURCES_JSON). */
export interface PruneSourceSpec {
  readonly name: string;
  readonly tier: { readonly retentionSeconds: number; readonly scheduleSeconds: number };
}

/** Parses LIFEBOAT_SOURCES_JSON, reporting every problem at once, each with its place. */
export function parsePruneSources(text: string): PruneSourceSpec[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('not JSON (expected e.g. [{"name":"orders","tier":{"retentionSeconds":7776000,"scheduleSeconds":900}}])');
  }
  if (!Array.isArray(json)) throw new Error('expected an array of { name, tier: { retentionSeconds, scheduleSeconds } }');
  const problems: string[] = [];
  json.forEach((item: unknown, index) => {
    const spec = item as Partial<PruneSourceSpec> | null;
    if (typeof spec?.name !== 'string' || spec.name === '') problems.push(`[${index}].name: expected a source name, got ${JSON.stringify(spec?.name)}`);
    for (const field of ['retentionSeconds', 'scheduleSeconds'] as const) {
      const value = spec?.tier?.[field];
      if (typeof value !== 'number' || !(value > 0)) problems.push(`[${index}].tier.${field}: expected positive seconds, got ${JSON.stringify(value)}`);
    }
  });
  if (problems.length > 0) throw new Error(problems.join('; '));
  return json as PruneSourceSpec[];
}

export interface PruneSourcesResult {
  readonly source: string;
  readonly dryRun: boolean;
  readonly kept: number;
  readonly removed: number;
  readonly skippedLocked: number;
  readonly rows: DecisionRow[];
}

/** Prunes each source with its tier's default policy, one after the other. */
export async function pruneSources(opts: { s3: S3Client; bucket: string; sources: readonly PruneSourceSpec[]; now: Date; dryRun: boolean }): Promise<PruneSourcesResult[]> {
  const results: PruneSourcesResult[] = [];
  for (const source of opts.sources) {
    const rows = await pruneSource({
      s3: opts.s3, bucket: opts.bucket, source: source.name, policy: policyForTier(source.tier), now: opts.now, dryRun: opts.dryRun,
      lockSeconds: source.tier.retentionSeconds,
    });
    const count = (action: PruneAction) => rows.filter((row) => row.action === action).length;
    results.push({ source: source.name, dryRun: opts.dryRun, kept: count('keep'), removed: count('remove'), skippedLocked: count('skip-locked'), rows });
  }
  return results;
}
