/**
 * A PITR backup run after the host's `pgbackrest backup` (the PITR run state machine's
 * VerifySet state, lib/constructs/pitr-workflow.ts): find the set the host just made, describe
 * it in a Lifeboat manifest under the source's PITR catalog (`runs/<source>-pitr/<runId>/`),
 * verify it (`pgbackrest verify` and the archive's continuity, verify-set.ts), and answer with
 * the same `$.dump` summary and `$.verification` a logical run's Dump and Verify give, so that
 * Commit, AwaitOffsite and Record are the logical run's own.
 *
 * Idempotent: a retry finds its own manifest (same set) and verifies again; a manifest of
 * another set at the run's key is `AlreadyCommitted`, never overwritten.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { listRuns } from '../catalog/catalog';
import { lifeboatError } from '../domain/errors';
import { manifestKey, pitrCatalogName } from '../domain/layout';
import { MANIFEST_SCHEMA_VERSION, parseManifest, serializeManifest, type Manifest, type ObjectLock } from '../domain/manifest';
import { LIFEBOAT_VERSION } from '../domain/version';
import { VERIFICATION_SCHEMA_VERSION, type Verification, type VerificationCheck } from '../domain/verification';
import { objectLockParams } from '../steps/state';
import { repositoryKey } from './archive-state';
import type { BackupSet, BackupType, PgBackRest } from './pgbackrest';
import { verifySet, type SetVerdict } from './verify-set';

/** The format of a PITR run's one artifact: the set's backup.manifest (pgBackRest's list of its files and their checksums). */
export const PITR_SET_FORMAT = 'pgbackrest-set';

export interface PitrRunInput {
  /** The source's name (its PITR runs are cataloged as `pitrCatalogName(source)`). */
  readonly source: string;
  readonly tier: string;
  readonly runId: string;
  readonly type: BackupType;
  /** When the run asked the host for the backup: the set must have started at or after it. */
  readonly requestedAt: Date;
}

export interface PitrRunDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  /** The repository's path in the bucket, absolute as in pgbackrest.conf (`/pitr/orders`). */
  readonly repoPath: string;
  readonly stanza: string;
  /** pgBackRest on the verifier's side, for the same repository. */
  readonly runner: PgBackRest;
  /** The pgBackRest of Lifeboat's images: a set written by another fails VersionMismatch. @default - not checked */
  readonly expectedVersion?: string;
  /** The Object Lock the run's documents get (the tier's retention from the run's start). */
  readonly objectLock?: { readonly mode: ObjectLock['mode']; readonly retentionSeconds: number };
  /** 'fargate' in the task. */
  readonly verifiedBy: string;
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** The `$.dump` summary of a PITR run: the fields Commit, AwaitOffsite and Record read. */
export interface PitrRunSummary {
  readonly source: string;
  readonly runId: string;
  readonly engine: 'postgres';
  readonly method: 'pitr';
  readonly bucket: string;
  readonly manifestKey: string;
  readonly manifestVersionId?: string;
  readonly artifacts: { readonly key: string; readonly bytes: number; readonly sha256: string; readonly versionId?: string }[];
  /** What the set added to the repository. */
  readonly bytes: number;
  /** The set's own duration on the host. */
  readonly durationSeconds: number;
  readonly set: { readonly label: string; readonly type: BackupType; readonly walStart: string; readonly walStop: string };
}

export interface PitrRunResult {
  readonly dump: PitrRunSummary;
  readonly verification: Verification;
}

