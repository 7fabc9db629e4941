import type { BinlogCoordinates } from '../lib/binlog/coordinates';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lifeboatError, redact } from '../lib/domain/errors';
import { artifactKey, globalsKey, manifestKey } from '../lib/domain/layout';
import {
  MANIFEST_SCHEMA_VERSION,
  serializeManifest,
  type Manifest,
  type ManifestArtifact,
  type ManifestTable,
} from '../lib/domain/manifest';
import { describeTls, type TlsOptions } from '../lib/domain/tls';
import { LIFEBOAT_VERSION } from '../lib/domain/version';
import {
  engineFor as defaultEngine,
  type ClientOptions,
  type DumpEngine,
  type ArtifactInfo,
  type DumpTarget,
  type RowCountConsistency,
} from './engines';
import { deferred } from './engines/common';
import type { BackupJob } from './job';
import { streamToS3, type UploadResult } from './upload';

export interface RunBackupDeps {
  /** Built with lib/aws/s3-client's createS3Client. */
  readonly s3: S3Client;
  /** @default - the registered dump engines (worker/engines/index.ts) */
  readonly engines?: Readonly<Record<string, DumpEngine>>;
  readonly clientOptions?: ClientOptions;
  /** @default - the clock */
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
  /** Aborts the run (SIGTERM, or Step Functions gave up on the task). */
  readonly signal?: AbortSignal;
}

/** Live progress for heartbeats and the CLI. */
export interface BackupProgress {
  phase: 'preflight' | 'dump' | 'commit' | 'manifest' | 'done';
  database?: string;
  bytesUploaded: number;
  /** Set once manifest.json is written to a versioned bucket: the version the verifier reads. */
  manifestVersionId?: string;
}

/**
 * One backup run of one source, under the commit protocol of DESIGN.md:
 *  1. a slot whose manifest exists is already committed: refuse before touching anything;
 *  2. preflight (versions, sizes, extensions, privileges) — a client older than the server, or a
 *     user who cannot read something the dump reads, fails here, before a byte is uploaded;
 *  3. each database streams through SHA-256 into a multipart upload, one database after the
 *     other, while pg_dumpall's globals are dumped beside them; the uploads are completed
 *     together, only once every dump client exited 0 (otherwise all are aborted: nothing
 *     remains at the run's keys);
 *  4. the manifest is written last, with a conditional write; until it exists the run's
 *     objects do not look like a backup, and until verification.json says ok it does not
 *     count as one.
 * Errors carry the names the state machine matches (DumpFailed, UploadFailed, …).
 */
export async function runBackup(job: BackupJob, deps: RunBackupDeps, progress?: BackupProgress): Promise<Manifest> {
  const tls = caFileFor(job.target.tls);
  try {
    return await backupWith({ ...job.target, tls: tls.options, databases: [...job.target.databases] }, job, deps, progress);
  } finally {
    tls.remove();
  }
}

/**
 * The clients read a CA bundle from a file: a bundle that came as PEM text (a secret) is written
 * to a private temp dir (TMPDIR: the dump task mounts a writable volume there for it) for the
 * run, and removed after it.
 */
