/**
 * What every engine's restore shares: its clients found and run with nothing inherited, the
 * target's TLS, and the errors that name the target (lib/engines/restore-contract.ts).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { redact } from '../domain/errors';
import { classifyTlsFailure, defaultCaFile, describeTls, tlsFailureHint, type TlsFailure, type TlsOptions } from '../domain/tls';
import type { RestoreTarget } from '../engines/restore-contract';
import { restoreError } from './errors';

export const CONNECT_TIMEOUT_MS = 10_000;

export function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const reason = signal.reason as Error | undefined;
    throw restoreError('Aborted', reason?.message ?? 'the restore was aborted');
  }
}

/** The first of `tools` on PATH; `ClientNotFound` naming all of them otherwise. */
export function resolveTool(tools: readonly string[], pathEnv = process.env.PATH ?? ''): string {
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
export function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

function unreachable(target: RestoreTarget, database: string, error: unknown, secrets: readonly (string | undefined)[]): Error {
  return restoreError('TargetUnreachable',
    redact(`cannot inspect database ${database} on ${target.engine} ${target.host}:${target.port} as ${target.username}: ${(error as Error).message}`, secrets));
}

/** The target's TLS; verify-full without a CA takes the host's default bundle. */
export function targetTls(target: RestoreTarget): TlsOptions {
  const tls = target.tls ?? { mode: 'prefer' };
  return tls.mode === 'verify-full' && tls.caFile === undefined ? { ...tls, caFile: defaultCaFile(target.host) } : tls;
}

const TLS_SETTINGS = { mode: 'the target URL\'s sslmode', ca: 'the target URL\'s sslrootcert' };

/** `TlsRequired` / `TlsVerifyFailed` naming the target, the mode, the cause and the fix. */
export function tlsError(failure: TlsFailure, target: RestoreTarget, what: string, secrets: readonly (string | undefined)[]): Error {
  const tls = targetTls(target);
  return restoreError(failure.name, redact(
    `${what} ${target.engine} ${target.host}:${target.port} as ${target.username} with ${describeTls(tls)}: ${failure.cause}; ` +
      `nothing was restored; fix: ${tlsFailureHint(failure, tls, TLS_SETTINGS)}`, secrets));
}

export function caPem(target: RestoreTarget, secrets: readonly (string | undefined)[]): string {
  const tls = targetTls(target);
  try {
    return readFileSync(tls.caFile as string, 'utf8');
  } catch (error) {
    throw tlsError({ name: 'TlsVerifyFailed', cause: `the CA bundle ${tls.caFile ?? '(none)'} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` },
      target, 'cannot connect to', secrets);
  }
}

/** A driver connection's failure: TLS failures by their names, anything else TargetUnreachable. */
export function connectFailure(target: RestoreTarget, database: string, error: unknown, secrets: readonly (string | undefined)[]): Error {
  if (['TlsRequired', 'TlsVerifyFailed'].includes((error as Error).name)) return error as Error;
  const e = error as { code?: string; message?: string };
  const failure = classifyTlsFailure(e.message ?? String(error), e.code);
  return failure ? tlsError(failure, target, `cannot inspect database ${database} on`, secrets) : unreachable(target, database, error, secrets);
}

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly spawnError?: Error;
}

export function startChild(path: string, args: readonly string[], env: NodeJS.ProcessEnv, signal?: AbortSignal) {
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

export function childFailure(
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