/** Runs the step; throws `BackupFailed` when the host made no set, `AlreadyCommitted` when the run key holds another one. */
export async function verifyPitrRun(input: PitrRunInput, deps: PitrRunDeps): Promise<PitrRunResult> {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? (() => undefined);
  const started = now();
  const catalog = pitrCatalogName(input.source);
  const info = await deps.runner.info();
  const set = newestSetSince(info.sets, input.type, input.requestedAt);
  if (!set) {
    const newest = info.sets.at(-1);
    throw lifeboatError('BackupFailed',
      `the host reported its ${input.type} backup done, but the repository s3://${deps.bucket}${deps.repoPath} holds no ${input.type} set started at or after ${input.requestedAt.toISOString()} ` +
      `(newest: ${newest ? `${newest.label}, ${newest.type}, started ${newest.startTime.toISOString()}` : 'none'}); ` +
      'check that the host\'s pgbackrest.conf names this repository (lifeboat pitr setup) and that the command ran on the primary, not a standby');
  }
  log(`${input.source}: the host's ${set.type} backup is set ${set.label} (WAL ${set.walStart} to ${set.walStop})`);

  const artifact = await readSetManifest(deps, set);
  const dependsOn = set.prior ? await runOfSet(deps.s3, deps.bucket, catalog, set.prior) : undefined;
  const manifest = pitrManifest(input, deps, set, artifact, dependsOn, started);
  const written = await writeManifest(deps, manifest);

  const verdict = await verifySet({
    s3: deps.s3, bucket: deps.bucket, repoPath: deps.repoPath, stanza: deps.stanza, runner: deps.runner, set,
    expectedVersion: deps.expectedVersion, signal: deps.signal,
  });
  log(`${input.source}: set ${set.label} ${verdict.verdict}${verdict.findings.length > 0 ? `: ${verdict.findings.map((finding) => finding.name).join(', ')}` : ''}`);
  const verification = verificationOf(manifest, written, artifact, verdict, deps.verifiedBy, started, now());
  return {
    dump: {
      source: catalog,
      runId: input.runId,
      engine: 'postgres',
      method: 'pitr',
      bucket: deps.bucket,
      manifestKey: written.key,
      ...(written.versionId ? { manifestVersionId: written.versionId } : {}),
      artifacts: [{ key: artifact.key, bytes: artifact.bytes, sha256: artifact.sha256, ...(artifact.versionId ? { versionId: artifact.versionId } : {}) }],
      bytes: set.repoDelta,
      durationSeconds: Math.max(0, Math.round((set.stopTime.getTime() - set.startTime.getTime()) / 1000)),
      set: { label: set.label, type: set.type, walStart: set.walStart, walStop: set.walStop },
    },
    verification,
  };
}

/**
 * The newest set of `type` that started at or after `since` (pgBackRest keeps seconds). A
 * differential or incremental with no full to build on is made a full by pgBackRest itself
 * ("no prior backup exists"): that full is the run's set.
 */
export function newestSetSince(sets: readonly BackupSet[], type: BackupType, since: Date): BackupSet | undefined {
  const from = Math.floor(since.getTime() / 1000) * 1000;
  return [...sets].reverse().find((set) => (set.type === type || set.type === 'full') && set.startTime.getTime() >= from);
}

interface StoredObject {
  readonly key: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly versionId?: string;
}

/** The set's backup.manifest, read whole: its SHA-256 pins the list of files the run stands for. */
async function readSetManifest(deps: PitrRunDeps, set: BackupSet): Promise<StoredObject> {
  const key = repositoryKey(deps.repoPath, 'backup', deps.stanza, set.label, 'backup.manifest');
  let object;
  try {
    object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }), { abortSignal: deps.signal });
  } catch (error) {
    throw lifeboatError('BackupFailed', `set ${set.label} has no readable backup.manifest at s3://${deps.bucket}/${key}: ${(error as Error).message}`, error);
  }
  const bytes = Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  return { key, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), ...(object.VersionId ? { versionId: object.VersionId } : {}) };
}

/** The run id of the Lifeboat run that describes set `label`, if Lifeboat recorded it. */
async function runOfSet(s3: S3Client, bucket: string, catalog: string, label: string): Promise<string | undefined> {
  const runs = await listRuns(s3, bucket, catalog, { newestFirst: true });
  return runs.find((run) => run.manifest?.pitr?.label === label)?.runId;
}

