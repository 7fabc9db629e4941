/**
 * TLS for the engines' drivers and clients: the effective options of a target, the CA bundle
 * read once per connection, and the mapping of a TLS failure (a driver error or a client's
 * stderr) to `TlsRequired` / `TlsVerifyFailed`, which are never retried.
 */
import { readFileSync } from 'node:fs';
import { classifyTlsFailure, defaultCaFile, describeTls, tlsFailureHint, type TlsFailure, type TlsOptions } from '../../lib/domain/tls';
import { redact } from './common';
import { EngineError, type DumpTarget } from './types';

export type { TlsSession } from './types';

/** Where an operator sets what the engine was given: the config, or a command line's URL. */
const SETTINGS = { mode: 'connection.tls (a URL\'s sslmode)', ca: 'connection.tlsCa (a URL\'s sslrootcert)' };

/** The target's TLS; a verify-full without a CA takes the host's default bundle (lib/domain/tls.ts). */
export function engineTls(target: Pick<DumpTarget, 'host' | 'tls'>): TlsOptions {
  const tls = target.tls ?? { mode: 'prefer' };
  if (tls.mode !== 'verify-full' || tls.caFile !== undefined) return tls;
  const caFile = defaultCaFile(target.host);
  return caFile === undefined ? tls : { ...tls, caFile };
}

/** The PEM of verify-full's CA bundle; `TlsVerifyFailed` naming the file when there is none to read. */
export function readCaBundle(tls: TlsOptions, target: Pick<DumpTarget, 'host' | 'port'>): string {
  if (tls.caFile === undefined) {
    throw new EngineError('TlsVerifyFailed', `TLS verify-full to ${target.host}:${target.port} has no CA bundle to check the certificate against; set ${SETTINGS.ca}`);
  }
  try {
    return readFileSync(tls.caFile, 'utf8');
  } catch (error) {
    throw new EngineError('TlsVerifyFailed',
      `TLS verify-full to ${target.host}:${target.port}: the CA bundle ${tls.caFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); ` +
      `set ${SETTINGS.ca} to a PEM bundle this machine has (the worker image carries the RDS bundle and the public CAs)`);
  }
}

/** A driver error (its code and message) as a TLS failure, if it is one. */
export function tlsFailureOf(error: unknown): TlsFailure | undefined {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  return classifyTlsFailure(typeof e?.message === 'string' ? e.message : String(error), typeof e?.code === 'string' ? e.code : undefined);
}

/**
 * The EngineError of a TLS failure: which server, which mode and CA, the cause in words, the fix.
 * `failure` may be a driver error (undefined when it is not about TLS).
 */
export function tlsEngineError(failure: TlsFailure, target: DumpTarget, engine: string, database?: string): EngineError;
export function tlsEngineError(failure: unknown, target: DumpTarget, engine: string, database?: string): EngineError | undefined;
export function tlsEngineError(failure: unknown, target: DumpTarget, engine: string, database?: string): EngineError | undefined {
  const named = isTlsFailure(failure) ? failure : tlsFailureOf(failure);
  if (!named) return undefined;
  const tls = engineTls(target);
  const where = `${target.username}@${target.host}:${target.port}${database !== undefined ? `/${database}` : ''}`;
  return new EngineError(named.name, redact(
    `cannot connect to ${engine} as ${where} with ${describeTls(tls)}: ${named.cause}; fix: ${tlsFailureHint(named, tls, SETTINGS)}`,
    [target.password],
  ));
}

function isTlsFailure(value: unknown): value is TlsFailure {
  const v = value as TlsFailure | undefined;
  return typeof v === 'object' && v !== null && !(v instanceof Error) && (v.name === 'TlsRequired' || v.name === 'TlsVerifyFailed') && typeof v.cause === 'string';
}