function caFileFor(tls: BackupJob['target']['tls']): { options: TlsOptions; remove: () => void } {
  if (tls.caPem === undefined) return { options: { mode: tls.mode, ...(tls.caFile !== undefined ? { caFile: tls.caFile } : {}) }, remove: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-tls-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, `${tls.caPem}\n`, { mode: 0o600 });
  return { options: { mode: tls.mode, caFile }, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function backupWith(target: DumpTarget, job: BackupJob, deps: RunBackupDeps, progress?: BackupProgress): Promise<Manifest> {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? ((line: string) => console.log(line));
  const secrets = [job.target.password];
  const state: BackupProgress = progress ?? { phase: 'preflight', bytesUploaded: 0 };
  const startedAt = now();
  const engine = engineFor(job.engine, deps.engines);

  await refuseCommittedSlot(deps.s3, job);
  throwIfAborted(deps.signal);

  state.phase = 'preflight';
  const preflight = await engine.preflight(target, deps.clientOptions, { source: job.source, excludeTables: job.excludeTables });
  log(
    `preflight: ${preflight.engine} ${preflight.server.version}, ${preflight.client.tool} ${preflight.client.version}, ` +
      `${preflight.databases.length} database(s), ${preflight.databaseSizeBytes} bytes, ${describeTls(target.tls ?? { mode: 'prefer' })}: ` +
      (preflight.tlsSession ? `${preflight.tlsSession.protocol} ${preflight.tlsSession.cipher}` : 'plain text'),
  );
  for (const warning of preflight.warnings) log(`warning: ${warning}`);

  const objectLock = objectLockFor(job, startedAt);
  const artifacts: ManifestArtifact[] = [];
  const tables: ManifestTable[] = [];
  const consistency: RowCountConsistency[] = [];

  // The run's objects are committed together. Every upload (each database's, and the globals')
  // stores all its parts and then waits at `commitGate`, which opens only once every dump client
  // has exited 0; any failure closes it, stops the dumps still running, and every upload is
  // aborted. A failed dump leaves nothing at the run's keys, however many databases had been
  // dumped. Only S3 failing during the completions themselves (sent together once the gate
  // opens; S3 has no multi-object commit) can leave some objects without a manifest: not a
  // backup, and the pruner removes them.
  const commitGate = deferred<void>();
  let failure: Error | undefined;
  /** Stop the dumps still running: the database being dumped, pg_dumpall. */
  const stops = new Set<() => void>();
  const failRun = (error: unknown): void => {
    if (failure) return;
    // Once the run is aborted, what fails next fails because of it: the abort is the cause.
    failure = abortedError(deps.signal) ?? (error as Error);
    commitGate.reject(failure);
    for (const stop of stops) stop();
  };
  const uploads: Promise<unknown>[] = [];
  const dumped: Promise<void>[] = [];
  const stage = <T>(upload: Promise<T>): Promise<T> => {
    uploads.push(upload);
    upload.catch(failRun);
    return upload;
  };

  // Roles and tablespaces are dumped while the databases are: pg_dumpall's start-up and upload
  // then cost no wall time. Its progress is its own; the databases' uploads count the run's bytes.
  let globalsUpload: Promise<UploadResult> | undefined;
  if (engine.dumpGlobals) {
    const dump = engine.dumpGlobals(target, { ...deps.clientOptions, preflight });
    const stop = () => dump.stdout.destroy();
    stops.add(stop);
    const done = () => void stops.delete(stop);
    dump.completion.then(done, done);
    dumped.push(dump.completion);
    globalsUpload = stage(uploadDump(deps, job, globalsKey(job.source, job.runId), { ...dump, kill: stop }, commitGate.promise,
      objectLock, { ...state }));
  }

  const staged: { database: string; key: string; artifact: ArtifactInfo; upload: Promise<UploadResult>; binlog?: BinlogCoordinates }[] = [];
  for (const database of job.target.databases) {
    if (failure) break;
    const aborted = abortedError(deps.signal);
    if (aborted) {
      failRun(aborted);
      break;
    }
    state.phase = 'dump';
    state.database = database;
    const dump = engine.startDump(target, {
      preflight,
      database,
      compression: job.compression,
      exactCountMaxBytes: job.exactCountMaxBytes,
      excludeTables: job.excludeTables,
      onWarning: (message) => log(`warning: ${redact(message, secrets)}`),
      ...(job.binlogCoordinates ? { binlogCoordinates: true } : {}),
    });
    const stop = () => dump.kill();
    stops.add(stop);
    dumped.push(dump.completion);
    const key = artifactKey(job.source, job.runId, database, dump.artifact.fileExtension);
    const stored = deferred<void>();
    const upload = stage(uploadDump(deps, job, key, dump, commitGate.promise, objectLock, state, stored.resolve));
    try {
      // The upload reports a failure of either side with the right cause; the dump's exit
      // status is awaited only once its whole output is stored.
      await Promise.race([stored.promise, upload]);
      await dump.completion;
      tables.push(...(await dump.tables));
      consistency.push(await dump.rowCountConsistency);
    } catch (error) {
      failRun(error);
      break;
    } finally {
      stops.delete(stop);
    }
    const binlog = job.binlogCoordinates ? await dump.binlogCoordinates : undefined;
    // The dump is a backup all the same; only a replay of the binary logs cannot start from it.
    if (job.binlogCoordinates && !binlog) log(`warning: ${database}: the dump recorded no binlog coordinates; point-in-time restores cannot use it as a base`);
    staged.push({ database, key, artifact: dump.artifact, upload, ...(binlog ? { binlog } : {}) });
  }
  if (!failure) await Promise.all(dumped).then(() => commitGate.resolve(), failRun);
  if (!failure) state.phase = 'commit';
  await Promise.allSettled(uploads);
  if (failure) throw failure;

  for (const { database, key, artifact, upload, binlog } of staged) {
    const uploaded = await upload;
    artifacts.push({
      database,
      key,
      bytes: uploaded.bytes,
      sha256: uploaded.sha256,
      format: artifact.format,
      compression: artifact.compression,
      parts: uploaded.parts,
      ...(uploaded.versionId ? { versionId: uploaded.versionId } : {}),
      ...(binlog ? { binlog } : {}),
    });
    log(`dumped ${database}: ${uploaded.bytes} bytes in ${uploaded.parts} part(s), sha256 ${uploaded.sha256}`);
  }
  const globals: Manifest['globals'] = globalsUpload &&
    (await globalsUpload.then((uploaded) => ({
      key: uploaded.key, bytes: uploaded.bytes, sha256: uploaded.sha256, ...(uploaded.versionId ? { versionId: uploaded.versionId } : {}),
    })));

  state.phase = 'manifest';
  const manifest: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: job.source,
    engine: preflight.engine,
    tier: job.tier,
    runId: job.runId,
    startedAt: startedAt.toISOString(),
    finishedAt: now().toISOString(),
    server: { version: preflight.server.version, major: preflight.server.major },
    client: { tool: preflight.client.tool, version: preflight.client.version, major: preflight.client.major },
    databaseSizeBytes: preflight.databaseSizeBytes,
    encoding: preflight.encoding,
    artifacts,
    ...(globals ? { globals } : {}),
    tables,
    rowCountConsistency: consistency.every((c) => c === 'same-snapshot') ? 'same-snapshot' : 'separate-snapshot',
    extensions: preflight.extensions.map(({ database, name, version }) => ({ database, name, version })),
    ...(objectLock ? { objectLock: { mode: objectLock.mode, retainUntil: objectLock.retainUntil.toISOString() } } : {}),
  };
  const manifestVersionId = await putManifest(deps.s3, job, manifest, objectLock);
  if (manifestVersionId) state.manifestVersionId = manifestVersionId;
  state.phase = 'done';
  return manifest;
}

function engineFor(engine: string, engines: RunBackupDeps['engines']): DumpEngine {
  return engines?.[engine] ?? defaultEngine(engine);
}

interface ObjectLock {
  readonly mode: BackupJob['objectLockMode'];
  readonly retainUntil: Date;
}

function objectLockFor(job: BackupJob, startedAt: Date): ObjectLock | undefined {
  if (job.retentionSeconds === undefined) return undefined;
  return { mode: job.objectLockMode, retainUntil: new Date(startedAt.getTime() + job.retentionSeconds * 1000) };
}

async function refuseCommittedSlot(s3: S3Client, job: BackupJob): Promise<void> {
  const key = manifestKey(job.source, job.runId);
  try {
    await s3.send(new HeadObjectCommand({ Bucket: job.bucket, Key: key }));
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (error as Error).name === 'NotFound') return;
    throw lifeboatError('UploadFailed', `cannot check s3://${job.bucket}/${key}: ${(error as Error).name} ${(error as Error).message}`);
  }
  throw lifeboatError(
    'AlreadyCommitted',
    `run ${job.source}/${job.runId} is already committed (s3://${job.bucket}/${key} exists); ` +
      'a retried slot never overwrites a committed run',
  );
}

