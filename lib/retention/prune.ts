/**
 * Applies a retention policy to one source's runs in a bucket: the primary, or the offsite copy
 * (each bucket is its own catalog). The policy (policy.ts) decides which runs may go; the objects
 * decide whether they can go yet. This module lists, reads each version's Object Lock, deletes
 * exact versions and reports.
 *
 * Contract:
 * - Dry-run deletes nothing and returns the rows a real prune would act on, locks read the same way.
 * - A run is deleted only when none of its versions is under Object Lock: its retain-until date,
 *   read from the version (GetObjectRetention), is not after `now`, and it has no legal hold
 *   (GetObjectLegalHold). Otherwise the run is kept whole and reported `skip-locked`, "kept:
 *   locked until <the latest retain-until of its versions> (<time> left)" or "kept: … under
 *   legal hold"; that is never a failure of the prune and never counted as removed. A delete S3
 *   still refuses (its clock against ours, a lock set meanwhile) is reported the same way.
 *   A version's legal hold is read only once no retention holds the run.
 * - Deletes name exact versions (DeleteObjects with VersionId): every version and delete marker
 *   of every key under the run's prefix, so a removed run leaves nothing behind. Never a delete
 *   without a version id (on a versioned bucket it only lays a delete marker, hiding the run
 *   from the catalog while its locked versions stay and bill), never BypassGovernanceRetention.
 * - A removed run's verification.json versions are deleted first, alone: if the rest is then
 *   interrupted or refused, what is left is an unverified run (never restored from, removed by a
 *   later prune), never a "verified" run with missing artifacts.
 * - A run the catalog no longer lists but whose versions remain (nothing current: only delete
 *   markers and noncurrent versions, as a delete without version id or a lifecycle expiration
 *   leaves them) is decided as an unverified run and removed the same way, locks permitting.
 * - Idempotent: a run half-deleted by an earlier prune is decided and deleted again.
 */
import {
  DeleteObjectsCommand,
  GetObjectLegalHoldCommand,
  GetObjectRetentionCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { listRuns, type RunStatus } from '../catalog/catalog';
import { sourcePrefix, verificationKey } from '../domain/layout';
import { isRunId } from '../domain/run-id';
import { renderTable } from '../format/table';
import { decide, policyForTier, type Decision, type RetentionDecision, type RetentionPolicy, type RunRef } from './policy';
import { mapLimit } from '../util/map-limit';

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
  /** The pruner's clock: a version is locked while its retain-until date is after this. */
  readonly now: Date;
  /** Decide and report only. */
  readonly dryRun: boolean;
}

/** One stored version (or delete marker) of a key under a run's prefix. */
export interface RunVersion {
  readonly key: string;
  readonly versionId: string;
  readonly deleteMarker: boolean;
  readonly isLatest: boolean;
}

/** S3 DeleteObjects takes at most this many keys. */
const DELETE_BATCH = 1000;
/** Runs whose locks are read (or that are deleted) at once. */
const RUN_CONCURRENCY = 4;
/** Versions of one run whose lock is read at once. */
const VERSION_CONCURRENCY = 8;

const DAY = 86_400;

