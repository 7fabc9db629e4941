/**
 * The binary-log archiver (one bounded run per schedule slot): checks the server (preflight),
 * lists its binary logs, reads every file from the first one the archive still needs with the
 * engine's own client over the replication protocol (`mariadb-binlog` / `mysqlbinlog
 * --read-from-remote-server --raw`, one file per call: it stops at that file's current end, so each
 * run is bounded and the next one resumes; the scratch space holds one file at a time), and stores:
 * - each completed file once, immutably, at `binlog/<source>/files/<file>` with its index entry
 *   (size, SHA-256, first and last event, how it ended) — a file already stored with the same
 *   digest is left alone, one with another digest fails the run (`ArchiveConflict`);
 * - the file still being written as its own object per run (`partial/<file>/<runId>`), whole
 *   events only, so the RPO achieved is the cadence, not the rotation size;
 * - the run's state (`state/<runId>.json`), last, so that it names only what is stored.
 * When the server no longer has a file the archive lacks (purged before it was archived) the
 * run stores what the server still has, records the gap and fails `BinlogGap` naming it.
 *
 * Nothing local is trusted across runs: a run killed mid-file leaves only objects that are
 * whole (each stored under the commit protocol) and the next run re-reads from the first file
 * the archive lacks.
 */
import { HeadObjectCommand, type ObjectLockMode, type S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { readBinlogArchive, type BinlogArchive } from '../lib/binlog/archive-read';
import {
  BINLOG_DOCUMENT_SCHEMA_VERSION, binlogSequence, binlogSibling, serializeBinlogIndexEntry, serializeBinlogState,
  type BinlogFileFacts, type BinlogIndexEntry, type BinlogState,
} from '../lib/binlog/documents';
import { BinlogScanner, type BinlogScan } from '../lib/binlog/events';
import { binlogFileKey, binlogIndexKey, binlogPartialKey, binlogStateKey } from '../lib/domain/layout';
import { lifeboatError } from '../lib/domain/errors';
import { mysqlTlsArgs } from '../lib/domain/tls';
import type { TlsOptions } from '../lib/domain/tls';
import type { BinlogServerFacts } from './engines/mysql-binlog-preflight';
import { streamToS3 } from './upload';

export interface ArchiveBinlogsInput {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: string;
  readonly engine: string;
  /** The client binary (`mariadb-binlog`, `mysqlbinlog`, or a path). */
  readonly binlogClient: string;
  readonly connection: { readonly host: string; readonly port: number; readonly username: string; readonly password?: string; readonly tls?: TlsOptions };
  /** What the preflight read of the server (worker/binlog-preflight.ts), files included. */
  readonly server: BinlogServerFacts;
  readonly runId: string;
  readonly objectLock?: { readonly mode: ObjectLockMode; readonly retentionSeconds: number };
  /** The client is stopped after this long (a run is bounded; the next one resumes). @default 600 */
  readonly maxSeconds?: number;
  /** Scratch directory for the files read. @default - a new temp dir, removed after the run */
  readonly scratchDir?: string;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export interface ArchiveBinlogsResult {
  readonly state: BinlogState;
  readonly stateKey: string;
}

/** The error of a run whose archive has a hole: what is missing and what to do. */
function gapError(source: string, gap: NonNullable<BinlogState['gap']>): Error {
  const missing = gap.missing.length > 3 ? `${gap.missing.slice(0, 3).join(', ')} … (${gap.missing.length} files)` : gap.missing.join(', ');
  return lifeboatError('BinlogGap',
    `${source}: the server no longer has ${missing}, which the archive lacks (its oldest file is ${gap.firstOnServer}): ` +
    `no restore can cross from before ${gap.missing[0]} to after it. The archive goes on from ${gap.firstOnServer}; ` +
    'a new base (a dump or a physical full) makes the window whole again from its coordinates on. ' +
    "Raise the server's binlog retention (binlog_expire_logs_seconds) so that it covers several archiver intervals");
}

/** The first file the archive needs next: after the newest completed file, else the server's oldest. */
export function nextNeeded(archive: BinlogArchive, serverFiles: readonly { file: string }[]): string | undefined {
  const newest = archive.entries.at(-1);
  if (newest) return newest.facts.ends === 'rotate' && newest.facts.next ? newest.facts.next : binlogSibling(newest.file, 1);
  const partial = archive.newestState?.partial;
  if (partial) return partial.file;
  return serverFiles[0]?.file;
}

/** Files the archive needs that the server no longer has, oldest first; empty when none. */
export function purgedFiles(needed: string, serverFiles: readonly { file: string }[]): string[] {
  const first = serverFiles[0]?.file;
  if (!first) return [];
  const missing: string[] = [];
  for (let sequence = binlogSequence(needed); sequence < binlogSequence(first); sequence++) {
    missing.push(binlogSibling(needed, sequence - binlogSequence(needed)));
  }
  return missing;
}

/** The client's argv for one file (without --to-last-log it reads just that one, to its current end): the password is in MYSQL_PWD. */
export function binlogReadArgs(input: { readonly connection: ArchiveBinlogsInput['connection']; readonly flavor: 'mysql' | 'mariadb'; readonly dir: string; readonly from: string }): string[] {
  const { connection } = input;
  return [
    '--no-defaults',
    '--read-from-remote-server',
    '--raw',
    '--protocol=TCP',
    `--host=${connection.host}`,
    `--port=${connection.port}`,
    `--user=${connection.username}`,
    ...mysqlTlsArgs(input.flavor, connection.tls ?? { mode: 'prefer' }),
    `--result-file=${input.dir}/`,
    input.from,
  ];
}

function readFile(input: ArchiveBinlogsInput, dir: string, from: string, remainingMs: number): Promise<{ code: number | null; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC' };
  delete env.MYSQL_PWD;
  if (input.connection.password !== undefined) env.MYSQL_PWD = input.connection.password;
  return new Promise((resolve, reject) => {
    const child = spawn(input.binlogClient, binlogReadArgs({ connection: input.connection, flavor: input.server.flavor, dir, from }), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const stop = () => child.kill('SIGTERM');
    const timer = setTimeout(stop, Math.max(1_000, remainingMs));
    input.signal?.addEventListener('abort', stop, { once: true });
    child.on('error', (error) => { clearTimeout(timer); reject(lifeboatError('ArchiveFailed', `${input.binlogClient} did not start: ${error.message}`, error)); });
    child.on('close', (code) => {
      clearTimeout(timer);
      input.signal?.removeEventListener('abort', stop);
      resolve({ code, stderr: input.connection.password ? stderr.replaceAll(input.connection.password, '********') : stderr });
    });
  });
}

async function scanFile(path: string, file: string): Promise<BinlogScan> {
  const scanner = new BinlogScanner(file);
  for await (const chunk of createReadStream(path)) scanner.push(chunk as Buffer);
  return scanner.finish();
}

function lockOf(input: ArchiveBinlogsInput, now: Date): { objectLockMode?: ObjectLockMode; objectLockRetainUntil?: Date } {
  if (!input.objectLock) return {};
  return { objectLockMode: input.objectLock.mode, objectLockRetainUntil: new Date(now.getTime() + input.objectLock.retentionSeconds * 1000) };
}

async function putFile(input: ArchiveBinlogsInput, key: string, path: string, bytes: number, now: Date): Promise<{ versionId?: string; sha256: string }> {
  const stream = createReadStream(path, { end: Math.max(0, bytes - 1) });
  const result = await streamToS3({
    client: input.s3, bucket: input.bucket, key, body: stream, completion: Promise.resolve(), sizeHintBytes: bytes, signal: input.signal, ...lockOf(input, now),
  });
  return { ...(result.versionId ? { versionId: result.versionId } : {}), sha256: result.sha256 };
}

async function putDocument(input: ArchiveBinlogsInput, key: string, text: string, now: Date): Promise<string | undefined> {
  const result = await streamToS3({
    client: input.s3, bucket: input.bucket, key, body: Readable.from([Buffer.from(text)]), completion: Promise.resolve(),
    contentType: 'application/json', signal: input.signal, ...lockOf(input, now),
  });
  return result.versionId;
}

async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'NotFound' || name === 'NoSuchKey') return false;
    throw error;
  }
}

