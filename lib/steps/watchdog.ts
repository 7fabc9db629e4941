/**
 * The RPO watchdog: how old each source's newest verified backup (and newest verified backup
 * confirmed offsite) is, measured from the run's slot (its run id), and the metrics the RPO
 * alarms watch. For a source with method 'pitr', the same question of its WAL archive: how old
 * the newest archived segment is, whether the WAL the kept sets need has a hole, and how far
 * back a restore can reach up to the newest point — read from the bucket alone (the repository
 * under `pitr/<source>/`: the archive's listing and `backup.info`), never from the host.
 *
 * Metrics (namespace from the Metrics instance, `Lifeboat` in the stack), per source with the
 * `source` dimension only (no `service`), so an alarm can name them exactly:
 * - `SecondsSinceVerifiedBackup` (Seconds), logical backups
 * - `SecondsSinceOffsiteBackup` (Seconds), logical backups
 * - `ArchiveAgeSeconds` (Seconds), PITR: since the newest WAL segment reached the archive
 * - `ArchiveGaps` (Count), PITR: holes in the WAL the kept sets need
 * - `RestorableWindowSeconds` (Seconds), PITR: from the oldest set a restore can replay from
 *   without crossing a hole to the newest archived point; 0 when no set reaches it
 * - `BinlogArchiveAgeSeconds` (Seconds), MySQL/MariaDB PITR: since the newest point the binary-log
 *   archive is known to hold (the newest archiver run's completeAsOf, else its newest event)
 * - `BinlogGaps` (Count), MySQL/MariaDB PITR: 1 when a binary log the newest base needs is missing
 * - `BinlogRestorableWindowSeconds` (Seconds), MySQL/MariaDB PITR: from the oldest base a replay
 *   reaches the newest point from; 0 when a gap breaks it or there is no base (lib/binlog/watch.ts)
 * - `NeverBackedUp` = 1 (Count), for a source none of whose methods has anything to restore
 *   (no verified run; no backup set)
 * and once per invocation, without a dimension, `WatchdogHeartbeat` = 1 (Count).
 *
 * A never-backed-up source publishes no age at all: its age alarm treats missing data as
 * breaching, so it is in ALARM from deployment until the first verified backup (and stays
 * there if every run fails) — which is what the team needs to hear. The same holds for a PITR
 * source's archive before its first backup set: WAL without a set restores nothing.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import { latestVerifiedRun, type RunRecord } from '../catalog/catalog';
import type { SourceMethod } from '../config/types';
import { runIdToDate } from '../domain/run-id';
import { binlogCoverage, readBinlogListing } from '../binlog/watch';
import { archiveCoverage, listArchivedSegments } from '../pitr/archive-state';
import { readBackupSets } from '../pitr/backup-info';
import { pitrPrefix } from '../pitr/setup';
import { configError } from './env';

export interface WatchedSource {
  readonly name: string;
  readonly rpoSeconds: number;
  /**
   * How the source is protected: each method has its own measure.
   * @default ['logical']
   */
  readonly methods?: readonly SourceMethod[];
  /** The pgBackRest stanza of a PostgreSQL source with method 'pitr' (its repository is `pitr/<name>/`). */
  readonly stanza?: string;
  /** A MySQL/MariaDB source with method 'pitr': its archive is binary logs under `binlog/<name>/` (no stanza). */
  readonly binlog?: boolean;
}

const METHODS: readonly SourceMethod[] = ['logical', 'pitr'];

/** `fresh`: verified within the RPO; `stale`: older than the RPO; `never`: no verified run at all. */
export type AgeState = 'fresh' | 'stale' | 'never';

/** The WAL archive of a PITR source, as the bucket shows it. */
export interface ArchiveAge {
  readonly stanza: string;
  /**
   * `fresh`: the newest segment arrived within the RPO; `stale`: earlier; `never`: no backup set
   * (the WAL alone restores nothing) or no segment at all.
   */
  readonly state: AgeState;
  /** Seconds from the newest segment's arrival in the archive to `now`; absent without a segment. */
  readonly ageSeconds?: number;
  readonly newestSegment?: string;
  /** Backup sets in backup.info: the kept ones (the pruner expires the others). */
  readonly sets: number;
  /** Holes in the WAL the sets need, once settled (see `gapSettleSeconds`). */
  readonly gaps: number;
  readonly missingSegments: number;
  readonly firstMissingSegment?: string;
  /** How far back from the newest archived point a restore reaches without crossing a hole; 0 when none does. */
  readonly restorableWindowSeconds: number;
  readonly restorableFrom?: Date;
  readonly restorableTo?: Date;
}

