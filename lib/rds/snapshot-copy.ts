/**
 * The offsite copy of an Aurora / Multi-AZ DB cluster's point-in-time recovery. DB clusters have
 * no automated-backup replication, so Lifeboat copies the newest automated cluster snapshot to
 * the offsite region (and account) with the offsite key, and keeps the copies for the tier's
 * retention.
 *
 * RDS facts this follows (RDS API reference, CopyDBClusterSnapshot, ModifyDBClusterSnapshotAttribute):
 * - an automated snapshot cannot be shared: it is first copied (a manual snapshot), and the copy
 *   is shared;
 * - a cross-region copy is made in the destination region, its source named by ARN, with a KMS key
 *   of the destination region (KmsKeyId) and a presigned URL the SDK makes from the ARN's region;
 * - a shared snapshot can only be copied within its own region, and copying a shared encrypted
 *   one needs KmsKeyId: so the primary account copies into the offsite region (encrypted with the
 *   offsite account's key, whose policy lets it), shares that staging copy, and the offsite
 *   account copies it into its own account with its key.
 *
 * Contract: both steps reconcile and are idempotent and stateless. Each run advances each source
 * by at most one step (copy, share, delete) from what RDS says now: a retried or overlapping run
 * finds the copy already there (or `DBClusterSnapshotAlreadyExistsFault`) and does nothing more.
 * Retention never deletes the newest available copy of a source.
 */
