/**
 * Restores a verified run into a database server with the stock tools (pg_restore, psql, the
 * mysql/mariadb client), in an order that never leaves the target half-changed for a reason
 * that could have been known up front:
 *
 *   1. download every artifact to a file (pg_restore --jobs needs a seekable file), computing
 *      SHA-256 and the byte count on the way;
 *   2. compare both with the manifest (`ChecksumMismatch`), then inspect every target database
 *      (`TargetNotEmpty` unless `clean`) — all of this before the first write to the target;
 *   3. PostgreSQL: apply globals.sql when asked, create each missing database, pg_restore;
 *      MySQL/MariaDB: drop the database when `clean`, stream the decompressed SQL into the client.
 *
 * Secrets: the password travels only in the child's environment (PGPASSWORD / MYSQL_PWD) and
 * in the driver's connection options; every message is redacted as a second line of defence.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants, createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import * as mysql from 'mysql2/promise';
import { Client } from 'pg';
import type { RunRecord } from '../catalog/catalog';
import { redact } from '../domain/errors';
import { runPrefix } from '../domain/layout';
import type { ManifestArtifact } from '../domain/manifest';
import {
  classifyTlsFailure, defaultCaFile, describeTls, mysqlTlsArgs, pgTlsEnv, tlsFailureHint, type TlsFailure, type TlsOptions,
} from '../domain/tls';
import { engineOf } from '../engines/registry';
import { restoreError } from './errors';

export interface RestoreTarget {
  readonly engine: 'postgres' | 'mysql' | 'mariadb';
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** Never logged, never in an argv or a message. */
  readonly password?: string;
  /**
   * TLS to the target (lib/domain/tls.ts), for every client of the restore: the driver's
   * inspection, pg_restore, psql, mysql/mariadb. A verify-full without `caFile` checks against
   * the host's default bundle. `lifeboat restore` always says (the target URL's sslmode); a
   * drill's throwaway server on loopback leaves it out.
   * @default - { mode: 'prefer' }
   */
  readonly tls?: TlsOptions;
}

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

/** How often onProgress is called at most, besides the start and the end of each phase. */
const PROGRESS_INTERVAL_MS = 250;
const CONNECT_TIMEOUT_MS = 10_000;
/** Node's 16 KiB default makes decompression several times slower than the CLI (see lib/verify). */
const DECOMPRESS_CHUNK_BYTES = 256 * 1024;
const LISTED_TABLES = 5;

interface Download {
  readonly artifact: Pick<ManifestArtifact, 'key' | 'bytes' | 'sha256' | 'versionId'>;
  readonly file: string;
  bytes: number;
  sha256: string;
}

interface Planned {
  readonly artifact: ManifestArtifact;
  readonly file: string;
  readonly database: string;
  readonly exists: boolean;
}

