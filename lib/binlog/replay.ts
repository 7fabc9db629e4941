/**
 * Replays archived binary logs onto a restored server: the files a replay from the base's
 * coordinates needs (lib/binlog/archive-read.ts), downloaded and checked against their index
 * entry's SHA-256, then `mariadb-binlog [--start-position] [--stop-datetime] [--database] files… |
 * mariadb --binary-mode`, the engine's own tools, exactly as a person would run them by hand.
 *
 * `--stop-datetime` is exclusive (the first event at or after it is not applied) and read in the
 * tool's local time: the tools run with TZ=UTC. Replaying GTIDs the target already has is
 * silently skipped by the server: replay into a server restored from the base, nothing else.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMeter } from '../util/digest-meter';
import { readBinlogArchive, binlogChain, type ArchivedBinlog, type BinlogArchive } from './archive-read';

export interface ReplayTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
}

export interface ReplayInput {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: string;
  /** `mariadb-binlog` or `mysqlbinlog` (engine.binlogTools.binlogClient). */
  readonly binlogClient: string;
  /** `mariadb` or `mysql`. */
  readonly sqlClient: string;
  /** The base's coordinates: the replay starts there. */
  readonly from: { readonly file: string; readonly position: number };
  /** Events at or after this time are not applied (`--stop-datetime`, whole seconds); 'latest': the archive's end. */
  readonly stopAt: Date | 'latest';
  readonly target: ReplayTarget;
  /** Only this database's events (`--database`): a logical base's coordinates are its own database's. */
  readonly database?: string;
  /** Where the files are downloaded (created when missing). */
  readonly scratchDir: string;
  /** The archive as already read (a restore plans first, then replays). @default - read now */
  readonly archive?: BinlogArchive;
  readonly signal?: AbortSignal;
}

export interface ReplayResult {
  readonly files: string[];
  /** Bytes of binary log read (from the start position on). */
  readonly bytes: number;
  readonly seconds: number;
}

/** The replay's error: which step, which file, the tool's last lines. */
export function replayError(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, { cause }), { name: 'ReplayFailed' });
}

/**
 * The files of the chain from `from` that a replay up to `stopAt` reads: through the first whose
 * last event is at or after it (a later file holds only later events).
 */
export function filesToReplay(files: readonly ArchivedBinlog[], stopAt: Date | 'latest'): ArchivedBinlog[] {
  if (stopAt === 'latest') return [...files];
  const chosen: ArchivedBinlog[] = [];
  for (const file of files) {
    chosen.push(file);
    const last = file.facts.lastEventAt ? Date.parse(file.facts.lastEventAt) : undefined;
    if (last !== undefined && last >= stopAt.getTime()) break;
  }
  return chosen;
}

/** `--stop-datetime`'s value: UTC, whole seconds (the binary log's resolution), rounded up. */
export function stopDatetime(at: Date): string {
  const seconds = Math.ceil(at.getTime() / 1000);
  return new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** The binlog client's argv (files last). */
export function replayArgs(input: { readonly startPosition?: number; readonly stopAt: Date | 'latest'; readonly database?: string; readonly files: readonly string[] }): string[] {
  return [
    '--no-defaults',
    ...(input.startPosition !== undefined && input.startPosition > 4 ? [`--start-position=${input.startPosition}`] : []),
    ...(input.stopAt === 'latest' ? [] : [`--stop-datetime=${stopDatetime(input.stopAt)}`]),
    ...(input.database !== undefined ? [`--database=${input.database}`] : []),
    ...input.files,
  ];
}

/** The SQL client's argv; the password travels in MYSQL_PWD. */
export function replaySqlArgs(target: ReplayTarget): string[] {
  return ['--no-defaults', '--protocol=TCP', '-h', target.host, '-P', String(target.port), '-u', target.user, '--binary-mode'];
}

async function downloadFile(s3: S3Client, bucket: string, file: ArchivedBinlog, path: string, signal?: AbortSignal): Promise<void> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: file.key, VersionId: file.versionId }), { abortSignal: signal });
  const meter = new DigestMeter();
  await pipeline(object.Body as Readable, meter, createWriteStream(path, { mode: 0o600 }), { signal });
  const { bytes } = meter;
  const sha256 = meter.sha256();
  if (sha256 !== file.facts.sha256 || bytes !== file.facts.bytes) {
    throw Object.assign(new Error(
      `s3://${bucket}/${file.key}: ${bytes} bytes with SHA-256 ${sha256}, but the archive recorded ${file.facts.bytes} bytes with ${file.facts.sha256}: ` +
      'the archived binary log changed or is damaged; nothing was replayed from it',
    ), { name: 'ArchiveCorrupt' });
  }
}