/** The binary-log archive of a MySQL/MariaDB PITR source, as the bucket shows it (lib/binlog/watch.ts). */
export interface BinlogAge {
  /** `fresh`: the newest point within the RPO; `stale`: older; `never`: no archiver run has recorded a state. */
  readonly state: AgeState;
  readonly ageSeconds?: number;
  readonly newestFile?: string;
  readonly gaps: 0 | 1;
  /** The missing files (at most 10 named) and their count. */
  readonly missing: readonly string[];
  readonly missingCount: number;
  readonly restorableWindowSeconds: number;
  readonly restorableFrom?: Date;
  readonly restorableTo?: Date;
  /** The base the window starts from (a verified logical run). */
  readonly baseRunId?: string;
}

export interface SourceAge {
  readonly source: string;
  readonly rpoSeconds: number;
  readonly methods: readonly SourceMethod[];
  /** The worse of its methods' states: `never`, then `stale`, then `fresh`. */
  readonly state: AgeState;
  /** Seconds from the newest verified run's slot to `now`; absent when `never` or without method 'logical'. */
  readonly secondsSinceVerified?: number;
  /**
   * Seconds from the slot of the newest verified run confirmed offsite to `now`. When none of
   * the last `offsiteLookback` verified runs is confirmed, the age of the oldest of them: a lower
   * bound, still enough to alarm on (and `lastOffsiteRunId` is absent). Absent when `never`.
   */
  readonly secondsSinceOffsite?: number;
  readonly lastVerifiedRunId?: string;
  readonly lastOffsiteRunId?: string;
  /** Present for a PostgreSQL source with method 'pitr'. */
  readonly archive?: ArchiveAge;
  /** Present for a MySQL/MariaDB source with method 'pitr'. */
  readonly binlog?: BinlogAge;
}

export interface MeasureAgesInput {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly sources: readonly WatchedSource[];
  readonly now: Date;
  /**
   * Verified runs examined, newest first, for an offsite confirmation.
   * @default 8
   */
  readonly offsiteLookback?: number;
  /**
   * How long after the segment that follows a hole arrived the hole counts as a gap: pgBackRest's
   * asynchronous archive-push sends several segments at once, so a later one may land first.
   * @default 300 (one watchdog interval)
   */
  readonly gapSettleSeconds?: number;
}

export const DEFAULT_OFFSITE_LOOKBACK = 8;
export const DEFAULT_GAP_SETTLE_SECONDS = 300;

/**
 * Each source's ages, in the order given. Every source is measured even when one cannot be
 * read; then `WatchdogReadFailed` is thrown naming each failure (no metric is published, so
 * the alarms see missing data, which breaches).
 */
export async function measureAges(input: MeasureAgesInput): Promise<SourceAge[]> {
  const settled = await Promise.allSettled(input.sources.map((source) => measureSource(input, source)));
  const failures = settled.flatMap((result, index) =>
    result.status === 'rejected' ? [`${input.sources[index].name}: ${(result.reason as Error).message}`] : []);
  if (failures.length > 0) {
    const error = new Error(`cannot read the catalog of s3://${input.bucket}: ${failures.join('; ')}`);
    error.name = 'WatchdogReadFailed';
    throw error;
  }
  return settled.map((result) => (result as PromiseFulfilledResult<SourceAge>).value);
}

async function measureSource(input: MeasureAgesInput, source: WatchedSource): Promise<SourceAge> {
  const methods = source.methods ?? ['logical'];
  const pitr = methods.includes('pitr');
  const [logical, archive] = await Promise.all([
    methods.includes('logical') ? measureLogical(input, source) : undefined,
    pitr && !source.binlog ? measureArchive(input, source) : undefined,
  ]);
  // The binary-log archive's bases are the logical runs: the newest verified one is read once.
  const binlog = pitr && source.binlog ? await measureBinlog(input, source, logical?.latest) : undefined;
  const states = [logical?.state, archive?.state, binlog?.state].filter((state): state is AgeState => state !== undefined);
  const { latest: _latest, ...logicalAge } = logical ?? {};
  return {
    source: source.name,
    rpoSeconds: source.rpoSeconds,
    methods,
    ...logicalAge,
    state: worst(states),
    ...(archive ? { archive } : {}),
    ...(binlog ? { binlog } : {}),
  };
}

