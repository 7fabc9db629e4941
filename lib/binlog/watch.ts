/**
 * The binary-log archive of a MySQL/MariaDB point-in-time source as the bucket shows it — what
 * the watchdog publishes and `lifeboat status` shows, read from S3 alone (never the server):
 * - the newest archiver run's state (`binlog/<source>/state/<runId>.json`: the newest key is the
 *   newest run id), whose `completeAsOf` (else `newestEventAt`) is the newest point the archive
 *   is known to hold: the RPO achieved;
 * - the listing of the index (`binlog/<source>/index/<file>.json`, one per completed file; keys
 *   only, no entry is read): which completed files the archive holds, so a hole in the sequence
 *   is a gap whatever run saw it or did not;
 * - the bases: the source's verified logical runs whose manifests carry binlog coordinates (the
 *   newest, and the oldest among the first few of the catalog).
 *
 * A base restores up to the archive's newest point when every file from its coordinates' file to
 * the archive's newest file (the newest run's partial, else its newest completed file) is in the
 * archive. The window runs from the oldest such base (its run's finish: every database's snapshot
 * is before it) to the newest point; a gap is a file missing at or after the newest base's
 * coordinates (or anywhere, without a base), or the newest run's recorded `gap` past that base.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { latestVerifiedRun, listRuns, type RunRecord } from '../catalog/catalog';
import { binlogIndexPrefix } from '../domain/layout';
import type { Manifest } from '../domain/manifest';
import { listKeys, newestBinlogStateKey, readText } from './archive-read';
import { BINLOG_FILE_NAME, binlogSequence, binlogSibling, parseBinlogState, type BinlogState } from './documents';

/** How many of the oldest runs of the catalog are examined for the oldest base (each is a few reads). */
export const OLDEST_BASE_LOOKAHEAD = 8;
/** At most this many missing files are named (a gap of thousands is one line, not thousands). */
const MAX_NAMED_MISSING = 10;

/** Where a replay onto a base starts: its earliest coordinates, and the time from which it restores. */
export interface BinlogBase {
  readonly runId: string;
  readonly file: string;
  readonly position: number;
  /** The run's finish: every database's snapshot (and coordinates) is before it. */
  readonly from: Date;
}

/** What the archive holds, as read from the bucket (the input of `binlogCoverage`). */
export interface BinlogArchiveListing {
  /** The newest archiver run's state, or undefined before the first run. */
  readonly state?: BinlogState;
  readonly stateKey?: string;
  /** The completed files of the index, by name. */
  readonly archivedFiles: readonly string[];
  /** The newest verified base, and the oldest found (the same run when there is one). */
  readonly newestBase?: BinlogBase;
  readonly oldestBase?: BinlogBase;
}

export interface BinlogCoverage {
  /** The newest point the archive is known to hold: the newest state's completeAsOf, else its newestEventAt. */
  readonly newestPoint?: Date;
  /** Seconds from `newestPoint` to `now`. */
  readonly ageSeconds?: number;
  /** The newest completed file, and the newest file of the archive (the partial, when there is one). */
  readonly newestFile?: string;
  readonly endFile?: string;
  /** 1 when a gap breaks the archive after the newest base (or anywhere without one), else 0. */
  readonly gaps: 0 | 1;
  /** The missing files of that gap, oldest first (at most 10), and how many there are. */
  readonly missing: readonly string[];
  readonly missingCount: number;
  /** The oldest base a replay reaches `newestPoint` from, and the window from it; 0 without one. */
  readonly restorableFrom?: Date;
  readonly restorableTo?: Date;
  readonly restorableWindowSeconds: number;
  readonly windowBase?: BinlogBase;
  /** The newest state's own outcome (`BinlogGap` when its run found the server had purged unarchived files). */
  readonly outcome?: BinlogState['outcome'];
}

/** A verified logical run as a base: its earliest binlog coordinates (by file, then position); undefined without any. */
export function baseOf(run: Pick<RunRecord, 'runId' | 'status' | 'manifest'>): BinlogBase | undefined {
  if (run.status !== 'verified' || !run.manifest) return undefined;
  const coordinates = (run.manifest as Manifest).artifacts.flatMap((artifact) => (artifact.binlog ? [artifact.binlog] : []));
  if (coordinates.length === 0) return undefined;
  const earliest = coordinates.reduce((a, b) => {
    const order = binlogSequence(a.file) - binlogSequence(b.file) || a.position - b.position;
    return order <= 0 ? a : b;
  });
  return { runId: run.runId, file: earliest.file, position: earliest.position, from: new Date(run.manifest.finishedAt) };
}

/** The files of the sequence from `first` to `last` (both included) that `held` lacks. */
function missingBetween(first: string, last: string, held: ReadonlySet<string>): string[] {
  const missing: string[] = [];
  const count = binlogSequence(last) - binlogSequence(first);
  for (let offset = 0; offset <= count; offset++) {
    const file = binlogSibling(first, offset);
    if (!held.has(file)) missing.push(file);
  }
  return missing;
}