function pitrManifest(
  input: PitrRunInput, deps: PitrRunDeps, set: BackupSet, artifact: StoredObject, dependsOn: string | undefined, started: Date,
): Manifest {
  const pgVersion = set.pgVersion ?? '';
  const major = Number.parseInt(pgVersion, 10);
  const writtenBy = set.writtenBy ?? '';
  return {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: pitrCatalogName(input.source),
    engine: 'postgres',
    tier: input.tier,
    runId: input.runId,
    startedAt: set.startTime.toISOString(),
    finishedAt: set.stopTime.toISOString(),
    server: { version: pgVersion || 'unknown', major: Number.isInteger(major) && major > 0 ? major : 1 },
    client: { tool: 'pgbackrest', version: writtenBy || 'unknown', major: Number.parseInt(writtenBy, 10) || 1 },
    databaseSizeBytes: set.size,
    artifacts: [{
      database: '*', key: artifact.key, bytes: artifact.bytes, sha256: artifact.sha256, format: PITR_SET_FORMAT, compression: 'none', parts: 1,
      ...(artifact.versionId ? { versionId: artifact.versionId } : {}),
    }],
    tables: [],
    ...(dependsOn ? { dependsOn: [dependsOn] } : {}),
    rowCountConsistency: 'same-snapshot',
    extensions: [],
    ...(deps.objectLock ? { objectLock: { mode: deps.objectLock.mode, retainUntil: new Date(started.getTime() + deps.objectLock.retentionSeconds * 1000).toISOString() } } : {}),
    pitr: {
      repository: deps.repoPath.replace(/^\//, ''),
      stanza: deps.stanza,
      label: set.label,
      type: set.type,
      ...(set.prior ? { prior: set.prior } : {}),
      ...(set.references ? { references: [...set.references] } : {}),
      startLsn: set.startLsn,
      stopLsn: set.stopLsn,
      startTime: set.startTime.toISOString(),
      stopTime: set.stopTime.toISOString(),
      walStart: set.walStart,
      walStop: set.walStop,
      deltaBytes: set.delta,
      repoBytes: set.repoSize,
      repoDeltaBytes: set.repoDelta,
    },
  };
}

/** Writes manifest.json once (`If-None-Match: *`); a retry finds its own (same set) and goes on. */
async function writeManifest(deps: PitrRunDeps, manifest: Manifest): Promise<{ key: string; versionId?: string; sha256: string }> {
  const key = manifestKey(manifest.source, manifest.runId);
  const text = serializeManifest(manifest);
  try {
    const put = await deps.s3.send(new PutObjectCommand({
      Bucket: deps.bucket, Key: key, Body: text, ContentType: 'application/json', IfNoneMatch: '*', ...objectLockParams(manifest),
    }), { abortSignal: deps.signal });
    return { key, sha256: sha256(text), ...(put.VersionId ? { versionId: put.VersionId } : {}) };
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if ((error as Error).name !== 'PreconditionFailed' && status !== 412) throw error;
  }
  const existing = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }), { abortSignal: deps.signal });
  const existingText = await (existing.Body as { transformToString(): Promise<string> }).transformToString();
  const label = (() => {
    try {
      return parseManifest(existingText, key).pitr?.label;
    } catch {
      return undefined;
    }
  })();
  if (label !== manifest.pitr?.label) {
    throw lifeboatError('AlreadyCommitted', `s3://${deps.bucket}/${key} already describes ${label ? `set ${label}` : 'something else'}, not set ${manifest.pitr?.label}; a run's manifest is never overwritten`);
  }
  return { key, sha256: sha256(existingText), ...(existing.VersionId ? { versionId: existing.VersionId } : {}) };
}

function verificationOf(
  manifest: Manifest, written: { key: string; versionId?: string; sha256: string }, artifact: StoredObject, verdict: SetVerdict,
  verifiedBy: string, started: Date, finished: Date,
): Verification {
  const named = (name: string) => verdict.findings.filter((finding) => finding.name === name);
  const checks: VerificationCheck[] = [
    { name: 'sha256', ok: true, detail: `backup.manifest read whole: ${artifact.bytes} bytes, sha256 ${artifact.sha256}` },
    {
      name: 'pgbackrest-verify',
      ok: named('ArchiveCorrupt').length === 0,
      detail: named('ArchiveCorrupt')[0]?.message ?? 'pgbackrest verify read every file of every set and every archived WAL segment: all match their checksums and sizes',
    },
    {
      name: 'wal-continuity',
      ok: named('WalGap').length === 0,
      detail: named('WalGap')[0]?.message ?? `all ${verdict.wal.expected} WAL segments from ${verdict.wal.from} to ${verdict.wal.to} are in the archive`,
    },
    {
      name: 'pgbackrest-version',
      ok: named('VersionMismatch').length === 0,
      detail: named('VersionMismatch')[0]?.message ?? `written by pgBackRest ${manifest.client.version}`,
    },
  ];
  const [first, ...others] = verdict.findings;
  return {
    schemaVersion: VERIFICATION_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: manifest.source,
    runId: manifest.runId,
    verdict: verdict.verdict,
    verifiedAt: finished.toISOString(),
    durationMs: Math.max(0, finished.getTime() - started.getTime()),
    verifiedBy,
    manifest: { key: written.key, ...(written.versionId ? { versionId: written.versionId } : {}), sha256: written.sha256 },
    artifacts: [{ key: artifact.key, ...(artifact.versionId ? { versionId: artifact.versionId } : {}), bytes: artifact.bytes, sha256: artifact.sha256, checks }],
    ...(first ? {
      error: {
        name: first.name,
        message: `${manifest.source}/${manifest.runId} (set ${verdict.set}): ${first.message}${others.length > 0 ? ` (also: ${others.map((finding) => `${finding.name}: ${finding.message}`).join('; ')})` : ''}`,
      },
    } : {}),
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