export async function restoreRun(opts: RestoreOptions): Promise<RestoreResult> {
  const secrets = [opts.target.password];
  const log = (line: string) => opts.log?.(redact(line, secrets));
  const { run, target } = opts;
  const manifest = run.manifest;
  if (run.status !== 'verified' || !manifest) {
    throw restoreError('RunNotVerified', `run ${run.source}/${run.runId} is ${run.status}, not verified${run.reason ? `: ${run.reason}` : ''}; only a verified run is restored`);
  }
  const into = engineOf(target.engine);
  const pgTarget = into.artifactFormat === 'pg-custom';
  if (!engineOf(manifest.engine).restoresInto(target.engine)) {
    throw restoreError('InvalidInput', `run ${run.source}/${run.runId} is a ${manifest.engine} backup; it cannot be restored into a ${target.engine} server`);
  }
  const unknown = Object.keys(opts.databases ?? {}).filter((name) => !manifest.artifacts.some((artifact) => artifact.database === name));
  if (unknown.length > 0) {
    throw restoreError('InvalidInput', `databases: ${unknown.join(', ')} not in run ${run.source}/${run.runId} (it has ${manifest.artifacts.map((a) => a.database).join(', ')})`);
  }
  const targetName = (database: string) => opts.databases?.[database] ?? database;
  if (!pgTarget) {
    const renamed = manifest.artifacts.filter((artifact) => targetName(artifact.database) !== artifact.database);
    if (renamed.length > 0) {
      throw restoreError('InvalidInput',
        `databases: a MySQL/MariaDB artifact recreates its database under its own name (it was dumped with --databases); ` +
        `${renamed.map((a) => `${a.database} → ${targetName(a.database)}`).join(', ')} is not possible: restore into another server instead`);
    }
  }
  if (opts.globals && !pgTarget) throw restoreError('InvalidInput', 'globals: only PostgreSQL runs have globals.sql');
  if (opts.globals && !manifest.globals) throw restoreError('InvalidInput', `globals: run ${run.source}/${run.runId} has no globals.sql`);
  const jobs = opts.jobs ?? availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1) throw restoreError('InvalidInput', `jobs: must be a whole number of at least 1, got ${jobs}`);
  checkAborted(opts.signal);

  // Clients first: finding out after a 40-minute download that pg_restore is missing helps no one.
  const tools = pgTarget
    ? { restore: resolveTool(['pg_restore']), psql: opts.globals ? resolveTool(['psql']) : undefined }
    : { sql: resolveTool(into.sqlClients) };

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
    const planned: Planned[] = [];
    const inspector = pgTarget ? inspectPostgres : inspectMysql;
    const problems: string[] = [];
    for (const [index, artifact] of manifest.artifacts.entries()) {
      const database = targetName(artifact.database);
      const found = await inspector(target, database, secrets);
      planned.push({ artifact, file: downloads[index].file, database, exists: found.exists });
      if (found.relations.length > 0) {
        const listed = found.relations.slice(0, LISTED_TABLES).join(', ') + (found.relations.length > LISTED_TABLES ? ', …' : '');
        problems.push(`database ${database} on ${target.host}:${target.port} has ${found.relations.length} table(s) (${listed}) that the restore would ${pgTarget ? 'drop or collide with' : 'drop'}`);
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
    if (opts.globals && tools.psql) {
      const globalsStart = Date.now();
      await applyGlobals(tools.psql, target, downloads[downloads.length - 1].file, log, secrets, opts.signal);
      globalsMs = Date.now() - globalsStart;
    }
    const restoreStart = Date.now();
    const restoreTotal = planned.reduce((sum, item) => sum + item.artifact.bytes, 0);
    const restoreProgress = new ProgressMeter('restore', restoreTotal, opts.onProgress);
    for (const item of planned) {
      checkAborted(opts.signal);
      log(`restoring ${item.artifact.database} → database ${item.database} on ${target.engine} ${target.host}:${target.port}`);
      if (pgTarget) {
        if (!item.exists) await createPgDatabase(target, item.database, manifest.encoding, secrets);
        await pgRestore(tools.restore as string, target, item, { jobs, clean: opts.clean ?? false, noOwner: opts.noOwner ?? false }, secrets, opts.signal);
        restoreProgress.add(item.artifact.bytes);
      } else {
        if (opts.clean && item.exists) await dropMysqlDatabase(target, item.database, secrets);
        await mysqlRestore(tools.sql as string, target, item, restoreProgress, secrets, opts.signal);
      }
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

/** Calls onProgress at most every PROGRESS_INTERVAL_MS, and always at the start and the end. */
class ProgressMeter {
  private bytes = 0;
  private readonly start = Date.now();
  private last = 0;

  constructor(
    private readonly phase: RestoreProgress['phase'],
    private readonly totalBytes: number,
    private readonly onProgress?: (progress: RestoreProgress) => void,
  ) {
    this.emit();
  }

  add(bytes: number): void {
    this.bytes += bytes;
    if (Date.now() - this.last >= PROGRESS_INTERVAL_MS) this.emit();
  }

  finish(): void {
    this.emit();
  }

  private emit(): void {
    if (!this.onProgress) return;
    this.last = Date.now();
    const seconds = (this.last - this.start) / 1000;
    const bytesPerSecond = seconds > 0 ? this.bytes / seconds : 0;
    const remaining = Math.max(0, this.totalBytes - this.bytes);
    const progress: RestoreProgress = { phase: this.phase, bytes: this.bytes, totalBytes: this.totalBytes, bytesPerSecond };
    if (bytesPerSecond > 0) progress.etaSeconds = remaining / bytesPerSecond;
    this.onProgress(progress);
  }
}

async function download(
  s3: S3Client,
  bucket: string,
  artifact: Download['artifact'],
  file: string,
  progress: ProgressMeter,
  signal?: AbortSignal,
): Promise<Download> {
  const result: Download = { artifact, file, bytes: 0, sha256: '' };
  const hash = createHash('sha256');
  // Exactly the version the manifest names (the one that was verified), not whatever is current.
  let object;
  try {
    object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: artifact.key, VersionId: artifact.versionId }), { abortSignal: signal });
  } catch (error) {
    const { name, message } = error as Error;
    const what = `s3://${bucket}/${artifact.key}${artifact.versionId ? ` (version ${artifact.versionId})` : ''}`;
    if (name === 'NoSuchKey' || name === 'NoSuchVersion' || name === 'NotFound') {
      throw restoreError('ArtifactMissing',
        `${what} is not in the bucket (${name}); nothing was restored. ` +
        'From the offsite bucket: replication may still be copying it, or it was removed; try the primary bucket or another run', error);
    }
    if (name === 'AbortError' || signal?.aborted) throw error;
    // Its own name (AccessDenied, …), saying which object: S3 answers 403 for a missing
    // object to a caller that may not list the bucket.
    throw Object.assign(new Error(`${what}: ${message}; nothing was restored`, { cause: error }), { name });
  }
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      result.bytes += chunk.length;
      progress.add(chunk.length);
      callback(null, chunk);
    },
  });
  await pipeline(object.Body as Readable, meter, createWriteStream(file, { mode: 0o600 }), { signal });
  result.sha256 = hash.digest('hex');
  return result;
}