import {
  CopyDBClusterSnapshotCommand,
  DBClusterSnapshotAlreadyExistsFault,
  DBClusterSnapshotNotFoundFault,
  DeleteDBClusterSnapshotCommand,
  DescribeDBClusterSnapshotAttributesCommand,
  ModifyDBClusterSnapshotAttributeCommand,
  paginateDescribeDBClusterSnapshots,
  type DBClusterSnapshot,
  type DescribeDBClusterSnapshotsCommandInput,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { configError } from '../steps/env';

/** Tags every copy carries: the source it is of, and the automated snapshot it was copied from. */
export const SOURCE_TAG = 'lifeboat:source';
export const COPY_OF_TAG = 'lifeboat:copy-of';
/** The metric both accounts publish per source (and the instance check, for replicated backups). */
export const OFFSITE_AGE_METRIC = 'NativeOffsiteAgeSeconds';
/**
 * Cross-account: how long the primary account keeps its staging copy in the offsite region. The
 * offsite account copies it within the hour; three days ride out an offsite copier that is down
 * over a weekend without keeping a second set of copies for the tier's retention.
 */
export const STAGING_SECONDS = 3 * 86_400;

/** What the copier is told of a cluster source. */
export interface ClusterCopySource {
  /** The source's name (the copies' names and the metric's `source` dimension). */
  readonly name: string;
  /** The DBClusterIdentifier. */
  readonly identifier: string;
  /** The cluster's region. */
  readonly region: string;
  /** The tier's retention: how long offsite copies are kept. */
  readonly retentionSeconds: number;
}

/** `lifeboat-<source>-<yyyymmddhhmm>`, the UTC minute of the automated snapshot it copies. */
export function copyName(source: string, snapshotTime: Date): string {
  const stamp = snapshotTime.toISOString().replace(/[-:T]/g, '').slice(0, 12);
  return `lifeboat-${source}-${stamp}`;
}

/** The source snapshot time a copy's name says, or undefined if it is no copy of that source. */
export function copyTime(source: string, identifier: string): Date | undefined {
  // A shared snapshot is named by its ARN.
  const name = identifier.includes(':cluster-snapshot:') ? identifier.slice(identifier.lastIndexOf(':') + 1) : identifier;
  const match = new RegExp(`^lifeboat-${escape(source)}-(\\d{4})(\\d{2})(\\d{2})(\\d{2})(\\d{2})$`).exec(name);
  if (!match) return undefined;
  const [, y, mo, d, h, mi] = match;
  const time = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi)));
  return Number.isNaN(time.getTime()) ? undefined : time;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A cluster snapshot identifier (and so a copy's name) may not hold "--" (RDS refuses it). */
export function copyNameProblem(source: string): string | undefined {
  return /--|^-|-$/.test(source) ? `source "${source}": its snapshot copies' names (lifeboat-${source}-…) would hold "--", which RDS refuses in an identifier` : undefined;
}

export type CopyAction =
  /** No available automated snapshot of the cluster yet. */
  | 'no-snapshot'
  /** A copy of the newest automated snapshot was requested in this run. */
  | 'copy-started'
  /** The copy of the newest automated snapshot is still being made. */
  | 'copying'
  /** The newest automated snapshot has an available copy. */
  | 'up-to-date';

export interface SourceCopyReport {
  readonly source: string;
  readonly action: CopyAction;
  /** The newest automated snapshot (or, offsite, the newest shared staging copy) considered. */
  readonly newest?: { readonly identifier: string; readonly time: string };
  /** The copy this run requested, if any. */
  readonly copied?: string;
  /** Copies shared with the offsite account in this run. */
  readonly shared: readonly string[];
  /** Copies deleted in this run, each with why. */
  readonly deleted: readonly { readonly identifier: string; readonly why: string }[];
  /** The newest available copy in the offsite region (this account's). */
  readonly newestCopy?: { readonly identifier: string; readonly time: string };
  /** Its age: now minus the time of the automated snapshot it copies. Undefined with no copy (the alarm's missing data). */
  readonly offsiteAgeSeconds?: number;
  /** What failed for this source (the run fails after every source was tried). */
  readonly error?: { readonly name: string; readonly message: string };
}

export interface PrimaryCopyDeps {
  /** An RDS client of a region (the source's, or the offsite region), built with createRdsClient. */
  readonly rds: (region: string) => RDSClient;
  readonly offsite: {
    readonly region: string;
    /** The offsite account, when it is not the primary one: then copies are staged and shared. */
    readonly account?: string;
    /** The offsite key (in the offsite region) that encrypts every copy. */
    readonly keyArn: string;
  };
  /** The account this runs in. */
  readonly primaryAccount: string;
  readonly now: Date;
}

/** A snapshot with the fields Lifeboat relies on. */
interface Snapshot {
  readonly identifier: string;
  readonly arn: string;
  readonly status: string;
  readonly time: Date;
}

/**
 * The primary account's step, for each cluster source: copy its newest automated snapshot to the
 * offsite region; cross-account, share the available staging copies with the offsite account and
 * delete those older than STAGING_SECONDS; single-account, delete the copies older than the
 * tier's retention. Never the newest available copy.
 */
export async function advancePrimaryCopies(deps: PrimaryCopyDeps, sources: readonly ClusterCopySource[]): Promise<SourceCopyReport[]> {
  const crossAccount = deps.offsite.account !== undefined && deps.offsite.account !== deps.primaryAccount;
  const offsiteRds = deps.rds(deps.offsite.region);
  // One listing of the offsite region's manual snapshots for every source.
  const offsiteSnapshots = await listSnapshots(offsiteRds, { SnapshotType: 'manual' });
  const reports: SourceCopyReport[] = [];
  for (const source of sources) {
    try {
      reports.push(await advancePrimarySource(deps, source, offsiteRds, offsiteSnapshots, crossAccount));
    } catch (error) {
      reports.push({ source: source.name, action: 'no-snapshot', shared: [], deleted: [], error: describeError(error) });
    }
  }
  return reports;
}

async function advancePrimarySource(
  deps: PrimaryCopyDeps,
  source: ClusterCopySource,
  offsiteRds: RDSClient,
  offsiteSnapshots: readonly DBClusterSnapshot[],
  crossAccount: boolean,
): Promise<SourceCopyReport> {
  const automated = (await listSnapshots(deps.rds(source.region), { DBClusterIdentifier: source.identifier, SnapshotType: 'automated' }))
    .map(asSnapshot).filter((snapshot): snapshot is Snapshot => snapshot !== undefined && snapshot.status === 'available');
  const newest = automated.sort(byTime).at(-1);
  const copies = copiesOf(source.name, offsiteSnapshots);
  const deleted: { identifier: string; why: string }[] = [];
  const shared: string[] = [];

  let action: CopyAction = 'no-snapshot';
  let copied: string | undefined;
  if (newest) {
    const name = copyName(source.name, newest.time);
    const existing = copies.find((copy) => copy.identifier === name);
    if (existing?.status === 'available') action = 'up-to-date';
    else if (existing && existing.status !== 'failed') action = 'copying';
    else {
      if (existing) {
        // A failed copy holds the name: remove it, the copy is made again.
        await deleteSnapshot(offsiteRds, existing.identifier);
        deleted.push({ identifier: existing.identifier, why: 'the copy failed; copied again' });
      }
      action = await copySnapshot(offsiteRds, {
        SourceDBClusterSnapshotIdentifier: newest.arn,
        TargetDBClusterSnapshotIdentifier: name,
        KmsKeyId: deps.offsite.keyArn,
        // No SourceRegion: the JS SDK v3 presigns (PreSignedUrl) from the source ARN's region
        // whenever it is not the client's (@aws-sdk/middleware-sdk-rds).
        CopyTags: true,
        Tags: [{ Key: SOURCE_TAG, Value: source.name }, { Key: COPY_OF_TAG, Value: newest.identifier }],
      });
      if (action === 'copy-started') copied = name;
    }
  }

  const available = copies.filter((copy) => copy.status === 'available').sort(byTime);
  const newestCopy = available.at(-1);
  const keepUntil = deps.now.getTime() - (crossAccount ? STAGING_SECONDS : source.retentionSeconds) * 1000;
  for (const copy of available) {
    if (copy === newestCopy) continue;
    if (copy.time.getTime() < keepUntil) {
      await deleteSnapshot(offsiteRds, copy.identifier);
      deleted.push({
        identifier: copy.identifier,
        why: crossAccount
          ? `staging copy older than ${STAGING_SECONDS / 86_400} days (the offsite account keeps its own copy)`
          : `older than the tier's retention (${days(source.retentionSeconds)})`,
      });
    }
  }
  if (crossAccount) {
    const account = deps.offsite.account as string;
    for (const copy of available) {
      if (deleted.some((gone) => gone.identifier === copy.identifier)) continue;
      if (await shareWith(offsiteRds, copy.identifier, account)) shared.push(copy.identifier);
    }
  }
  return {
    source: source.name, action, shared, deleted,
    ...(newest ? { newest: { identifier: newest.identifier, time: newest.time.toISOString() } } : {}),
    ...(copied ? { copied } : {}),
    ...ageOf(newestCopy, deps.now),
  };
}

export interface OffsiteCopyDeps {
  /** The RDS client of this (the offsite) region. */
  readonly rds: RDSClient;
  /** The account the staging copies are shared from. */
  readonly primaryAccount: string;
  /** This account's key, in this region: it encrypts this account's copies. */
  readonly keyArn: string;
  readonly now: Date;
}

/** What the offsite copier is told of a source. */
export interface OffsiteCopySource {
  readonly name: string;
  readonly retentionSeconds: number;
}

/**
 * The offsite account's step, for each source: copy, into this account with this account's key,
 * each available staging copy the primary account shares that is not copied yet (and is within
 * the retention), and delete this account's copies older than the retention, never the newest.
 */
export async function advanceOffsiteCopies(deps: OffsiteCopyDeps, sources: readonly OffsiteCopySource[]): Promise<SourceCopyReport[]> {
  const shared = (await listSnapshots(deps.rds, { SnapshotType: 'shared', IncludeShared: true }))
    .filter((snapshot) => accountOf(snapshot.DBClusterSnapshotArn ?? snapshot.DBClusterSnapshotIdentifier) === deps.primaryAccount);
  const own = await listSnapshots(deps.rds, { SnapshotType: 'manual' });
  const reports: SourceCopyReport[] = [];
  for (const source of sources) {
    try {
      reports.push(await advanceOffsiteSource(deps, source, shared, own));
    } catch (error) {
      reports.push({ source: source.name, action: 'no-snapshot', shared: [], deleted: [], error: describeError(error) });
    }
  }
  return reports;
}

async function advanceOffsiteSource(
  deps: OffsiteCopyDeps,
  source: OffsiteCopySource,
  sharedSnapshots: readonly DBClusterSnapshot[],
  ownSnapshots: readonly DBClusterSnapshot[],
): Promise<SourceCopyReport> {
  const staged = copiesOf(source.name, sharedSnapshots).filter((snapshot) => snapshot.status === 'available').sort(byTime);
  const copies = copiesOf(source.name, ownSnapshots);
  const oldestKept = deps.now.getTime() - source.retentionSeconds * 1000;
  const deleted: { identifier: string; why: string }[] = [];
  const copiedNow: string[] = [];

  for (const snapshot of staged) {
    const name = nameOf(snapshot.identifier);
    if (snapshot.time.getTime() < oldestKept) continue;
    const existing = copies.find((copy) => copy.identifier === name);
    if (existing && existing.status !== 'failed') continue;
    if (existing) {
      await deleteSnapshot(deps.rds, existing.identifier);
      deleted.push({ identifier: existing.identifier, why: 'the copy failed; copied again' });
    }
    const result = await copySnapshot(deps.rds, {
      SourceDBClusterSnapshotIdentifier: snapshot.arn,
      TargetDBClusterSnapshotIdentifier: name,
      KmsKeyId: deps.keyArn,
      Tags: [{ Key: SOURCE_TAG, Value: source.name }, { Key: COPY_OF_TAG, Value: snapshot.arn }],
    });
    if (result === 'copy-started') copiedNow.push(name);
  }

  const newestStaged = staged.at(-1);
  const newestName = newestStaged ? nameOf(newestStaged.identifier) : undefined;
  const newestExisting = copies.find((copy) => copy.identifier === newestName);
  const action: CopyAction = !newestStaged ? 'no-snapshot'
    : copiedNow.includes(newestName as string) ? 'copy-started'
      : newestExisting?.status === 'available' ? 'up-to-date' : 'copying';

  const available = copies.filter((copy) => copy.status === 'available').sort(byTime);
  const newestCopy = available.at(-1);
  for (const copy of available) {
    if (copy === newestCopy || copy.time.getTime() >= oldestKept) continue;
    await deleteSnapshot(deps.rds, copy.identifier);
    deleted.push({ identifier: copy.identifier, why: `older than the tier's retention (${days(source.retentionSeconds)})` });
  }
  return {
    source: source.name, action, shared: [], deleted,
    ...(newestStaged ? { newest: { identifier: newestStaged.arn, time: newestStaged.time.toISOString() } } : {}),
    ...(copiedNow.length > 0 ? { copied: copiedNow.join(', ') } : {}),
    ...ageOf(newestCopy, deps.now),
  };
}

/** A metrics sink shaped like Powertools' Metrics (what the handlers pass). */
export interface CopyMetrics {
  clearDefaultDimensions(): unknown;
  addDimension(name: string, value: string): unknown;
  addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): unknown;
  addMetadata(key: string, value: string): unknown;
  publishStoredMetrics(): unknown;
}