/** The binary-log archive of a MySQL/MariaDB PITR source, from the bucket alone (lib/binlog/watch.ts). */
async function measureBinlog(input: MeasureAgesInput, source: WatchedSource, latest: RunRecord | null | undefined): Promise<BinlogAge> {
  const listing = await readBinlogListing({ s3: input.s3, bucket: input.bucket, source: source.name, ...(latest !== undefined ? { latestVerified: latest } : {}) });
  const coverage = binlogCoverage(listing, input.now);
  const ageSeconds = coverage.ageSeconds;
  return {
    // The age is the archive's own: a source without a base yet shows it in its window (0), and its dumps' alarm covers the dumps.
    state: ageSeconds === undefined ? 'never' : ageSeconds > source.rpoSeconds ? 'stale' : 'fresh',
    ...(ageSeconds !== undefined ? { ageSeconds } : {}),
    ...(coverage.newestFile ? { newestFile: coverage.newestFile } : {}),
    gaps: coverage.gaps,
    missing: coverage.missing,
    missingCount: coverage.missingCount,
    restorableWindowSeconds: coverage.restorableWindowSeconds,
    ...(coverage.restorableFrom ? { restorableFrom: coverage.restorableFrom, restorableTo: coverage.restorableTo } : {}),
    ...(coverage.windowBase ? { baseRunId: coverage.windowBase.runId } : {}),
  };
}

const STATE_RANK: Readonly<Record<AgeState, number>> = { fresh: 0, stale: 1, never: 2 };

function worst(states: readonly AgeState[]): AgeState {
  return states.reduce((a, b) => (STATE_RANK[b] > STATE_RANK[a] ? b : a), 'fresh');
}

type LogicalAge = Pick<SourceAge, 'state' | 'secondsSinceVerified' | 'secondsSinceOffsite' | 'lastVerifiedRunId' | 'lastOffsiteRunId'> & {
  /** The newest verified run (null: none), for the binary-log archive's bases. */
  readonly latest: RunRecord | null;
};

async function measureLogical(input: MeasureAgesInput, source: WatchedSource): Promise<LogicalAge> {
  const { s3, bucket, now } = input;
  const ageOf = (run: RunRecord) => Math.max(0, Math.round((now.getTime() - slotOf(run).getTime()) / 1000));
  const latest = await latestVerifiedRun(s3, bucket, source.name, { at: now });
  if (!latest) return { state: 'never', latest: null };

  const secondsSinceVerified = ageOf(latest);
  let examined = latest;
  let offsite: RunRecord | undefined = latest.offsite ? latest : undefined;
  for (let checked = 1; !offsite && checked < (input.offsiteLookback ?? DEFAULT_OFFSITE_LOOKBACK); checked++) {
    const older = await latestVerifiedRun(s3, bucket, source.name, { at: new Date(slotOf(examined).getTime() - 1000) });
    if (!older) break;
    examined = older;
    if (older.offsite) offsite = older;
  }
  return {
    state: secondsSinceVerified > source.rpoSeconds ? 'stale' : 'fresh',
    secondsSinceVerified,
    secondsSinceOffsite: ageOf(offsite ?? examined),
    lastVerifiedRunId: latest.runId,
    ...(offsite ? { lastOffsiteRunId: offsite.runId } : {}),
    latest,
  };
}

/**
 * The archive of a PITR source from the bucket: its listing and backup.info, as `lifeboat
 * status` reads them (lib/pitr/pitr-status.ts); nothing from the host.
 */