/**
 * Streams one dump into its object. With `gate`, the upload stores every part and then commits
 * only once both the dump succeeded and `gate` resolved; a rejected gate aborts it.
 */
async function uploadDump(
  deps: RunBackupDeps,
  job: BackupJob,
  key: string,
  dump: { readonly stdout: NodeJS.ReadableStream; readonly completion: Promise<void>; kill(): void },
  gate: Promise<void> | undefined,
  objectLock: ObjectLock | undefined,
  state: BackupProgress,
  onStored?: () => void,
): Promise<UploadResult> {
  const onAbort = () => dump.kill();
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  const base = state.bytesUploaded;
  try {
    return await streamToS3({
      client: deps.s3,
      bucket: job.bucket,
      key,
      body: dump.stdout as import('node:stream').Readable,
      completion: gate ? dump.completion.then(() => gate) : dump.completion,
      sizeHintBytes: job.sizeHintBytes,
      objectLockMode: objectLock?.mode,
      objectLockRetainUntil: objectLock?.retainUntil,
      signal: deps.signal,
      onProgress: (bytes: number) => {
        state.bytesUploaded = base + bytes;
      },
      onStored,
    });
  } catch (error) {
    dump.kill();
    const aborted = abortedError(deps.signal, `the upload of ${key} was aborted and nothing was committed`);
    if (aborted) throw aborted;
    // When the dump failed first, the upload was abandoned because of it: report the dump's
    // error. When the upload failed first, the dump was stopped because of it: report that.
    // The dump's own completion, not the gate: an upload that fails after its dump succeeded
    // must not wait for a gate that only its own failure would close.
    const dumpError = await dump.completion.then(() => undefined, (dumpFailure: unknown) => dumpFailure);
    throw dumpError !== undefined && (error as Error).cause === dumpError ? dumpError : error;
  } finally {
    deps.signal?.removeEventListener('abort', onAbort);
  }
}

