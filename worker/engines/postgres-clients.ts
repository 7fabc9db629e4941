/**
 * The PostgreSQL dump clients: their versions (the server's too) and the check that pg_dump is
 * not older than the server, the compression each major offers, and pg_dump's and
 * pg_dumpall's argv.
 */
import { pgClientTooOldHint } from '../../lib/domain/versions';
import { formatCompression, parseCompression, type Compression } from './common';
import { DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS, EngineError } from './types';

export interface PgVersion {
  /** `15.19`, `17.9`, `18devel`. */
  readonly version: string;
  readonly major: number;
}

/** `pg_dump (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)` → { version: '15.19', major: 15 }. */
export function parsePgClientVersion(line: string): PgVersion {
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?([a-z]+\d*)?/.exec(line);
  if (!match) throw new Error(`cannot parse a PostgreSQL client version from "${line}"`);
  return { version: pgShortVersion(match), major: pgMajor(Number(match[1]), Number(match[2] ?? 0)) };
}

/** `server_version` (`15.19 (Debian 15.19-0+deb12u1)`, `17.9`, `9.6.24`) → short version and major. */
export function parsePgServerVersion(versionString: string): PgVersion {
  const match = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?([a-z]+\d*)?/.exec(versionString.trim());
  if (!match) throw new Error(`cannot parse a PostgreSQL server version from "${versionString}"`);
  return { version: pgShortVersion(match), major: pgMajor(Number(match[1]), Number(match[2] ?? 0)) };
}

function pgShortVersion(match: RegExpExecArray): string {
  return [match[1], match[2], match[3]].filter((p) => p !== undefined).join('.') + (match[4] ?? '');
}

/** Before 10 the major version had two parts (9.6); compared as 9.6 it still orders correctly. */
function pgMajor(first: number, second: number): number {
  return first >= 10 ? first : first + second / 10;
}

/**
 * Throws `ClientTooOld` when pg_dump would refuse (or mis-dump) the server; the message names
 * both versions and PG_CLIENT_MAJOR, the images' PostgreSQL major.
 */
export function checkPgClientVersion(client: PgVersion, server: PgVersion, tool = 'pg_dump'): void {
  if (client.major < server.major) {
    throw new EngineError(
      'ClientTooOld',
      `${tool} ${client.version} cannot dump PostgreSQL ${server.version}: the dump client must be at least the server's major version; ` +
        pgClientTooOldHint(tool, client.major, server.major),
    );
  }
}

/**
 * The compression pg_dump applies. zstd and lz4 exist from pg_dump 16 on; by default zstd:3
 * there, gzip:1 before (4.2 s against 9.5 s for the default level, 6 % larger).
 */
export function choosePgCompression(clientMajor: number, requested?: string): Compression {
  if (requested === undefined) return clientMajor >= 16 ? { method: 'zstd', level: 3 } : { method: 'gzip', level: 1 };
  const compression = parseCompression(requested);
  if ((compression.method === 'zstd' || compression.method === 'lz4') && clientMajor < 16) {
    throw new EngineError(
      'InvalidDumpOptions',
      `compression: ${requested} needs pg_dump 16 or later (this pg_dump is ${clientMajor}); use gzip or none`,
    );
  }
  return compression;
}

/** pg_dump's `--compress` value for a client major version. */
export function pgCompressArg(clientMajor: number, compression: Compression): string {
  if (clientMajor >= 16) return `--compress=${formatCompression(compression)}`;
  return `--compress=${compression.method === 'none' ? 0 : compression.level}`;
}

/** A quoted identifier: `"Kunden Ümlaut"`, `"a""b"`. */
export function quotePgIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export interface PgDumpArgsInput {
  readonly clientMajor: number;
  readonly conninfo: string;
  readonly compression: Compression;
  /** From pg_export_snapshot(). */
  readonly snapshot?: string;
  readonly lockWaitTimeoutSeconds?: number;
  /** Exact [schema, table] names; quoted, so pattern characters in them are literal. */
  readonly excludeTables?: readonly (readonly [string, string])[];
}

/** pg_dump's argv (no password: it is in PGPASSWORD; --no-password makes a missing one fail instead of prompting). */
export function pgDumpArgs(input: PgDumpArgsInput): string[] {
  const args = ['--format=custom', pgCompressArg(input.clientMajor, input.compression), '--no-password'];
  const lockWait = input.lockWaitTimeoutSeconds ?? DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS;
  if (lockWait > 0) args.push(`--lock-wait-timeout=${Math.round(lockWait * 1000)}`);
  if (input.snapshot !== undefined) args.push(`--snapshot=${input.snapshot}`);
  for (const [schema, table] of input.excludeTables ?? []) {
    args.push(`--exclude-table=${quotePgIdent(schema)}.${quotePgIdent(table)}`);
  }
  args.push(`--dbname=${input.conninfo}`);
  return args;
}

/** pg_dumpall's argv for roles and tablespaces without passwords (RDS does not let anyone read them). */
export function pgDumpallGlobalsArgs(conninfo: string, database: string): string[] {
  return ['--globals-only', '--no-role-passwords', '--no-password', `--dbname=${conninfo}`, `--database=${database}`];
}
