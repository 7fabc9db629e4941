/**
 * Restores a verified run into a database server with the engine's stock tools (the target
 * engine's `restore`, lib/engines/restore-contract.ts: pg_restore and psql, the mysql/mariadb
 * client), in an order that never leaves the target half-changed for a reason that could have
 * been known up front:
 *
 *   1. find the clients, then download every artifact to a file (pg_restore --jobs needs a
 *      seekable file), computing SHA-256 and the byte count on the way;
 *   2. compare both with the manifest (`ChecksumMismatch`), then inspect every target database
 *      (`TargetNotEmpty` unless `clean`) — all of this before the first write to the target;
 *   3. apply the globals when asked, then write each artifact into its database.
 *
 * Secrets: the password travels only in the child's environment (PGPASSWORD / MYSQL_PWD) and
 * in the driver's connection options; every message is redacted as a second line of defence.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunRecord } from '../catalog/catalog';
import { redact } from '../domain/errors';
import { runPrefix } from '../domain/layout';
import type { PlannedRestore, RestoreTarget } from '../engines/restore-contract';
import { ENGINE_NAMES, engineOf } from '../engines/registry';
import { download, fileName, type Download } from './download';
import { restoreError } from './errors';
import { ProgressMeter } from './progress';
import { checkAborted } from './target';

export type { RestoreTarget } from '../engines/restore-contract';

export interface RestoreProgress {
  phase: 'download' | 'restore';
  bytes: number;
  totalBytes: number;
  bytesPerSecond: number;
  etaSeconds?: number;
}

export interface RestoreOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** A verified run with its manifest (from `chooseRun`). */
  readonly run: RunRecord;
  readonly target: RestoreTarget;
  /**
   * Source database → target database name.
   * @default - each database under its own name
   */
  readonly databases?: Readonly<Record<string, string>>;
  /** @default - the CPU count (pg_restore --jobs) */
  readonly jobs?: number;
  /**
   * Allow a non-empty target: drop what the artifact replaces.
   * @default false (a non-empty target database is refused with `TargetNotEmpty`)
   */
  readonly clean?: boolean;
  /** @default false (PostgreSQL: apply globals.sql, the roles, before the databases) */
  readonly globals?: boolean;
  /** @default false (pg_restore --no-owner --no-privileges) */
  readonly noOwner?: boolean;
  /** @default - a temp dir, removed afterwards */
  readonly workDir?: string;
  readonly onProgress?: (progress: RestoreProgress) => void;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface RestoreResult {
  readonly downloadMs: number;
  readonly verifyMs: number;
  readonly restoreMs: number;
  readonly globalsMs?: number;
  /** Artifact bytes downloaded (and globals.sql when applied). */
  readonly bytes: number;
  /** Target database names, in the manifest's order. */
  readonly databases: readonly string[];
}

const LISTED_TABLES = 5;