function fileName(key: string): string {
  return decodeURIComponent(key.slice(key.lastIndexOf('/') + 1)).replace(/[^A-Za-z0-9._-]/g, '_');
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const reason = signal.reason as Error | undefined;
    throw restoreError('Aborted', reason?.message ?? 'the restore was aborted');
  }
}

/** The first of `tools` on PATH; `ClientNotFound` naming all of them otherwise. */
function resolveTool(tools: readonly string[], pathEnv = process.env.PATH ?? ''): string {
  for (const tool of tools) {
    for (const dir of pathEnv.split(delimiter).filter(Boolean)) {
      try {
        accessSync(join(dir, tool), fsConstants.X_OK);
        return join(dir, tool);
      } catch {
        // next candidate
      }
    }
  }
  throw restoreError('ClientNotFound', `${tools.join(' or ')} not found on PATH: install the client package on this machine (nothing was downloaded)`);
}

/** Nothing inherited that could change what is restored (no ~/.pgpass, no ~/.my.cnf, no PG* variables). */
function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

interface TargetState {
  readonly exists: boolean;
  /** Schema-qualified tables and views already in the database. */
  readonly relations: readonly string[];
}

function unreachable(target: RestoreTarget, database: string, error: unknown, secrets: readonly (string | undefined)[]): Error {
  return restoreError('TargetUnreachable',
    redact(`cannot inspect database ${database} on ${target.engine} ${target.host}:${target.port} as ${target.username}: ${(error as Error).message}`, secrets));
}