async function measureArchive(input: MeasureAgesInput, source: WatchedSource): Promise<ArchiveAge> {
  const { s3, bucket, now } = input;
  const stanza = source.stanza as string;
  const location = { s3, bucket, repoPath: `/${pitrPrefix(source.name)}`, stanza };
  const segments = await listArchivedSegments(location);
  // No segment, no set (a backup waits for its WAL to be archived), and maybe no stanza yet: a
  // GetObject of a missing backup.info would be AccessDenied in S3 (the role may not list there).
  const sets = segments.length === 0 ? [] : await readBackupSets(location);
  const settledBefore = new Date(now.getTime() - (input.gapSettleSeconds ?? DEFAULT_GAP_SETTLE_SECONDS) * 1000);
  const { holes, window } = archiveCoverage(sets, segments, { settledBefore });
  const newest = segments.length === 0 ? undefined : segments.reduce((a, b) => (b.archivedAt > a.archivedAt ? b : a));
  const ageSeconds = newest ? Math.max(0, Math.round((now.getTime() - newest.archivedAt.getTime()) / 1000)) : undefined;
  return {
    stanza,
    state: ageSeconds === undefined || sets.length === 0 ? 'never' : ageSeconds > source.rpoSeconds ? 'stale' : 'fresh',
    ...(newest ? { ageSeconds, newestSegment: newest.name } : {}),
    sets: sets.length,
    gaps: holes.length,
    missingSegments: holes.reduce((sum, hole) => sum + hole.missingCount, 0),
    ...(holes.length > 0 ? { firstMissingSegment: holes[0].first } : {}),
    restorableWindowSeconds: window ? Math.max(0, Math.round((window.latest.getTime() - window.earliest.getTime()) / 1000)) : 0,
    ...(window ? { restorableFrom: window.earliest, restorableTo: window.latest } : {}),
  };
}

function slotOf(run: RunRecord): Date {
  // The catalog only returns runs whose id is a run id.
  return runIdToDate(run.runId) as Date;
}

/** The part of Powertools' Metrics the watchdog uses: it flushes one EMF document per source. */
export interface WatchdogMetrics {
  clearDefaultDimensions(): unknown;
  addDimension(name: string, value: string): unknown;
  addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): unknown;
  addMetadata(key: string, value: string): unknown;
  publishStoredMetrics(): unknown;
}

/**
 * Publishes the ages: one flush per source (dimension `source` only: the default `service`
 * dimension is cleared, or the alarms would not match), then the heartbeat.
 */
