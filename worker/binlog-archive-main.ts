/**
 * The binary-log archiver as a Fargate task (`node /app/binlog-archive.js`), started by its
 * schedule every `plan.archiveEverySeconds`: the preflight (worker/binlog-preflight.ts), then
 * one bounded archiving run (worker/binlog-archive.ts). Its run id is the time it starts
 * (archiver runs are not schedule slots: a retried or overlapping run must never write
 * another's objects).
 *
 * Exit codes: 0 archived, 1 failed (BinlogGap after storing what the server still had, a
 * preflight refusal, S3 or the server failing), 2 invalid environment.
 */
import type { ObjectLockMode, S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../lib/aws/s3-client';
import { BINLOG_ARCHIVE_ENV } from '../lib/binlog/archive-env';
import { ENGINE_NAMES, engineOf } from '../lib/engines/registry';
import { formatRunId } from '../lib/domain/run-id';
import type { TlsOptions } from '../lib/domain/tls';
import { archiveBinlogs, type ArchiveBinlogsResult } from './binlog-archive';
import { binlogPreflight } from './engines/mysql-binlog-preflight';
import { EnvReader } from './env-reader';
import { tlsFrom } from './job';
import { containerMain, exitWithMain } from './signals';

export interface BinlogArchiveJob {
  readonly source: string;
  readonly engine: string;
  readonly binlogClient: string;
  readonly connection: { readonly host: string; readonly port: number; readonly username: string; readonly password?: string; readonly tls?: TlsOptions };
  readonly bucket: string;
  readonly region: string;
  readonly s3Endpoint?: string;
  readonly objectLock?: { readonly mode: ObjectLockMode; readonly retentionSeconds: number };
  readonly minServerRetentionSeconds: number;
}

/** `mysqlbinlog` → LIFEBOAT_MYSQLBINLOG: where the image says a tool of that name is. */
export function toolPathEnv(tool: string): string {
  return `LIFEBOAT_${tool.toUpperCase().replaceAll('-', '_')}`;
}

/** Reads the job, reporting every missing or invalid variable at once (`InvalidInput`). */
export function binlogArchiveJobFromEnv(env: Record<string, string | undefined>): BinlogArchiveJob {
  const E = BINLOG_ARCHIVE_ENV;
  const read = new EnvReader(env, 'binlog archiver');
  const source = read.required(E.source);
  read.check(!source || /^[a-z0-9-]+$/.test(source), `${E.source}: "${source}" is not valid (valid: a-z, 0-9 and "-")`);
  const engine = read.required(E.engine);
  const tools = ENGINE_NAMES.includes(engine as never) ? engineOf(engine).binlogTools : undefined;
  read.check(!engine || tools !== undefined, `${E.engine}: "${engine}" archives no binary logs (valid: ${ENGINE_NAMES.filter((name) => engineOf(name).binlogTools).join(', ')})`);
  const host = read.required(E.host);
  const portText = read.optional(E.port) ?? '3306';
  const port = Number(portText);
  read.check(Number.isInteger(port) && port > 0 && port < 65_536, `${E.port}: "${portText}" is not valid (valid: a TCP port)`);
  const username = read.required(E.username);
  const bucket = read.required(E.bucket);
  const region = read.region();
  const mode = read.optional(E.objectLockMode)?.toUpperCase();
  const retentionText = read.optional(E.retentionSeconds);
  const retentionSeconds = Number(retentionText);
  let objectLock: BinlogArchiveJob['objectLock'];
  if (mode) {
    read.check(mode === 'GOVERNANCE' || mode === 'COMPLIANCE', `${E.objectLockMode}: "${mode}" is not valid (valid: GOVERNANCE, COMPLIANCE)`);
    read.check(Number.isInteger(retentionSeconds) && retentionSeconds > 0, `${E.retentionSeconds}: "${retentionText ?? ''}" is not valid (valid: whole seconds > 0)`);
    if ((mode === 'GOVERNANCE' || mode === 'COMPLIANCE') && retentionSeconds > 0) objectLock = { mode, retentionSeconds };
  }
  const minText = read.required(E.minServerRetentionSeconds);
  const minServerRetentionSeconds = Number(minText);
  read.check(!minText || (Number.isInteger(minServerRetentionSeconds) && minServerRetentionSeconds >= 0),
    `${E.minServerRetentionSeconds}: "${minText}" is not valid (valid: whole seconds)`);
  const tls = tlsFrom(env, host, read.problems);
  read.done();
  return {
    source,
    engine,
    // The image's own copy of the tool when it names one (LIFEBOAT_MYSQLBINLOG: Oracle's mysqlbinlog, apart from
    // MariaDB's, which is on PATH under the same name and reads only MariaDB).
    binlogClient: (tools ? read.optional(toolPathEnv(tools.binlogClient)) : undefined) ?? (tools?.binlogClient as string),
    connection: { host, port, username, ...(env[E.password] ? { password: env[E.password] } : {}), ...(tls ? { tls } : {}) },
    bucket,
    region,
    ...(read.optional(E.s3Endpoint) ? { s3Endpoint: read.optional(E.s3Endpoint) } : {}),
    ...(objectLock ? { objectLock } : {}),
    minServerRetentionSeconds,
  };
}

export interface BinlogArchiveOutcome {
  readonly code: number;
  readonly result?: ArchiveBinlogsResult;
  readonly error?: { readonly name: string; readonly message: string };
}

export interface BinlogArchiveDeps {
  readonly s3?: S3Client;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** The client binary (tests: a path). @default - the engine's, on PATH */
  readonly binlogClient?: string;
  readonly maxSeconds?: number;
}

/** One archiver run; never throws: the outcome carries the exit code and the error (its message never holds the password). */
export async function runBinlogArchiveJob(job: BinlogArchiveJob, deps: BinlogArchiveDeps = {}): Promise<BinlogArchiveOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const now = deps.now ?? (() => new Date());
  const s3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  const runId = formatRunId(now());
  const redact = (text: string) => (job.connection.password ? text.replaceAll(job.connection.password, '********') : text);
  try {
    const server = await binlogPreflight(
      { host: job.connection.host, port: job.connection.port, username: job.connection.username, password: job.connection.password, databases: [], tls: job.connection.tls },
      { source: job.source, minServerRetentionSeconds: job.minServerRetentionSeconds },
    );
    for (const warning of server.warnings) log(`warning: ${warning}`);
    log(`archiving ${job.source}: ${server.flavor} ${server.version}, binlog_format ${server.binlogFormat}, ${server.files.length} binary logs on the server` +
      `${server.gtid ? `, GTID ${server.gtid}` : ''}; run ${runId}`);
    const result = await archiveBinlogs({
      s3, bucket: job.bucket, source: job.source, engine: job.engine, binlogClient: deps.binlogClient ?? job.binlogClient,
      connection: job.connection, server, runId, ...(job.objectLock ? { objectLock: job.objectLock } : {}),
      ...(deps.maxSeconds !== undefined ? { maxSeconds: deps.maxSeconds } : {}), signal: deps.signal, log, now,
    });
    log(`archived through ${result.state.archivedThrough ?? '(no completed file)'}${result.state.partial ? `, active ${result.state.partial.file} to ${result.state.partial.facts.bytes} bytes` : ''}`);
    return { code: 0, result };
  } catch (error) {
    const { name, message } = error as Error;
    log(`${name}: ${redact(message)}`);
    return { code: 1, error: { name, message: redact(message) } };
  }
}

/** The container entrypoint (`node /app/binlog-archive.js`). */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: binlogArchiveJobFromEnv,
    what: 'the binary-log archiving run (the next run resumes from the first file not stored)',
    run: (job, signal) => runBinlogArchiveJob(job, { signal }),
    summary: (outcome) => (outcome.result ? { state: outcome.result.stateKey, outcome: outcome.result.state.outcome } : outcome.error),
  });
}

exitWithMain(module, main);