/**
 * The age, the gap and the window of an archive (pure: `readBinlogListing` reads its input).
 * Files are compared by sequence number within the newest file's base name.
 */
export function binlogCoverage(listing: BinlogArchiveListing, now: Date): BinlogCoverage {
  const { state } = listing;
  const newestPointText = state?.completeAsOf ?? state?.newestEventAt;
  const newestPoint = newestPointText ? new Date(newestPointText) : undefined;
  const ageSeconds = newestPoint ? Math.max(0, Math.round((now.getTime() - newestPoint.getTime()) / 1000)) : undefined;
  const completed = [...listing.archivedFiles].sort((a, b) => binlogSequence(a) - binlogSequence(b));
  const newestFile = state?.archivedThrough ?? completed.at(-1);
  const endFile = state?.partial?.file ?? newestFile;
  const held = new Set<string>(completed);
  if (state?.partial) held.add(state.partial.file);

  const sameSeries = (file: string) => endFile !== undefined && file.replace(/\d+$/, '') === endFile.replace(/\d+$/, '');
  // What must be there for a replay from `file` to reach the archive's end.
  const missingFrom = (file: string): string[] | undefined =>
    endFile === undefined || !sameSeries(file) || binlogSequence(file) > binlogSequence(endFile) ? undefined : missingBetween(file, endFile, held);

  // The gap: judged from the newest base, or from the oldest archived file when there is none.
  const gapStart = listing.newestBase?.file ?? completed[0] ?? endFile;
  const holes = gapStart === undefined ? [] : (missingFrom(gapStart) ?? []);
  const recorded = (state?.gap?.missing ?? []).filter((file) =>
    listing.newestBase === undefined || !sameSeries(file) || binlogSequence(file) >= binlogSequence(listing.newestBase.file));
  const missing = [...new Set([...holes, ...recorded])].sort((a, b) => binlogSequence(a) - binlogSequence(b));

  // The window: the oldest base whose files all reach the end, else the newest base's.
  const reaches = (base: BinlogBase | undefined) => {
    if (!base || !newestPoint || base.from.getTime() > newestPoint.getTime()) return false;
    const lacking = missingFrom(base.file);
    return lacking !== undefined && lacking.length === 0 && !(state?.gap?.missing ?? []).some((file) => sameSeries(file) && binlogSequence(file) >= binlogSequence(base.file));
  };
  const windowBase = [listing.oldestBase, listing.newestBase].find(reaches);
  return {
    ...(newestPoint ? { newestPoint, ageSeconds } : {}),
    ...(newestFile ? { newestFile } : {}),
    ...(endFile ? { endFile } : {}),
    gaps: missing.length > 0 ? 1 : 0,
    missing: missing.slice(0, MAX_NAMED_MISSING),
    missingCount: missing.length,
    restorableWindowSeconds: windowBase && newestPoint ? Math.max(0, Math.round((newestPoint.getTime() - windowBase.from.getTime()) / 1000)) : 0,
    ...(windowBase && newestPoint ? { restorableFrom: windowBase.from, restorableTo: newestPoint, windowBase } : {}),
    ...(state ? { outcome: state.outcome } : {}),
  };
}

export interface ReadBinlogListingInput {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: string;
  /** The newest verified logical run, when the caller has it already (the watchdog does). */
  readonly latestVerified?: RunRecord | null;
  readonly signal?: AbortSignal;
}

/**
 * What `binlogCoverage` needs, from the bucket: the listing of the states and of the index (two
 * prefixes), the newest state (one read) and the bases (the catalog of the source's logical runs).
 */
export async function readBinlogListing(input: ReadBinlogListingInput): Promise<BinlogArchiveListing> {
  const { s3, bucket, source, signal } = input;
  const location = { s3, bucket, source, signal };
  const [stateKey, indexKeys, newestRun, oldestRuns] = await Promise.all([
    newestBinlogStateKey(location),
    listKeys(location, binlogIndexPrefix(source)),
    input.latestVerified !== undefined ? Promise.resolve(input.latestVerified ?? undefined) : latestVerifiedRun(s3, bucket, source),
    listRuns(s3, bucket, source, { limit: OLDEST_BASE_LOOKAHEAD }),
  ]);
  let state: BinlogState | undefined;
  if (stateKey) state = parseBinlogState(await readText(location, stateKey), stateKey);
  const indexPrefix = binlogIndexPrefix(source);
  const archivedFiles = indexKeys
    .map((key) => key.slice(indexPrefix.length).replace(/\.json$/, ''))
    .filter((file) => BINLOG_FILE_NAME.test(file));
  const newestBase = newestRun ? baseOf(newestRun) : undefined;
  const oldestBase = oldestRuns.map(baseOf).find((base) => base !== undefined) ?? newestBase;
  return {
    ...(state ? { state, stateKey } : {}),
    archivedFiles,
    ...(newestBase ? { newestBase } : {}),
    ...(oldestBase ? { oldestBase } : {}),
  };
}