async function putManifest(s3: S3Client, job: BackupJob, manifest: Manifest, objectLock: ObjectLock | undefined): Promise<string | undefined> {
  const key = manifestKey(job.source, job.runId);
  try {
    const put = await s3.send(new PutObjectCommand({
      Bucket: job.bucket,
      Key: key,
      Body: serializeManifest(manifest),
      ContentType: 'application/json',
      IfNoneMatch: '*',
      ...(objectLock ? { ObjectLockMode: objectLock.mode, ObjectLockRetainUntilDate: objectLock.retainUntil } : {}),
    }));
    return put.VersionId;
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412 || (error as Error).name === 'PreconditionFailed') {
      throw lifeboatError('AlreadyCommitted', `run ${job.source}/${job.runId} was committed by another attempt while this one ran (s3://${job.bucket}/${key})`);
    }
    throw lifeboatError('UploadFailed', `writing s3://${job.bucket}/${key} failed: ${(error as Error).name} ${(error as Error).message}`);
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  const error = abortedError(signal);
  if (error) throw error;
}

/** The error of an aborted run (`Aborted`, or `DumpTimedOut` past the deadline); undefined while it runs. */
function abortedError(signal: AbortSignal | undefined, outcome = 'nothing was committed'): Error | undefined {
  if (!signal?.aborted) return undefined;
  const reason = signal.reason as Error | undefined;
  const name = reason?.name === 'DumpTimedOut' ? 'DumpTimedOut' : 'Aborted';
  return lifeboatError(name, `${reason?.message ?? 'the run was aborted'}; ${outcome}`);
}
