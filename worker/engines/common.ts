/**
 * Plumbing shared by the engines: finding and probing clients, running a dump client into a
 * stream, keeping secrets out of messages, compression specs and table exclusion patterns.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EngineError, type ArtifactInfo, type DumpProcess, type RowCountConsistency, type TableCount } from './types';

import { redact } from '../../lib/domain/errors';
import { classifyTlsFailure, type TlsFailure } from '../../lib/domain/tls';
import { withStdioBuffers } from '../../lib/process/stdio-buffers';

export { redact };

/** Keeps the last lines of a child's stderr for the failure message. */
export class StderrTail {
  private text = '';

  constructor(private readonly maxChars = 4000) {}

  push(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-2 * this.maxChars);
  }

  lines(count = 10): string {
    return this.text.trim().split('\n').slice(-count).join('\n').slice(-this.maxChars);
  }
}

/**
 * The path to spawn for `tool`: in `binDir` when given, else the first executable on PATH.
 * Throws `ClientNotFound`.
 */
export function resolveClient(tool: string, binDir?: string, pathEnv = process.env.PATH ?? ''): string {
  const candidates = isAbsolute(tool)
    ? [tool]
    : binDir !== undefined
      ? [join(binDir, tool)]
      : pathEnv.split(delimiter).filter(Boolean).map((dir) => join(dir, tool));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next candidate
    }
  }
  throw new EngineError('ClientNotFound', `${tool} not found ${binDir !== undefined ? `in ${binDir}` : 'on PATH'}`);
}

/** Like `resolveClient` but undefined instead of an error. */
export function findClient(tool: string, binDir?: string): string | undefined {
  try {
    return resolveClient(tool, binDir);
  } catch {
    return undefined;
  }
}

/**
 * The environment of every child: no inherited PG or MYSQL variables and no HOME (no
 * ~/.pgpass or ~/.my.cnf) can change what is dumped; only what is passed here.
 */
export function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

/** First line of `<client> --version`; `ClientNotFound` when it cannot be run. */
export function clientVersionLine(path: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, ['--version'], { env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.resume();
    child.on('error', (err) => reject(new EngineError('ClientNotFound', `cannot run ${path}: ${err.message}`)));
    child.on('close', (code) => {
      const line = stdout.trim().split('\n')[0] ?? '';
      if (code === 0 && line) resolve(line);
      else reject(new EngineError('ClientNotFound', `${path} --version exited with ${code}`));
    });
  });
}

export interface RunningClient {
  readonly child: ChildProcess;
  /**
   * Resolves when the client exited 0 and the pipe into `out` finished; rejects with
   * `DumpFailed` otherwise. Both are always waited for.
   */
  readonly done: Promise<void>;
}

export interface RunClientOptions {
  /** `pg_dump`, used in messages. */
  readonly label: string;
  readonly path: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Transforms between the client's stdout and `out` (e.g. a compressor). */
  readonly transforms?: readonly NodeJS.ReadWriteStream[];
  readonly out: Writable;
  readonly secrets: readonly (string | undefined)[];
  /** True once the caller asked to stop: the failure then says "killed". */
  readonly killed: () => boolean;
  /**
   * stdio buffer of the client's stdout, set through coreutils' `stdbuf` when it is on PATH
   * (lib/process/stdio-buffers).
   * @default - the client's own buffering
   */
  readonly stdoutBufferBytes?: number;
  /**
   * The error of a TLS failure the client's stderr names (lib/domain/tls.ts): `TlsRequired` or
   * `TlsVerifyFailed`, which are not retried, instead of `DumpFailed`, which is.
   * @default - every failure is DumpFailed
   */
  readonly tlsError?: (failure: TlsFailure) => EngineError;
}

/**
 * Spawns a dump client with stdout piped (with back-pressure) through `transforms` into `out`.
 * A reader that goes away early destroys the pipe: the client gets EPIPE/SIGPIPE and is sent
 * SIGTERM as well, and `done` rejects.
 */