/** The target's TLS; verify-full without a CA takes the host's default bundle. */
function targetTls(target: RestoreTarget): TlsOptions {
  const tls = target.tls ?? { mode: 'prefer' };
  return tls.mode === 'verify-full' && tls.caFile === undefined ? { ...tls, caFile: defaultCaFile(target.host) } : tls;
}

const TLS_SETTINGS = { mode: 'the target URL\'s sslmode', ca: 'the target URL\'s sslrootcert' };

/** `TlsRequired` / `TlsVerifyFailed` naming the target, the mode, the cause and the fix. */
function tlsError(failure: TlsFailure, target: RestoreTarget, what: string, secrets: readonly (string | undefined)[]): Error {
  const tls = targetTls(target);
  return restoreError(failure.name, redact(
    `${what} ${target.engine} ${target.host}:${target.port} as ${target.username} with ${describeTls(tls)}: ${failure.cause}; ` +
      `nothing was restored; fix: ${tlsFailureHint(failure, tls, TLS_SETTINGS)}`, secrets));
}

function caPem(target: RestoreTarget, secrets: readonly (string | undefined)[]): string {
  const tls = targetTls(target);
  try {
    return readFileSync(tls.caFile as string, 'utf8');
  } catch (error) {
    throw tlsError({ name: 'TlsVerifyFailed', cause: `the CA bundle ${tls.caFile ?? '(none)'} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` },
      target, 'cannot connect to', secrets);
  }
}

/** A driver connection's failure: TLS failures by their names, anything else TargetUnreachable. */
function connectFailure(target: RestoreTarget, database: string, error: unknown, secrets: readonly (string | undefined)[]): Error {
  if (['TlsRequired', 'TlsVerifyFailed'].includes((error as Error).name)) return error as Error;
  const e = error as { code?: string; message?: string };
  const failure = classifyTlsFailure(e.message ?? String(error), e.code);
  return failure ? tlsError(failure, target, `cannot inspect database ${database} on`, secrets) : unreachable(target, database, error, secrets);
}

async function withPg<T>(target: RestoreTarget, database: string, secrets: readonly (string | undefined)[], fn: (client: Client) => Promise<T>): Promise<T> {
  const tls = targetTls(target);
  const connect = async (ssl: false | { rejectUnauthorized: boolean; ca?: string }): Promise<Client> => {
    const candidate = new Client({
      host: target.host, port: target.port, user: target.username, password: target.password, database,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ssl,
    });
    try {
      await candidate.connect();
      return candidate;
    } catch (error) {
      await candidate.end().catch(() => undefined);
      throw error;
    }
  };
  let client: Client;
  try {
    const ssl = tls.mode === 'disable' ? false : tls.mode === 'verify-full' ? { rejectUnauthorized: true, ca: caPem(target, secrets) } : { rejectUnauthorized: false };
    client = await connect(ssl).catch((error: Error) => {
      if (tls.mode === 'prefer' && /does not support SSL/i.test(error.message)) return connect(false);
      throw error;
    });
  } catch (error) {
    throw connectFailure(target, database, error, secrets);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function inspectPostgres(target: RestoreTarget, database: string, secrets: readonly (string | undefined)[]): Promise<TargetState> {
  const exists = await withPg(target, 'postgres', secrets, async (client) =>
    (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount === 1);
  if (!exists) return { exists, relations: [] };
  const relations = await withPg(target, database, secrets, async (client) =>
    (await client.query<{ name: string }>(`SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      ORDER BY 1`)).rows.map((row) => row.name));
  return { exists, relations };
}

function quotePgIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * CREATE DATABASE needs the CREATEDB privilege (or a superuser); from template0 so nothing in
 * the server's template1 collides with the artifact. pg_restore then needs to own the objects it
 * creates: a superuser, or --no-owner with a user that owns the database.
 */
async function createPgDatabase(target: RestoreTarget, database: string, encoding: string | undefined, secrets: readonly (string | undefined)[]): Promise<void> {
  const withEncoding = encoding && /^[A-Za-z0-9_]+$/.test(encoding) ? ` ENCODING '${encoding}'` : '';
  await withPg(target, 'postgres', secrets, async (client) => {
    try {
      await client.query(`CREATE DATABASE ${quotePgIdent(database)} TEMPLATE template0${withEncoding}`);
    } catch (error) {
      throw restoreError('RestoreFailed',
        redact(`cannot create database ${database} on ${target.host}:${target.port} as ${target.username}: ${(error as Error).message} ` +
          '(the restore user needs CREATEDB, or create the database beforehand and grant it to that user)', secrets));
    }
  });
}

interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly spawnError?: Error;
}

function startChild(path: string, args: readonly string[], env: NodeJS.ProcessEnv, signal?: AbortSignal) {
  const child = spawn(path, [...args], { env, stdio: ['pipe', 'ignore', 'pipe'], signal, killSignal: 'SIGTERM' });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-1_000_000);
  });
  const exit = new Promise<ChildResult>((resolve) => {
    child.once('error', (spawnError) => resolve({ code: null, signal: null, stderr, spawnError }));
    child.once('close', (code, exitSignal) => resolve({ code, signal: exitSignal, stderr }));
  });
  return { child, exit };
}