/** A remaining time in words for reasons, its two largest units truncated (the date beside it is exact): 40d 3h, 5h 12m, 12m 5s, 42s. */
export function formatRemaining(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const [days, hours, minutes, secs] = [Math.floor(s / DAY), Math.floor((s % DAY) / 3600), Math.floor((s % 3600) / 60), s % 60];
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h ${minutes}m` : `${hours}h`;
  if (minutes > 0) return secs > 0 ? `${minutes}m ${secs}s` : `${minutes}m`;
  return `${secs}s`;
}

/** One row per run, newest first, from a policy decision. */
export function decisionRows(decision: RetentionDecision): DecisionRow[] {
  const row = (action: PruneAction) => (d: Decision): DecisionRow => ({ runId: d.runId, status: d.status, action, reason: d.reason });
  return [...decision.keep.map(row('keep')), ...decision.remove.map(row('remove'))].sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
}

export function renderDecisionTable(rows: readonly DecisionRow[]): string {
  return renderTable(['RUN', 'STATUS', 'ACTION', 'REASON'], rows.map((row) => [row.runId, row.status, row.action, row.reason]));
}

const HIDDEN = 'only noncurrent versions and delete markers are left (the catalog no longer lists it)';

export async function pruneSource(opts: PruneOptions): Promise<DecisionRow[]> {
  const { s3, bucket, source, policy, now } = opts;
  const runs = await listRuns(s3, bucket, source);
  // After the catalog: a run written in between has current versions and is left for the next prune.
  const versions = await listRunVersions(s3, bucket, source);
  const listed = new Set(runs.map((run) => run.runId));
  const hidden = [...versions].filter(([runId, runVersions]) => !listed.has(runId) && !runVersions.some((v) => v.isLatest && !v.deleteMarker)).map(([runId]) => runId);
  const refs: RunRef[] = [...runs.map(({ runId, status, manifest }) => ({ runId, status, ...(manifest?.dependsOn ? { dependsOn: manifest.dependsOn } : {}) })), ...hidden.map((runId) => ({ runId, status: 'unverified' as const }))];
  const hiddenIds = new Set(hidden);
  const rows = decisionRows(decide(refs, policy, now)).map((row) => (hiddenIds.has(row.runId) ? { ...row, reason: `${row.reason}; ${HIDDEN}` } : row));

  // Locks first, for every run the policy removes: a locked run stays, and so must every run it
  // depends on, which the policy may have meant to remove with it.
  const locks = new LockReader(s3, bucket, now);
  const held = new Map<string, string>();
  await mapLimit(rows.filter((row) => row.action === 'remove'), RUN_CONCURRENCY, async (row) => {
    const hold = await locks.holdOf(versions.get(row.runId) ?? []);
    if (hold) held.set(row.runId, hold);
  });
  const neededByLocked = dependenciesOf([...held.keys()], refs);
  return mapLimit(rows, RUN_CONCURRENCY, async (row): Promise<DecisionRow> => {
    if (row.action !== 'remove') return row;
    const hold = held.get(row.runId);
    if (hold) return { ...row, action: 'skip-locked', reason: `${row.reason}; kept: ${hold}` };
    const dependents = neededByLocked.get(row.runId);
    if (dependents) return { ...row, action: 'keep', reason: `${row.reason}; kept: needed by locked run ${dependents.join(', ')}` };
    const runVersions = versions.get(row.runId) ?? [];
    if (opts.dryRun) return row;
    const refused = await deleteRunVersions(s3, bucket, source, row.runId, runVersions);
    return refused ? { ...row, action: 'skip-locked', reason: `${row.reason}; kept: ${refused}` } : row;
  });
}

/** Every run the `from` runs depend on, transitively, with the `from` runs that need it. */
function dependenciesOf(from: readonly string[], refs: readonly RunRef[]): Map<string, string[]> {
  const dependsOn = new Map(refs.map((ref) => [ref.runId, ref.dependsOn ?? []]));
  const needed = new Map<string, string[]>();
  for (const start of from) {
    const pending = [...(dependsOn.get(start) ?? [])];
    while (pending.length > 0) {
      const runId = pending.pop() as string;
      const by = needed.get(runId) ?? [];
      if (by.includes(start)) continue;
      needed.set(runId, [...by, start]);
      pending.push(...(dependsOn.get(runId) ?? []));
    }
  }
  return needed;
}

/** Every version and delete marker under `runs/<source>/`, grouped by run id (keys that are not under a run id are ignored). */
export async function listRunVersions(s3: S3Client, bucket: string, source: string): Promise<Map<string, RunVersion[]>> {
  const prefix = sourcePrefix(source);
  const runs = new Map<string, RunVersion[]>();
  const add = (key: string | undefined, versionId: string | undefined, deleteMarker: boolean, isLatest: boolean | undefined) => {
    if (!key) return;
    const runId = key.slice(prefix.length).split('/')[0];
    if (!isRunId(runId) || key.length === prefix.length + runId.length) return;
    let list = runs.get(runId);
    if (!list) runs.set(runId, (list = []));
    list.push({ key, versionId: versionId ?? 'null', deleteMarker, isLatest: isLatest ?? false });
  };
  // SDK 3.1175 has no paginator for ListObjectVersions: page by the key and version id markers.
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker }));
    for (const version of page.Versions ?? []) add(version.Key, version.VersionId, false, version.IsLatest);
    for (const marker of page.DeleteMarkers ?? []) add(marker.Key, marker.VersionId, true, marker.IsLatest);
    if (!page.IsTruncated) break;
    if (!page.NextKeyMarker) throw pruneFailed(`listing the versions under s3://${bucket}/${prefix}: a truncated page without NextKeyMarker`);
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
  return runs;
}

/** Reads the Object Lock of versions, as S3 stores it on each; remembers a bucket without Object Lock. */
class LockReader {
  private noObjectLock = false;

  constructor(private readonly s3: S3Client, private readonly bucket: string, private readonly now: Date) {}