/**
 * `NativeOffsiteAgeSeconds` per source (dimension `source` only), when it has an available copy:
 * none otherwise, which the alarm treats as breaching.
 */
export function publishOffsiteAges(reports: readonly SourceCopyReport[], metrics: CopyMetrics): void {
  metrics.clearDefaultDimensions();
  for (const report of reports) {
    if (report.offsiteAgeSeconds === undefined) continue;
    metrics.addDimension('source', report.source);
    if (report.newestCopy) metrics.addMetadata('newestCopy', report.newestCopy.identifier);
    metrics.addMetric(OFFSITE_AGE_METRIC, MetricUnit.Seconds, report.offsiteAgeSeconds);
    metrics.publishStoredMetrics();
  }
}

/** The run fails, after every source was tried and the metrics published, when one source failed. */
export function failureOf(reports: readonly SourceCopyReport[]): Error | undefined {
  const failed = reports.filter((report) => report.error);
  if (failed.length === 0) return undefined;
  const error = new Error(`snapshot copy failed for ${failed.map((report) => `${report.source} (${report.error?.name}: ${report.error?.message})`).join('; ')}`);
  error.name = 'SnapshotCopyFailed';
  return error;
}

async function listSnapshots(rds: RDSClient, input: DescribeDBClusterSnapshotsCommandInput): Promise<DBClusterSnapshot[]> {
  const snapshots: DBClusterSnapshot[] = [];
  for await (const page of paginateDescribeDBClusterSnapshots({ client: rds }, input)) snapshots.push(...(page.DBClusterSnapshots ?? []));
  return snapshots;
}