export function publishAges(ages: readonly SourceAge[], metrics: WatchdogMetrics): void {
  metrics.clearDefaultDimensions();
  for (const age of ages) {
    metrics.addDimension('source', age.source);
    metrics.addMetadata('state', age.state);
    if (age.lastVerifiedRunId) metrics.addMetadata('lastVerifiedRunId', age.lastVerifiedRunId);
    if (age.lastOffsiteRunId) metrics.addMetadata('lastOffsiteRunId', age.lastOffsiteRunId);
    if (neverBackedUp(age)) metrics.addMetric('NeverBackedUp', MetricUnit.Count, 1);
    if (age.secondsSinceVerified !== undefined) {
      metrics.addMetric('SecondsSinceVerifiedBackup', MetricUnit.Seconds, age.secondsSinceVerified);
      metrics.addMetric('SecondsSinceOffsiteBackup', MetricUnit.Seconds, age.secondsSinceOffsite as number);
    }
    const archive = age.archive;
    if (archive) {
      metrics.addMetadata('archiveState', archive.state);
      if (archive.newestSegment) metrics.addMetadata('archiveNewestSegment', archive.newestSegment);
      if (archive.firstMissingSegment) metrics.addMetadata('archiveFirstMissingSegment', archive.firstMissingSegment);
      if (archive.restorableFrom) metrics.addMetadata('restorableFrom', archive.restorableFrom.toISOString());
      if (archive.restorableTo) metrics.addMetadata('restorableTo', archive.restorableTo.toISOString());
      // No age without a set: WAL alone restores nothing, and the missing age breaches the alarm.
      if (archive.state !== 'never') metrics.addMetric('ArchiveAgeSeconds', MetricUnit.Seconds, archive.ageSeconds as number);
      metrics.addMetric('ArchiveGaps', MetricUnit.Count, archive.gaps);
      metrics.addMetric('RestorableWindowSeconds', MetricUnit.Seconds, archive.restorableWindowSeconds);
    }
    const binlog = age.binlog;
    if (binlog) {
      metrics.addMetadata('binlogState', binlog.state);
      if (binlog.newestFile) metrics.addMetadata('binlogNewestFile', binlog.newestFile);
      if (binlog.missing.length > 0) metrics.addMetadata('binlogMissingFiles', binlog.missing.join(','));
      if (binlog.restorableFrom) metrics.addMetadata('binlogRestorableFrom', binlog.restorableFrom.toISOString());
      if (binlog.restorableTo) metrics.addMetadata('binlogRestorableTo', binlog.restorableTo.toISOString());
      // No age before the first archiver run: the missing age breaches the alarm.
      if (binlog.ageSeconds !== undefined) metrics.addMetric('BinlogArchiveAgeSeconds', MetricUnit.Seconds, binlog.ageSeconds);
      metrics.addMetric('BinlogGaps', MetricUnit.Count, binlog.gaps);
      metrics.addMetric('BinlogRestorableWindowSeconds', MetricUnit.Seconds, binlog.restorableWindowSeconds);
    }
    metrics.publishStoredMetrics();
  }
  metrics.addMetric('WatchdogHeartbeat', MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
}

/** None of the source's methods has anything to restore: no verified run, no backup set. */
function neverBackedUp(age: SourceAge): boolean {
  const logicalNever = !age.methods.includes('logical') || age.secondsSinceVerified === undefined;
  const archiveNever = age.archive === undefined || age.archive.state === 'never';
  // Binary logs alone restore nothing: a source whose window has no base has nothing to restore.
  const binlogNever = age.binlog === undefined || age.binlog.baseRunId === undefined;
  return logicalNever && archiveNever && binlogNever;
}

/**
 * `LIFEBOAT_SOURCES_JSON`: `[{ "name": "orders", "rpoSeconds": 900 }]`, a PITR source with its
 * methods and stanza (`"methods": ["pitr"], "stanza": "orders"`); throws a message naming every problem.
 */
export function parseWatchedSources(text: string, variable = 'LIFEBOAT_SOURCES_JSON'): WatchedSource[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw configError(`environment variable ${variable}: not JSON (expected e.g. [{"name": "orders", "rpoSeconds": 900}])`);
  }
  if (!Array.isArray(json) || json.length === 0) {
    throw configError(`environment variable ${variable}: expected a non-empty array of {"name", "rpoSeconds"}, e.g. [{"name": "orders", "rpoSeconds": 900}]`);
  }
  const problems: string[] = [];
  json.forEach((entry: unknown, index) => {
    const item = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof item.name !== 'string' || item.name.trim() === '') problems.push(`[${index}].name: expected a source name, got ${JSON.stringify(item.name)}`);
    if (typeof item.rpoSeconds !== 'number' || !(item.rpoSeconds > 0)) {
      problems.push(`[${index}].rpoSeconds: expected a positive number of seconds, got ${JSON.stringify(item.rpoSeconds)}`);
    }
    const methods = item.methods;
    if (methods !== undefined && (!Array.isArray(methods) || methods.length === 0 || methods.some((method) => !METHODS.includes(method as SourceMethod)))) {
      problems.push(`[${index}].methods: expected a non-empty array of ${METHODS.map((method) => `"${method}"`).join(', ')}, got ${JSON.stringify(methods)}`);
    } else if (item.binlog !== undefined && item.binlog !== true) {
      problems.push(`[${index}].binlog: expected true (a MySQL/MariaDB source whose binary logs are archived) or no binlog, got ${JSON.stringify(item.binlog)}`);
    } else if (item.binlog === true && !(Array.isArray(methods) && methods.includes('pitr'))) {
      problems.push(`[${index}].binlog: given, but methods do not include "pitr" (got ${JSON.stringify(methods)})`);
    } else if (Array.isArray(methods) && methods.includes('pitr') && item.binlog !== true && (typeof item.stanza !== 'string' || item.stanza.trim() === '')) {
      problems.push(`[${index}].stanza: a source with method "pitr" needs its pgBackRest stanza, got ${JSON.stringify(item.stanza)}`);
    }
  });
  if (problems.length > 0) throw configError(`environment variable ${variable}: ${problems.join('; ')}`);
  return (json as WatchedSource[]).map(({ name, rpoSeconds, methods, stanza, binlog }) => ({
    name, rpoSeconds, ...(methods ? { methods } : {}),
    ...(binlog === true ? { binlog } : methods?.includes('pitr') ? { stanza } : {}),
  }));
}