export function runClient(opts: RunClientOptions): RunningClient {
  const stderr = new StderrTail();
  const [command, args] = withStdioBuffers(opts.path, opts.args, { output: opts.stdoutBufferBytes });
  const child = spawn(command, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));

  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; spawnError?: Error }>((resolve) => {
    child.once('error', (spawnError) => resolve({ code: null, signal: null, spawnError }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const streams = [child.stdout as Readable, ...(opts.transforms ?? []), opts.out] as const;
  const piped = (pipeline as (...s: unknown[]) => Promise<void>)(...streams).then(
    () => undefined,
    (err: Error) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return err;
    },
  );

  const done = Promise.all([exit, piped]).then(([{ code, signal, spawnError }, pipeError]) => {
    const tail = redact(stderr.lines(), opts.secrets);
    const detail = tail ? `: ${tail}` : '';
    if (spawnError) throw new EngineError('DumpFailed', redact(`cannot start ${opts.label}: ${spawnError.message}`, opts.secrets));
    if (opts.killed()) throw new EngineError('DumpFailed', `${opts.label} was stopped before it finished${detail}`);
    const tlsFailure = code !== 0 && opts.tlsError ? classifyTlsFailure(tail) : undefined;
    if (tlsFailure && opts.tlsError) {
      const named = opts.tlsError(tlsFailure);
      throw new EngineError(named.name, `${opts.label} exited with code ${code}: ${named.message}${detail}`);
    }
    if (code !== 0) {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const cause = pipeError ? ` after its output was closed (${pipeError.message})` : '';
      throw new EngineError('DumpFailed', `${opts.label} ${how}${cause}${detail}`);
    }
    if (pipeError) {
      throw new EngineError('DumpFailed', redact(`${opts.label} output was cut off: ${pipeError.message}`, opts.secrets));
    }
  });
  return { child, done };
}

/** What an engine's dump body gets from `startDumpProcess`. */
export interface DumpRun {
  /** The artifact stream the client writes into (`DumpProcess.stdout`). */
  readonly out: PassThrough;
  /** True once `kill()` was called. */
  readonly killed: () => boolean;
  /** The started client: `kill()` signals it from now on. */
  started(child: { kill(signal?: NodeJS.Signals): boolean }): void;
  /**
   * Settles the row counts from `counting` while `running` dumps, and resolves once both are
   * done; rejects with the client's failure. A client that fails before the counting ends
   * calls `abortCounting` (closing the counting connection). A counting failure rejects the
   * counts, not the dump.
   */
  countWhileDumping(
    counting: Promise<{ tables: TableCount[]; consistency: RowCountConsistency }>,
    running: RunningClient,
    abortCounting: () => void,
  ): Promise<void>;
}

/**
 * The DumpProcess around an engine's `body`, which connects, starts the client and counts
 * rows. Any failure of the body rejects `completion` (an EngineError as it is, anything else
 * as a password-free `DumpFailed`) and the counts; the output stream is destroyed when no
 * client was started to end it.
 */
export function startDumpProcess(opts: {
  readonly password: string | undefined;
  readonly artifact: ArtifactInfo;
  readonly body: (run: DumpRun) => Promise<void>;
}): DumpProcess {
  const out = new PassThrough();
  const tables = deferred<TableCount[]>();
  const consistency = deferred<RowCountConsistency>();
  let killed = false;
  let child: { kill(signal?: NodeJS.Signals): boolean } | undefined;
  const rejectCounts = (error: Error): void => {
    tables.reject(error);
    consistency.reject(error);
  };

  const run: DumpRun = {
    out,
    killed: () => killed,
    started: (started) => {
      child = started;
    },
    async countWhileDumping(counting, running, abortCounting) {
      let counted = false;
      const settled = counting.then(
        (counts) => {
          counted = true;
          tables.resolve(counts.tables);
          consistency.resolve(counts.consistency);
        },
        (err: unknown) => {
          counted = true;
          rejectCounts(new EngineError('DumpFailed', redact(`row counts failed: ${(err as Error).message}`, [opts.password])));
        },
      );
      running.done.catch(() => {
        if (!counted) abortCounting();
      });
      await settled;
      await running.done;
    },
  };

  const completion = quiet(
    opts.body(run).catch((err: unknown) => {
      const error =
        err instanceof EngineError ? err : new EngineError('DumpFailed', redact(String((err as Error).message ?? err), [opts.password]));
      rejectCounts(error);
      if (child === undefined) out.destroy();
      throw error;
    }),
  );
  return {
    stdout: out,
    completion,
    tables: tables.promise,
    rowCountConsistency: consistency.promise,
    kill(): void {
      killed = true;
      if (child !== undefined) child.kill('SIGTERM');
    },
    artifact: opts.artifact,
  };
}

/** A promise whose rejection is never "unhandled": consumers may attach late, or never. */
export function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = quiet(
    new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    }),
  );
  return { promise, resolve, reject };
}