/** Downloads what the replay needs and checks each file. */
export async function downloadBinlogs(s3: S3Client, bucket: string, files: readonly ArchivedBinlog[], dir: string, signal?: AbortSignal): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (const file of files) {
    const path = join(dir, file.file);
    await downloadFile(s3, bucket, file, path, signal);
    paths.push(path);
  }
  return paths;
}

/** `binlogClient args | sqlClient`, both checked; rejects with the failing tool's last lines. */
export function pipeReplay(binlogClient: string, args: readonly string[], sqlClient: string, target: ReplayTarget, signal?: AbortSignal): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC' };
  delete env.MYSQL_PWD;
  const sqlEnv: NodeJS.ProcessEnv = { ...env, ...(target.password !== undefined ? { MYSQL_PWD: target.password } : {}) };
  return new Promise((resolve, reject) => {
    const reader = spawn(binlogClient, args, { env, stdio: ['ignore', 'pipe', 'pipe'], signal });
    // The reader's stdout is the writer's stdin, a kernel pipe between the two as in a shell: no byte passes through Node.
    const writer = spawn(sqlClient, replaySqlArgs(target), { env: sqlEnv, stdio: [reader.stdout, 'ignore', 'pipe'], signal });
    reader.stdout.destroy();
    const errors = { reader: '', writer: '' };
    reader.stderr.on('data', (chunk: Buffer) => (errors.reader = (errors.reader + chunk.toString()).slice(-4000)));
    writer.stderr.on('data', (chunk: Buffer) => (errors.writer = (errors.writer + chunk.toString()).slice(-4000)));
    let pending = 2;
    let failure: Error | undefined;
    const done = (who: string, code: number | null, signalName: NodeJS.Signals | null, text: string) => {
      if ((code !== 0 || signalName) && !failure) {
        const last = text.trim().split('\n').slice(-5).join('\n');
        failure = replayError(`${who} failed (${signalName ?? `exit ${code}`}): ${last || '(no output)'}`);
        if (who === sqlClient) reader.kill('SIGTERM');
      }
      pending -= 1;
      if (pending > 0) return;
      if (failure) reject(failure);
      else resolve();
    };
    reader.on('error', (error) => { failure ??= replayError(`${binlogClient} did not start: ${error.message}`, error); });
    writer.on('error', (error) => { failure ??= replayError(`${sqlClient} did not start: ${error.message}`, error); });
    reader.on('close', (code, name) => done(binlogClient, code, name, errors.reader));
    writer.on('close', (code, name) => done(sqlClient, code, name, errors.writer));
  });
}

/** Downloads the chain from the base's coordinates up to `stopAt` and replays it onto `target`. */
export async function replayArchivedBinlogs(input: ReplayInput): Promise<ReplayResult> {
  const started = Date.now();
  const archive = input.archive ?? (await readBinlogArchive({ s3: input.s3, bucket: input.bucket, source: input.source, signal: input.signal }));
  const chain = binlogChain(archive, input.from.file);
  if (chain.files.length === 0) {
    throw replayError(`the archive of ${input.source} has no ${input.from.file}, where the base's coordinates start (${chain.end}); nothing was replayed`);
  }
  const files = filesToReplay(chain.files, input.stopAt);
  const paths = await downloadBinlogs(input.s3, input.bucket, files, input.scratchDir, input.signal);
  await pipeReplay(input.binlogClient, replayArgs({ startPosition: input.from.position, stopAt: input.stopAt, database: input.database, files: paths }),
    input.sqlClient, input.target, input.signal);
  const bytes = files.reduce((sum, file) => sum + file.facts.bytes, 0) - Math.max(0, input.from.position - 4);
  return { files: files.map((file) => file.file), bytes, seconds: (Date.now() - started) / 1000 };
}