function childFailure(
  label: string,
  result: ChildResult,
  secrets: readonly (string | undefined)[],
  signal?: AbortSignal,
  hint = '',
  target?: RestoreTarget,
): Error {
  if (signal?.aborted) return restoreError('Aborted', `${label} was stopped before it finished; the target database is partly restored`);
  const tail = result.stderr.trim().split('\n').slice(-10).join('\n');
  const tlsFailure = target && !result.spawnError ? classifyTlsFailure(tail) : undefined;
  if (target && tlsFailure) return tlsError(tlsFailure, target, `${label}: cannot connect to`, secrets);
  const how = result.spawnError ? `could not start (${result.spawnError.message})` : result.signal ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
  return restoreError('RestoreFailed', redact(`${label} ${how}${tail ? `: ${tail}` : ''}${hint}`, secrets));
}

async function pgRestore(
  path: string,
  target: RestoreTarget,
  item: Planned,
  flags: { jobs: number; clean: boolean; noOwner: boolean },
  secrets: readonly (string | undefined)[],
  signal?: AbortSignal,
): Promise<void> {
  const args = pgRestoreArgs(target, item.database, item.file, flags);
  const { child, exit } = startChild(path, args, childEnv({ PGPASSWORD: target.password, PGCONNECT_TIMEOUT: '10', ...pgTlsEnv(targetTls(target)) }), signal);
  child.stdin?.end();
  const result = await exit;
  if (result.code === 0 && !result.spawnError) return;
  if (flags.clean && !result.spawnError && !signal?.aborted && onlyCleanDropsFailed(result.stderr)) return;
  const hint = /role .* does not exist/.test(result.stderr)
    ? ' (the roles of the source are missing: pass --globals to create them first, or --no-owner to restore without owners and grants)'
    : '';
  throw childFailure(`pg_restore into database ${item.database} on ${target.host}:${target.port}`, result, secrets, signal, hint, target);
}

/**
 * With --clean, pg_restore drops each object before creating it, newest first; some drops fail
 * harmlessly (a partition's inherited primary key cannot be dropped on its own, and goes with
 * the partitioned table dropped right after). So a clean restore runs without --exit-on-error
 * and succeeds only when every failed statement was such a DROP and the count of ignored errors
 * pg_restore reports is exactly those.
 */