  /** Why the run cannot be deleted yet ("locked until …", "… under legal hold"), or undefined when nothing holds it. */
  async holdOf(versions: readonly RunVersion[]): Promise<string | undefined> {
    // Delete markers carry no lock (S3 answers 405 for their ids).
    const objects = versions.filter((version) => !version.deleteMarker);
    const until = (await mapLimit(objects, VERSION_CONCURRENCY, (version) => this.retainUntil(version)))
      .filter((date): date is Date => date !== undefined && date.getTime() > this.now.getTime());
    if (until.length > 0) {
      const latest = new Date(Math.max(...until.map((date) => date.getTime())));
      return `locked until ${latest.toISOString()} (${formatRemaining((latest.getTime() - this.now.getTime()) / 1000)} left)`;
    }
    const held = (await mapLimit(objects, VERSION_CONCURRENCY, async (version) => ((await this.legalHold(version)) ? version : undefined)))
      .filter((version): version is RunVersion => version !== undefined);
    if (held.length > 0) return `${[...new Set(held.map((version) => version.key.split('/').pop()))].join(', ')} under legal hold`;
    return undefined;
  }

  private async retainUntil(version: RunVersion): Promise<Date | undefined> {
    if (this.noObjectLock) return undefined;
    try {
      const answer = await this.s3.send(new GetObjectRetentionCommand({ Bucket: this.bucket, Key: version.key, VersionId: version.versionId }));
      const date = answer.Retention?.RetainUntilDate;
      return date === undefined ? undefined : new Date(date);
    } catch (error) {
      return this.absent(error, version, 'retention');
    }
  }

  private async legalHold(version: RunVersion): Promise<boolean> {
    if (this.noObjectLock) return false;
    try {
      const answer = await this.s3.send(new GetObjectLegalHoldCommand({ Bucket: this.bucket, Key: version.key, VersionId: version.versionId }));
      return answer.LegalHold?.Status === 'ON';
    } catch (error) {
      return this.absent(error, version, 'legal hold') ?? false;
    }
  }

  /** The answers that mean "no lock on this version"; anything else fails the prune, which then deletes nothing more. */
  private absent(error: unknown, version: RunVersion, what: string): undefined {
    const { name, message } = error as Error;
    // The version has none, or is gone meanwhile.
    if (name === 'NoSuchObjectLockConfiguration' || name === 'NoSuchVersion' || name === 'NoSuchKey') return undefined;
    // S3's answer for a bucket without Object Lock: no version of it can be locked.
    if (name === 'InvalidRequest' && /object lock configuration/i.test(message)) {
      this.noObjectLock = true;
      return undefined;
    }
    throw pruneFailed(`reading the ${what} of s3://${this.bucket}/${version.key} (version ${version.versionId}): ${name}: ${message}`, error);
  }
}

/**
 * Deletes exactly these versions, verification.json's first and alone. Returns why S3 refused
 * one (the rest of the run is then left as it is), or undefined when every one is gone.
 */
async function deleteRunVersions(s3: S3Client, bucket: string, source: string, runId: string, versions: readonly RunVersion[]): Promise<string | undefined> {
  const verdict = verificationKey(source, runId);
  const first = versions.filter((version) => version.key === verdict);
  const rest = versions.filter((version) => version.key !== verdict);
  const batches = [first, ...Array.from({ length: Math.ceil(rest.length / DELETE_BATCH) }, (_, i) => rest.slice(i * DELETE_BATCH, (i + 1) * DELETE_BATCH))];
  for (const batch of batches.filter((b) => b.length > 0)) {
    const objects = batch.map((version) => ({ Key: version.key, VersionId: version.versionId }));
    let errors: { Key?: string; VersionId?: string; Code?: string; Message?: string }[];
    try {
      errors = (await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }))).Errors ?? [];
    } catch (error) {
      if ((error as Error).name !== 'AccessDenied') throw error;
      errors = [{ Key: batch[0].key, VersionId: batch[0].versionId, Code: 'AccessDenied', Message: (error as Error).message }];
    }
    const denied = errors.find((error) => error.Code === 'AccessDenied');
    if (denied) {
      const verdictGone = batch !== first && first.length > 0
        ? '; its verification.json is gone: an unverified run now, removed by a later prune'
        : batch === first && errors.length < batch.length ? '; some versions of its verification.json are gone' : '';
      return `S3 refused deleting ${denied.Key} (version ${denied.VersionId}): AccessDenied${denied.Message ? ` ${denied.Message}` : ''}${verdictGone}`;
    }
    if (errors.length > 0) {
      throw pruneFailed(`deleting ${source}/${runId}: ${errors.map((e) => `${e.Key} (version ${e.VersionId}): ${e.Code} ${e.Message ?? ''}`.trim()).join('; ')}`);
    }
  }
  return undefined;
}

function pruneFailed(message: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  error.name = 'PruneFailed';
  return error;
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
    });
    const count = (action: PruneAction) => rows.filter((row) => row.action === action).length;
    results.push({ source: source.name, dryRun: opts.dryRun, kept: count('keep'), removed: count('remove'), skippedLocked: count('skip-locked'), rows });
  }
  return results;
}