function asSnapshot(snapshot: DBClusterSnapshot): Snapshot | undefined {
  if (!snapshot.DBClusterSnapshotIdentifier || !snapshot.SnapshotCreateTime) return undefined;
  return {
    identifier: snapshot.DBClusterSnapshotIdentifier,
    arn: snapshot.DBClusterSnapshotArn ?? snapshot.DBClusterSnapshotIdentifier,
    status: snapshot.Status ?? 'unknown',
    time: new Date(snapshot.SnapshotCreateTime),
  };
}

/** The copies of a source among snapshots, each with the time its name says (that of the automated snapshot it copies). */
function copiesOf(source: string, snapshots: readonly DBClusterSnapshot[]): Snapshot[] {
  return snapshots.flatMap((snapshot) => {
    const identifier = snapshot.DBClusterSnapshotIdentifier;
    const time = identifier ? copyTime(source, identifier) : undefined;
    if (!identifier || !time) return [];
    return [{ identifier, arn: snapshot.DBClusterSnapshotArn ?? identifier, status: snapshot.Status ?? 'unknown', time }];
  });
}

const byTime = (a: Snapshot, b: Snapshot) => a.time.getTime() - b.time.getTime();
const nameOf = (identifier: string) => identifier.slice(identifier.lastIndexOf(':') + 1);
const accountOf = (arn: string | undefined) => (arn?.startsWith('arn:') ? arn.split(':')[4] : undefined);
const days = (seconds: number) => `${Math.round((seconds / 86_400) * 100) / 100} days`;