export function onlyCleanDropsFailed(stderr: string): boolean {
  const ignored = /errors ignored on restore: (\d+)/.exec(stderr);
  if (!ignored) return false;
  const commands = [...stderr.matchAll(/^Command was: (.*)$/gm)].map((match) => match[1]);
  const drops = commands.filter((sql) => /^(DROP |ALTER TABLE (IF EXISTS )?(ONLY )?\S+ DROP CONSTRAINT )/.test(sql));
  return drops.length === commands.length && drops.length === Number(ignored[1]);
}

/** pg_restore's argv (no password: it travels in PGPASSWORD). */
export function pgRestoreArgs(
  target: Pick<RestoreTarget, 'host' | 'port' | 'username'>,
  database: string,
  file: string,
  flags: { jobs: number; clean: boolean; noOwner: boolean },
): string[] {
  return [
    '--host', target.host, '--port', String(target.port), '--username', target.username, '--no-password',
    '--dbname', database, '--jobs', String(flags.jobs),
    ...(flags.clean ? ['--clean', '--if-exists'] : ['--exit-on-error']),
    ...(flags.noOwner ? ['--no-owner', '--no-privileges'] : []),
    file,
  ];
}

/**
 * globals.sql (pg_dumpall --globals-only) creates every role of the source, including ones the
 * target already has (its bootstrap superuser): those statements fail and are reported, the
 * rest applies. psql exits non-zero only when it cannot run the file at all.
 */
async function applyGlobals(
  path: string,
  target: RestoreTarget,
  file: string,
  log: (line: string) => void,
  secrets: readonly (string | undefined)[],
  signal?: AbortSignal,
): Promise<void> {
  const args = ['-X', '-q', '--host', target.host, '--port', String(target.port), '--username', target.username, '--no-password',
    '--dbname', 'postgres', '-f', file];
  const { child, exit } = startChild(path, args, childEnv({ PGPASSWORD: target.password, PGCONNECT_TIMEOUT: '10', ...pgTlsEnv(targetTls(target)) }), signal);
  child.stdin?.end();
  const result = await exit;
  if (result.code !== 0 || result.spawnError) throw childFailure(`psql applying globals.sql on ${target.host}:${target.port}`, result, secrets, signal, '', target);
  const errors = result.stderr.split('\n').filter((line) => line.includes('ERROR:'));
  log(`globals.sql applied${errors.length > 0 ? ` with ${errors.length} statement(s) skipped:` : ''}`);
  for (const line of errors.slice(0, 10)) log(`  ${redact(line.replace(/^.*?ERROR:\s*/, ''), secrets)}`);
}

async function withMysql<T>(
  target: RestoreTarget,
  database: string,
  secrets: readonly (string | undefined)[],
  fn: (connection: mysql.Connection) => Promise<T>,
): Promise<T> {
  const tls = targetTls(target);
  const connect = (ssl: mysql.ConnectionOptions['ssl']) => mysql.createConnection({
    host: target.host, port: target.port, user: target.username, password: target.password, connectTimeout: CONNECT_TIMEOUT_MS, ssl,
  });
  let connection: mysql.Connection;
  try {
    // verifyIdentity: mysql2 checks the host name only when asked.
    const ssl = tls.mode === 'disable' ? undefined
      : tls.mode === 'verify-full' ? { ca: caPem(target, secrets), rejectUnauthorized: true, verifyIdentity: true }
        : { rejectUnauthorized: false, verifyIdentity: false };
    connection = await connect(ssl).catch((error: { code?: string }) => {
      if (tls.mode === 'prefer' && error.code === 'HANDSHAKE_NO_SSL_SUPPORT') return connect(undefined);
      throw error;
    });
  } catch (error) {
    throw connectFailure(target, database, error, secrets);
  }
  try {
    return await fn(connection);
  } finally {
    await connection.end().catch(() => undefined);
  }
}

async function inspectMysql(target: RestoreTarget, database: string, secrets: readonly (string | undefined)[]): Promise<TargetState> {
  return withMysql(target, database, secrets, async (connection) => {
    const [schemata] = await connection.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
    if ((schemata as unknown[]).length === 0) return { exists: false, relations: [] };
    const [tables] = await connection.query(
      'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME', [database]);
    return { exists: true, relations: (tables as { name: string }[]).map((row) => `${database}.${row.name}`) };
  });
}