export async function restoreRun(opts: RestoreOptions): Promise<RestoreResult> {
  const secrets = [opts.target.password];
  const log = (line: string) => opts.log?.(redact(line, secrets));
  const { run, target } = opts;
  const manifest = run.manifest;
  if (run.status !== 'verified' || !manifest) {
    throw restoreError('RunNotVerified', `run ${run.source}/${run.runId} is ${run.status}, not verified${run.reason ? `: ${run.reason}` : ''}; only a verified run is restored`);
  }
  const into = engineOf(target.engine);
  if (!engineOf(manifest.engine).restoresInto(target.engine)) {
    throw restoreError('InvalidInput', `run ${run.source}/${run.runId} is a ${manifest.engine} backup; it cannot be restored into a ${target.engine} server`);
  }
  const unknown = Object.keys(opts.databases ?? {}).filter((name) => !manifest.artifacts.some((artifact) => artifact.database === name));
  if (unknown.length > 0) {
    throw restoreError('InvalidInput', `databases: ${unknown.join(', ')} not in run ${run.source}/${run.runId} (it has ${manifest.artifacts.map((a) => a.database).join(', ')})`);
  }
  const targetName = (database: string) => opts.databases?.[database] ?? database;
  if (!into.restoresUnderAnotherName) {
    const renamed = manifest.artifacts.filter((artifact) => targetName(artifact.database) !== artifact.database);
    if (renamed.length > 0) {
      throw restoreError('InvalidInput',
        `databases: a MySQL/MariaDB artifact recreates its database under its own name (it was dumped with --databases); ` +
        `${renamed.map((a) => `${a.database} → ${targetName(a.database)}`).join(', ')} is not possible: restore into another server instead`);
    }
  }
  if (opts.globals && !into.hasGlobals) throw restoreError('InvalidInput', `globals: only ${withGlobals()} runs have globals.sql`);
  if (opts.globals && !manifest.globals) throw restoreError('InvalidInput', `globals: run ${run.source}/${run.runId} has no globals.sql`);
  const jobs = opts.jobs ?? availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1) throw restoreError('InvalidInput', `jobs: must be a whole number of at least 1, got ${jobs}`);
  checkAborted(opts.signal);

  // Clients first: finding out after a 40-minute download that pg_restore is missing helps no one.
  const clients = into.restore.clients({
    target, manifest, jobs, clean: opts.clean ?? false, noOwner: opts.noOwner ?? false, globals: opts.globals ?? false,
    secrets, log, signal: opts.signal,
  });

  const workDir = opts.workDir ?? mkdtempSync(join(tmpdir(), 'lifeboat-restore-'));
  try {
    // 1. Download, hashing on the way.
    const wanted = [
      ...manifest.artifacts.map((artifact, index) => ({ artifact, file: join(workDir, `${index}-${fileName(artifact.key)}`) })),
      ...(opts.globals && manifest.globals ? [{ artifact: manifest.globals, file: join(workDir, 'globals.sql') }] : []),
    ];
    const totalBytes = wanted.reduce((sum, item) => sum + item.artifact.bytes, 0);
    log(`downloading ${wanted.length} object(s), ${totalBytes} bytes, from s3://${opts.bucket}/${runPrefix(run.source, run.runId)} into ${workDir}`);
    const downloadStart = Date.now();
    const downloadProgress = new ProgressMeter('download', totalBytes, opts.onProgress);
    const downloads: Download[] = [];
    for (const item of wanted) {
      downloads.push(await download(opts.s3, opts.bucket, item.artifact, item.file, downloadProgress, opts.signal));
    }
    downloadProgress.finish();
    const downloadMs = Date.now() - downloadStart;

    // 2. Verify against the manifest, then look at the target: nothing is written before this.
    const verifyStart = Date.now();
    for (const done of downloads) {
      if (done.sha256 !== done.artifact.sha256 || done.bytes !== done.artifact.bytes) {
        throw restoreError('ChecksumMismatch',
          `s3://${opts.bucket}/${done.artifact.key}: expected ${done.artifact.bytes} bytes with sha256 ${done.artifact.sha256} (manifest.json), ` +
          `found ${done.bytes} bytes with sha256 ${done.sha256}; the object changed after it was verified, nothing was restored ` +
          `(try another run, or the offsite copy)`);
      }
    }
    log(`checksums match the manifest (${downloads.length} object(s))`);
    const planned: PlannedRestore[] = [];
    const problems: string[] = [];
    for (const [index, artifact] of manifest.artifacts.entries()) {
      const database = targetName(artifact.database);
      const found = await clients.inspect(database);
      planned.push({ artifact, file: downloads[index].file, database, exists: found.exists });
      if (found.relations.length > 0) {
        const listed = found.relations.slice(0, LISTED_TABLES).join(', ') + (found.relations.length > LISTED_TABLES ? ', …' : '');
        problems.push(`database ${database} on ${target.host}:${target.port} has ${found.relations.length} table(s) (${listed}) that the restore would ${into.restore.replaces}`);
      }
    }
    if (problems.length > 0 && !opts.clean) {
      throw restoreError('TargetNotEmpty', `${problems.join('; ')}; nothing was restored. Restore into an empty database or server, or pass clean (--clean) to replace them`);
    }
    for (const problem of problems) log(`clean: ${problem}`);
    const verifyMs = Date.now() - verifyStart;
    checkAborted(opts.signal);

    // 3. Write.
    let globalsMs: number | undefined;
    if (opts.globals && clients.applyGlobals) {
      const globalsStart = Date.now();
      await clients.applyGlobals(downloads[downloads.length - 1].file);
      globalsMs = Date.now() - globalsStart;
    }
    const restoreStart = Date.now();
    const restoreTotal = planned.reduce((sum, item) => sum + item.artifact.bytes, 0);
    const restoreProgress = new ProgressMeter('restore', restoreTotal, opts.onProgress);
    for (const item of planned) {
      checkAborted(opts.signal);
      log(`restoring ${item.artifact.database} → database ${item.database} on ${target.engine} ${target.host}:${target.port}`);
      await clients.restore(item, restoreProgress);
    }
    restoreProgress.finish();
    const restoreMs = Date.now() - restoreStart;
    return {
      downloadMs,
      verifyMs,
      restoreMs,
      ...(globalsMs !== undefined ? { globalsMs } : {}),
      bytes: totalBytes,
      databases: planned.map((item) => item.database),
    };
  } finally {
    if (opts.workDir === undefined) rmSync(workDir, { recursive: true, force: true });
  }
}

/** The engines whose runs have globals, for the message refusing `globals` (`PostgreSQL`). */
function withGlobals(): string {
  return ENGINE_NAMES.map(engineOf).filter((engine) => engine.hasGlobals).map((engine) => engine.label).join(' and ');
}