export type CompressionMethod = 'zstd' | 'gzip' | 'lz4' | 'none';

export interface Compression {
  readonly method: CompressionMethod;
  /** Undefined for `none`. */
  readonly level?: number;
}

const LEVELS: Record<Exclude<CompressionMethod, 'none'>, { min: number; max: number; default: number }> = {
  // Defaults are the fast end: measured on pg_dump, gzip 1 took 4.2 s against 9.5 s for the
  // default level 6, for a 6 % larger artifact; zstd 3 is zstd's own default.
  zstd: { min: 1, max: 19, default: 3 },
  gzip: { min: 1, max: 9, default: 1 },
  lz4: { min: 1, max: 12, default: 1 },
};

/** Parses `zstd:3`, `gzip`, `none`; throws `InvalidDumpOptions` naming the value. */
export function parseCompression(spec: string): Compression {
  const match = /^([a-z0-9]+)(?::(\d+))?$/.exec(spec.trim());
  const method = match?.[1];
  if (!match || !method || !(method === 'none' || method in LEVELS)) {
    throw new EngineError('InvalidDumpOptions', `compression: unknown method "${spec}" (known: zstd, gzip, lz4, none)`);
  }
  if (method === 'none') {
    if (match[2] !== undefined) throw new EngineError('InvalidDumpOptions', `compression: "none" takes no level ("${spec}")`);
    return { method: 'none' };
  }
  const bounds = LEVELS[method as keyof typeof LEVELS];
  const level = match[2] === undefined ? bounds.default : Number(match[2]);
  if (level < bounds.min || level > bounds.max) {
    throw new EngineError('InvalidDumpOptions', `compression: ${method} level must be ${bounds.min}..${bounds.max} ("${spec}")`);
  }
  return { method: method as CompressionMethod, level };
}

export function formatCompression(c: Compression): string {
  return c.method === 'none' ? 'none' : `${c.method}:${c.level}`;
}

/** One part of a table pattern: a regex source. */
function patternPart(part: string, foldCase: boolean): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < part.length; i++) {
    const ch = part[i] as string;
    if (ch === '"') {
      if (quoted && part[i + 1] === '"') {
        out += '"';
        i++;
      } else {
        quoted = !quoted;
      }
    } else if (!quoted && ch === '*') {
      out += '.*';
    } else if (!quoted && ch === '?') {
      out += '.';
    } else {
      const literal = !quoted && foldCase ? ch.toLowerCase() : ch;
      out += literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return out;
}

/** Splits on dots outside double quotes. */
function splitPattern(pattern: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of pattern) {
    if (ch === '"') quoted = !quoted;
    if (ch === '.' && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

/**
 * A matcher for `schema.table` / `table` patterns in the style of psql: `*` any run, `?` one
 * character, `"..."` literal (and, with foldCase, case-preserving while the rest is lower-cased).
 */
export function tableMatcher(patterns: readonly string[], foldCase: boolean): (schema: string, table: string) => boolean {
  const compiled = patterns.map((pattern) => {
    const parts = splitPattern(pattern);
    if (parts.length > 2 || parts.some((p) => p === '')) {
      throw new EngineError('InvalidDumpOptions', `excludeTables: "${pattern}" is not "table" or "schema.table"`);
    }
    const table = new RegExp(`^${patternPart(parts[parts.length - 1] as string, foldCase)}$`, 's');
    const schema = parts.length === 2 ? new RegExp(`^${patternPart(parts[0] as string, foldCase)}$`, 's') : undefined;
    return { schema, table };
  });
  return (schema, table) => compiled.some((p) => p.table.test(table) && (p.schema === undefined || p.schema.test(schema)));
}
