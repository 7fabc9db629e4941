/**
 * The PostgreSQL archive checks, fed from the verifier's single read of the object:
 *   - `pg_restore -l` lists the TOC (object counts, the tables with data); it reads only the
 *     header and the TOC and exits, and returns 0 even for truncated or corrupted archives;
 *   - `pg_restore -f /dev/null` reads and decompresses every entry to the end: the check that
 *     catches truncation and corruption inside the data.
 * Both read the archive on stdin; the fan-out drops the first when it exits early (EPIPE).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { lifeboatError } from '../domain/errors';
import { CLIENT_PIPE_BUFFER_BYTES, withStdioBuffers } from '../process/stdio-buffers';
import { WritableConsumer, type Consumer } from './fan-out';

/** Directory holding pg_restore; when unset, pg_restore is taken from PATH. */
export const PG_BIN_DIR_ENV = 'LIFEBOAT_PG_BIN_DIR';

/** Where pg_restore is: in `binDir` when given, else the first executable on PATH. Throws `ClientNotFound`. */
export function resolvePgRestore(binDir?: string, pathEnv = process.env.PATH ?? ''): string {
  const candidates = binDir ? [join(binDir, 'pg_restore')] : pathEnv.split(delimiter).filter(Boolean).map((dir) => join(dir, 'pg_restore'));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next candidate
    }
  }
  throw lifeboatError('ClientNotFound', `pg_restore not found ${binDir ? `in ${binDir} (${PG_BIN_DIR_ENV})` : 'on PATH'}`);
}

/** `pg_restore (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` → 15; `… 9.6.24` → 9. */
export function parsePgRestoreMajor(versionLine: string): number | undefined {
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(versionLine);
  if (!match) return undefined;
  return Number(match[1]);
}

/** The environment of pg_restore: messages in English (they end up in verdicts), nothing else inherited. */
function childEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' };
}

export async function pgRestoreMajor(path: string): Promise<number> {
  const { code, stdout, stderr } = await collect(spawn(path, ['--version'], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
  const major = parsePgRestoreMajor(stdout);
  if (code !== 0 || major === undefined) {
    throw lifeboatError('ClientNotFound', `${path} --version failed (exit ${code}): ${(stderr || stdout).trim().slice(0, 300)}`);
  }
  return major;
}

export interface PgArchiveResult {
  /** `pg_restore -l` output when it exited 0. */
  readonly listing?: string;
  /** Why the TOC could not be read (pg_restore -l's exit code and last lines). */
  readonly tocError?: string;
  /** Why the full read failed (pg_restore -f /dev/null's exit code and last lines). */
  readonly fullReadError?: string;
}

export interface PgArchiveChecks {
  readonly consumers: readonly Consumer[];
  /** Waits for both processes after the input has ended. */
  result(): Promise<PgArchiveResult>;
  /** Stops both processes (the read failed or was aborted). */
  kill(): void;
}

export function startPgArchiveChecks(pgRestorePath: string): PgArchiveChecks {
  // pg_restore reads the archive from stdin with stdio: 1 MiB reads instead of 4 KiB ones.
  const spawnRestore = (args: string[], stdout: 'pipe' | 'ignore') =>
    spawn(...withStdioBuffers(pgRestorePath, args, { input: CLIENT_PIPE_BUFFER_BYTES }), { env: childEnv(), stdio: ['pipe', stdout, 'pipe'] });
  const toc = spawnRestore(['--list'], 'pipe');
  const full = spawnRestore(['--file=/dev/null'], 'ignore');
  const tocDone = collect(toc);
  const fullDone = collect(full);
  const children = [toc, full];
  return {
    consumers: [new WritableConsumer(toc.stdin!), new WritableConsumer(full.stdin!)],
    async result(): Promise<PgArchiveResult> {
      const [listed, read] = await Promise.all([tocDone, fullDone]);
      return {
        ...(listed.code === 0 ? { listing: listed.stdout } : { tocError: failure('pg_restore --list', listed) }),
        ...(read.code === 0 ? {} : { fullReadError: failure('pg_restore --file=/dev/null', read) }),
      };
    },
    kill(): void {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

interface Collected {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly spawnError?: Error;
}

function failure(label: string, result: Collected): string {
  if (result.spawnError) return `${label} could not run: ${result.spawnError.message}`;
  const how = result.signal ? `was killed by ${result.signal}` : `exited ${result.code}`;
  const lines = result.stderr.trim().split('\n').filter(Boolean).slice(-3).join(' / ');
  return `${label} ${how}${lines ? `: ${lines}` : ''}`;
}

/** Waits for the process and its pipes; keeps all of stdout and the last 8 KB of stderr. */
function collect(child: ChildProcess): Promise<Collected> {
  return new Promise((resolve) => {
    const stdout: Buffer[] = [];
    let stderr = '';
    let spawnError: Error | undefined;
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-8192);
    });
    child.on('error', (error) => {
      // A process that could not start emits no 'close' of its own.
      spawnError = error;
      resolve({ code: null, signal: null, stdout: '', stderr, spawnError });
    });
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr, ...(spawnError ? { spawnError } : {}) }),
    );
  });
}