async function dropMysqlDatabase(target: RestoreTarget, database: string, secrets: readonly (string | undefined)[]): Promise<void> {
  await withMysql(target, database, secrets, async (connection) => {
    try {
      await connection.query(`DROP DATABASE IF EXISTS \`${database.replaceAll('`', '``')}\``);
    } catch (error) {
      throw restoreError('RestoreFailed', redact(`cannot drop database ${database} on ${target.host}:${target.port}: ${(error as Error).message}`, secrets));
    }
  });
}

/**
 * The mysql/mariadb client's argv (no password: it travels in MYSQL_PWD); the TLS flags for the
 * client's flavour (MySQL's and MariaDB's take different ones).
 */
export function mysqlClientArgs(
  target: Pick<RestoreTarget, 'host' | 'port' | 'username' | 'tls'>,
  flavor: 'mysql' | 'mariadb' = 'mariadb',
): string[] {
  return [
    '--no-defaults', '--protocol=TCP', '--host', target.host, '--port', String(target.port), '--user', target.username,
    '--batch', '--default-character-set=utf8mb4', '--max-allowed-packet=1G',
    ...(target.tls ? mysqlTlsArgs(flavor, target.tls) : []),
  ];
}

/** Which project built a mysql/mariadb client: `mysql  Ver 8.4…` is Oracle's, anything saying MariaDB is MariaDB's. */
function clientFlavor(path: string): 'mysql' | 'mariadb' {
  const version = spawnSync(path, ['--version'], { encoding: 'utf8', env: childEnv({}), timeout: 10_000 });
  return /mariadb/i.test(`${path.slice(path.lastIndexOf('/') + 1)} ${version.stdout ?? ''}`) ? 'mariadb' : 'mysql';
}

/** Streams the artifact through the decompressor into the client, with back-pressure; waits for both. */
async function mysqlRestore(
  path: string,
  target: RestoreTarget,
  item: Planned,
  progress: ProgressMeter,
  secrets: readonly (string | undefined)[],
  signal?: AbortSignal,
): Promise<void> {
  const method = item.artifact.compression.split(':')[0];
  const decompress: Transform[] = method === 'zstd'
    ? [createZstdDecompress({ chunkSize: DECOMPRESS_CHUNK_BYTES })]
    : method === 'gzip'
      ? [createGunzip({ chunkSize: DECOMPRESS_CHUNK_BYTES })]
      : method === 'none' ? [] : (() => {
        throw restoreError('InvalidInput', `${item.artifact.key}: unknown compression ${item.artifact.compression}`);
      })();
  const tls = targetTls(target);
  const { child, exit } = startChild(path, mysqlClientArgs({ ...target, tls }, clientFlavor(path)), childEnv({ MYSQL_PWD: target.password }), signal);
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      progress.add(chunk.length);
      callback(null, chunk);
    },
  });
  const streams: (Readable | Transform | Writable)[] = [createReadStream(item.file), meter, ...decompress, child.stdin as Writable];
  // The client may exit early (a failed statement): the pipe then fails with EPIPE; the exit code tells why.
  const piped = (pipeline as (...s: unknown[]) => Promise<void>)(...streams).then(() => undefined, (error: Error) => error);
  const [result, pipeError] = await Promise.all([exit, piped]);
  const label = `${path.slice(path.lastIndexOf('/') + 1)} restoring ${item.database} on ${target.host}:${target.port}`;
  if (result.code !== 0 || result.spawnError) throw childFailure(label, result, secrets, signal, '', target);
  if (pipeError) throw restoreError('RestoreFailed', redact(`${label}: reading ${item.artifact.key} failed: ${pipeError.message}`, secrets));
}