/** One run of the archiver (module comment). Rejects `BinlogGap` after storing what it could. */
export async function archiveBinlogs(input: ArchiveBinlogsInput): Promise<ArchiveBinlogsResult> {
  const now = input.now ?? (() => new Date());
  const log = input.log ?? (() => undefined);
  const startedAt = now();
  const serverFiles = input.server.files;
  if (serverFiles.length === 0) throw lifeboatError('BinlogDisabled', `${input.source}: SHOW BINARY LOGS lists no file: the server writes no binary log`);
  const archive = await readBinlogArchive({ s3: input.s3, bucket: input.bucket, source: input.source, signal: input.signal });
  const known = new Map<string, BinlogIndexEntry>(archive.entries.map((entry) => [entry.file, entry]));
  const needed = nextNeeded(archive, serverFiles) as string;
  const missing = purgedFiles(needed, serverFiles);
  const gap = missing.length > 0
    ? { missing, ...(archive.entries.at(-1) ? { after: archive.entries.at(-1)?.file } : {}), firstOnServer: serverFiles[0]?.file as string }
    : undefined;
  const from = gap ? gap.firstOnServer : needed;
  if (gap) log(`BinlogGap: the server no longer has ${missing.join(', ')}; archiving from ${from}`);

  const dir = input.scratchDir ?? mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'lifeboat-binlog-'));
  const stored: string[] = [];
  let partial: BinlogState['partial'];
  try {
    // One file at a time, each removed once stored: the scratch space holds one binary log (at most
    // max_binlog_size), however many the server kept. The run stops when its time is up; the next resumes.
    const deadline = Date.now() + (input.maxSeconds ?? 600) * 1000;
    const lastOnServer = serverFiles.at(-1)?.file as string;
    const names = serverFiles.map((file) => file.file).filter((file) => binlogSequence(file) >= binlogSequence(from));
    for (const name of names) {
      if (Date.now() >= deadline || input.signal?.aborted) {
        log(`stopping before ${name}: ${input.signal?.aborted ? 'the run was stopped' : 'the run\'s time is up'}; the next run resumes there`);
        break;
      }
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const read = await readFile(input, dir, name, deadline - Date.now());
      const path = join(dir, name);
      const why = `${input.binlogClient} ${read.code === 0 ? 'read' : `stopped (exit ${read.code})`} on ${name}: ${read.stderr.trim().split('\n').slice(-3).join(' ') || '(no output)'}`;
      if (!existsSync(path)) {
        // Nothing of this file: fail the run only if it stored nothing at all.
        if (stored.length === 0) throw lifeboatError('ArchiveFailed', `${why}; nothing was read from ${input.connection.host}:${input.connection.port}`);
        log(`${why}; the next run resumes with it`);
        break;
      }
      // A client that stopped early (killed, a network cut) still wrote whole events: the file is judged on its own.
      if (read.code !== 0) log(`${why}; storing what it read`);
      const scan = await scanFile(path, name);
      if (scan.problems.length > 0 && scan.wholeBytes === 0) throw lifeboatError('BinlogCorrupt', `${input.source}: ${scan.problems.join('; ')}`);
      // Complete: whole, and ended by a Rotate or a Stop — or, after a crash (no end event), the
      // server has moved on and lists the file at exactly this size. A file cut mid-event (the
      // client killed) is never complete: its whole events are stored as a partial.
      const laterOnServer = binlogSequence(name) < binlogSequence(lastOnServer);
      const serverBytes = serverFiles.find((file) => file.file === name)?.bytes;
      const whole = scan.problems.length === 0 && scan.wholeBytes === scan.bytes;
      const complete = whole && (scan.ends !== 'none' || (laterOnServer && serverBytes === scan.bytes));
      if (complete) {
        const previous = known.get(name);
        if (previous) {
          if (previous.facts.sha256 !== scan.sha256) {
            throw lifeboatError('ArchiveConflict', `${input.source}: ${name} is archived with SHA-256 ${previous.facts.sha256} (${previous.facts.bytes} bytes), ` +
              `and the server now sends ${scan.sha256} (${scan.bytes} bytes): the archived file is kept, nothing was overwritten. A server whose binary logs were reset (RESET MASTER) starts a new sequence: archive it under another source name`);
          }
          if (read.code !== 0) break;
          continue;
        }
        const key = binlogFileKey(input.source, name);
        const entryKey = binlogIndexKey(input.source, name);
        // A file stored by a run killed before its index entry: stored once, it is never put again.
        const put = (await exists(input.s3, input.bucket, key)) ? undefined : await putFile(input, key, path, scan.bytes, now());
        const entry: BinlogIndexEntry = {
          schemaVersion: BINLOG_DOCUMENT_SCHEMA_VERSION,
          source: input.source,
          file: name,
          sequence: binlogSequence(name),
          key,
          ...(put?.versionId ? { versionId: put.versionId } : {}),
          archivedAt: now().toISOString(),
          runId: input.runId,
          facts: factsOf(scan),
        };
        await putDocument(input, entryKey, serializeBinlogIndexEntry(entry), now());
        known.set(name, entry);
        stored.push(name);
        log(`stored ${name} (${scan.bytes} bytes, ${scan.events} events, ends by ${scan.ends})`);
        if (read.code !== 0) break;
        continue;
      }
      // The active file (or a damaged tail): whole events only, as this run saw it.
      if (scan.wholeBytes < scan.bytes) truncateSync(path, scan.wholeBytes);
      const kept = whole ? scan : await scanFile(path, name);
      if (!whole) log(`${name}: ${scan.problems.join('; ') || `cut after ${scan.wholeBytes} of ${scan.bytes} bytes`}; stored through ${kept.bytes} bytes as partial`);
      const key = binlogPartialKey(input.source, name, input.runId);
      const put = await putFile(input, key, path, kept.bytes, now());
      partial = { file: name, key, ...(put.versionId ? { versionId: put.versionId } : {}), facts: factsOf(kept) };
      log(`stored ${laterOnServer ? '' : 'the active '}${name} through ${kept.bytes} bytes as partial`);
      break;
    }
  } finally {
    if (!input.scratchDir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }

  const entries = [...known.values()].sort((a, b) => a.sequence - b.sequence);
  const times = [...entries.map((entry) => entry.facts.lastEventAt), partial?.facts.lastEventAt].filter((t): t is string => t !== undefined).sort();
  const activeOnServer = serverFiles.at(-1);
  const caughtUp = partial !== undefined && activeOnServer !== undefined && partial.file === activeOnServer.file && partial.facts.bytes >= activeOnServer.bytes;
  const state: BinlogState = {
    schemaVersion: BINLOG_DOCUMENT_SCHEMA_VERSION,
    source: input.source,
    engine: input.engine,
    runId: input.runId,
    startedAt: startedAt.toISOString(),
    finishedAt: now().toISOString(),
    serverFiles: serverFiles.map((file) => ({ file: file.file, bytes: file.bytes })),
    stored,
    ...(entries.at(-1) ? { archivedThrough: entries.at(-1)?.file } : {}),
    ...(partial ? { partial } : {}),
    ...(times.at(-1) ? { newestEventAt: times.at(-1) } : {}),
    ...(caughtUp ? { completeAsOf: startedAt.toISOString() } : {}),
    ...(gap ? { gap } : {}),
    outcome: gap ? 'BinlogGap' : 'ok',
  };
  const stateKey = binlogStateKey(input.source, input.runId);
  await putDocument(input, stateKey, serializeBinlogState(state), now());
  if (gap) throw gapError(input.source, gap);
  return { state, stateKey };
}

function factsOf(scan: BinlogScan): BinlogFileFacts {
  const { wholeBytes: _whole, problems: _problems, ...facts } = scan;
  return facts;
}