function ageOf(copy: Snapshot | undefined, now: Date): Pick<SourceCopyReport, 'newestCopy' | 'offsiteAgeSeconds'> {
  if (!copy) return {};
  return {
    newestCopy: { identifier: copy.identifier, time: copy.time.toISOString() },
    offsiteAgeSeconds: Math.max(0, Math.round((now.getTime() - copy.time.getTime()) / 1000)),
  };
}

async function copySnapshot(rds: RDSClient, input: ConstructorParameters<typeof CopyDBClusterSnapshotCommand>[0]): Promise<'copy-started' | 'copying'> {
  try {
    await rds.send(new CopyDBClusterSnapshotCommand(input));
    return 'copy-started';
  } catch (error) {
    // An overlapping run started it: the same copy, by name.
    if (error instanceof DBClusterSnapshotAlreadyExistsFault) return 'copying';
    throw error;
  }
}

async function deleteSnapshot(rds: RDSClient, identifier: string): Promise<void> {
  try {
    await rds.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: identifier }));
  } catch (error) {
    if (error instanceof DBClusterSnapshotNotFoundFault) return;
    throw error;
  }
}

/** Adds `account` to the copy's restore attribute unless it is there; true when it was added. */
async function shareWith(rds: RDSClient, identifier: string, account: string): Promise<boolean> {
  const attributes = await rds.send(new DescribeDBClusterSnapshotAttributesCommand({ DBClusterSnapshotIdentifier: identifier }));
  const restore = attributes.DBClusterSnapshotAttributesResult?.DBClusterSnapshotAttributes?.find((attribute) => attribute.AttributeName === 'restore');
  if (restore?.AttributeValues?.includes(account)) return false;
  await rds.send(new ModifyDBClusterSnapshotAttributeCommand({ DBClusterSnapshotIdentifier: identifier, AttributeName: 'restore', ValuesToAdd: [account] }));
  return true;
}

function describeError(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
}

const sourcesSchema = z.array(z.object({
  name: z.string().min(1),
  identifier: z.string().min(1),
  region: z.string().min(1),
  retentionSeconds: z.number().positive(),
})).min(1);
const offsiteSourcesSchema = z.array(z.object({ name: z.string().min(1), retentionSeconds: z.number().positive() })).min(1);

/** `LIFEBOAT_SOURCES_JSON` of the primary copier: `[{"name", "identifier", "region", "retentionSeconds"}]`. */
export function parseClusterCopySources(text: string, variable = 'LIFEBOAT_SOURCES_JSON'): ClusterCopySource[] {
  return parseJsonEnv(text, variable, sourcesSchema);
}

/** `LIFEBOAT_SOURCES_JSON` of the offsite copier: `[{"name", "retentionSeconds"}]`. */
export function parseOffsiteCopySources(text: string, variable = 'LIFEBOAT_SOURCES_JSON'): OffsiteCopySource[] {
  return parseJsonEnv(text, variable, offsiteSourcesSchema);
}

function parseJsonEnv<T>(text: string, variable: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw configError(`environment variable ${variable}: not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw configError(`environment variable ${variable}: ${parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`).join('; ')}`);
  }
  return parsed.data;
}
