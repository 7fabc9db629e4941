/**
 * MySQL and MariaDB engine: mariadb-dump / mysqldump (`--single-transaction`, no table locks)
 * as SQL, compressed in-process (zstd:3 by default, restorable with `zstd -d | mysql`).
 *
 * Row counts (InnoDB gives an exact `count(*)` inside a consistent snapshot), two modes:
 * - `separate-snapshot` (default): the counting connection starts its own
 *   `WITH CONSISTENT SNAPSHOT` transaction just before the dump client starts its own. Each
 *   count is exact for that snapshot; rows committed in the milliseconds between the two
 *   snapshots make the artifact differ. No global lock, no extra privilege.
 * - `same-snapshot`: `FLUSH TABLES WITH READ LOCK` (RELOAD) held while both transactions start,
 *   released as soon as the dump client's connection holds a read view (SHOW ENGINE INNODB
 *   STATUS, needs PROCESS) — the same lock mysqldump itself takes for --master-data. Commits
 *   stall for those milliseconds (typically 10–50 ms: the client's start and connect), and FTWRL
 *   waits behind long-running queries (bounded by a short lock_wait_timeout). RDS and Aurora
 *   refuse FTWRL: the engine then falls back to `separate-snapshot` and warns.
 * Non-transactional tables (MyISAM, Aria, …) are never snapshot-consistent: with any of them the
 * run's consistency is `separate-snapshot`.
 */
import { constants as zlibConstants, createGzip, createZstdCompress } from 'node:zlib';
import {
  childEnv,
  clientVersionLine,
  findClient,
  resolveClient,
  runClient,
  quiet,
  startDumpProcess,
  tableMatcher,
  type Compression,
  type DumpRun,
} from './common';
import { CoordinateTap } from '../../lib/binlog/coordinates';
import { CLIENT_PIPE_BUFFER_BYTES } from '../../lib/process/stdio-buffers';
import { mysqlTlsArgs } from '../../lib/domain/tls';
import {
  chooseMysqlCompression, mysqlArtifact, mysqlClientCandidates, mysqlDumpArgs, older, parseMysqlClientVersion, parseMysqlServerVersion,
} from './mysql-clients';
import { engineTls, tlsEngineError } from './tls';
import { connectMysql, query, showGrants, type MysqlConnection } from './mysql-connection';
import { MysqlGrants, mysqlDumpNeeds, mysqlPrivilegeError, quoteMysqlIdent, type MysqlDatabaseFacts } from './mysql-privileges';
import {
  DEFAULT_EXACT_COUNT_MAX_BYTES,
  EngineError,
  type ClientOptions,
  type DatabaseInfo,
  type DumpEngine,
  type DumpOptions,
  type DumpProcess,
  type DumpTarget,
  type Preflight,
  type PreflightOptions,
  type TableCount,
} from './types';

/** FLUSH TABLES WITH READ LOCK gives up after this long rather than stall production behind a long query. */
const GLOBAL_LOCK_WAIT_SECONDS = 5;
/** The global read lock is released after this long even if the dump's transaction was not seen. */
const GLOBAL_LOCK_MAX_HOLD_MS = 10_000;
const POLL_MS = 5;

/** TLS flags per client flavour (lib/domain/tls.ts, shared with the restore's client). */
export { mysqlTlsArgs };

export { quoteMysqlIdent };

/**
 * Versions, the client to use, sizes and character sets of the databases, and privileges:
 * what the dump client's options read (mysql-privileges.ts) against SHOW GRANTS, so that a
 * missing privilege is `InsufficientPrivileges` naming it and its GRANT, before the dump starts
 * (without some of them the dump would not fail but leave triggers or routines out).
 */
export async function preflight(target: DumpTarget, clientOptions: ClientOptions = {}, options: PreflightOptions = {}): Promise<Preflight> {
  if (target.databases.length === 0) throw new EngineError('InvalidDumpOptions', 'databases: at least one database is needed');
  const { connection, tls, session: tlsSession } = await connectMysql(target);
  try {
    const [versionRow] = await query<{ version: string; comment: string }>(
      connection,
      'SELECT @@version AS version, @@version_comment AS comment',
    );
    const versionString = versionRow?.version ?? '';
    const server = parseMysqlServerVersion(versionString, versionRow?.comment ?? '');

    const candidates = clientOptions.dumpBinary !== undefined ? [clientOptions.dumpBinary] : mysqlClientCandidates(server.flavor);
    const path =
      candidates.map((tool) => findClient(tool, clientOptions.binDir)).find((p) => p !== undefined) ??
      resolveClient(candidates[0] as string, clientOptions.binDir);
    const clientLine = await clientVersionLine(path);
    const client = parseMysqlClientVersion(clientLine);

    if (client.flavor === 'mysql' && server.flavor === 'mysql' && older(client, server)) {
      throw new EngineError(
        'ClientTooOld',
        `${client.tool} ${client.version} cannot dump MySQL ${server.version}: the dump client must be at least the server's major version`,
      );
    }
    const warnings: string[] = [];
    if (client.flavor !== server.flavor) {
      warnings.push(
        `${client.tool} ${client.version} (${client.flavor}) dumps a ${server.flavor} ${server.version} server; a ${server.flavor} client is the safer match`,
      );
    }

    const schemata = await query<{ name: string; encoding: string; collation: string }>(
      connection,
      `SELECT SCHEMA_NAME AS name, DEFAULT_CHARACTER_SET_NAME AS encoding, DEFAULT_COLLATION_NAME AS collation
         FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?)`,
      [target.databases],
    );
    const missing = target.databases.filter((d) => !schemata.some((s) => s.name === d));
    if (missing.length > 0) {
      throw new EngineError('DatabaseNotFound', `databases not found on ${target.host}:${target.port}: ${missing.join(', ')}`);
    }
    const views = await query<{ db: string; name: string }>(
      connection,
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES
        WHERE TABLE_SCHEMA IN (?) AND TABLE_TYPE = 'VIEW' ORDER BY TABLE_SCHEMA, TABLE_NAME`,
      [target.databases],
    );
    const facts: MysqlDatabaseFacts[] = target.databases.map((database) => ({
      database,
      views: views.filter((v) => v.db === database).map((v) => v.name),
    }));
    // The account the server matched (`name@host`): GRANTs name it, not the user name alone.
    const [me] = await query<{ me: string }>(connection, 'SELECT CURRENT_USER() AS me');
    const current = me?.me ?? '';
    const at = current.lastIndexOf('@');
    const needs = mysqlDumpNeeds(
      mysqlDumpArgs({
        client: { flavor: client.flavor, major: client.major },
        serverFlavor: server.flavor,
        host: target.host,
        port: target.port,
        username: target.username,
        databases: target.databases,
        tls: engineTls(target),
      }),
    );
    const patch = Number(/^\d+\.\d+\.(\d+)/.exec(server.version)?.[1] ?? 0);
    const denied = mysqlPrivilegeError(new MysqlGrants(await showGrants(connection, server.flavor)), facts, {
      account: at < 0 ? { user: target.username, host: '%' } : { user: current.slice(0, at), host: current.slice(at + 1) },
      flavor: server.flavor,
      version: { major: server.major, minor: server.minor, patch },
      tool: client.tool,
      needs,
      source: options.source,
    });
    if (denied) throw denied;

    const sizes = await query<{ name: string; size: string | null }>(
      connection,
      `SELECT TABLE_SCHEMA AS name, SUM(DATA_LENGTH + INDEX_LENGTH) AS size
         FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) GROUP BY TABLE_SCHEMA`,
      [target.databases],
    );
    const databases: DatabaseInfo[] = target.databases.map((name) => {
      const s = schemata.find((row) => row.name === name);
      return {
        name,
        sizeBytes: Number(sizes.find((row) => row.name === name)?.size ?? 0),
        encoding: s?.encoding ?? '',
        collation: s?.collation ?? '',
      };
    });

    return {
      engine: server.flavor,
      server: { version: server.version, major: server.major, versionString },
      client: { tool: client.tool, path, version: client.version, major: client.major, flavor: client.flavor, versionString: clientLine },
      databaseSizeBytes: databases.reduce((sum, d) => sum + d.sizeBytes, 0),
      encoding: databases[0]?.encoding ?? '',
      databases,
      extensions: [],
      tls,
      ...(tlsSession ? { tlsSession } : {}),
      warnings,
    };
  } finally {
    await connection.end().catch(() => undefined);
  }
}

interface ListedTable {
  readonly name: string;
  readonly engine: string;
  readonly bytes: number;
  readonly estimate: number;
}

async function listTables(connection: MysqlConnection, database: string): Promise<ListedTable[]> {
  const rows = await query<{ name: string; engine: string | null; bytes: string | null; estimate: string | null }>(
    connection,
    `SELECT TABLE_NAME AS name, ENGINE AS engine, DATA_LENGTH AS bytes, TABLE_ROWS AS estimate
       FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
      ORDER BY TABLE_NAME`,
    [database],
  );
  return rows.map((r) => ({ name: r.name, engine: r.engine ?? '', bytes: Number(r.bytes ?? 0), estimate: Number(r.estimate ?? 0) }));
}

// The snapshot the dump client is watched for is InnoDB's (see waitForDumpSnapshot).
const TRANSACTIONAL_ENGINES = new Set(['innodb']);

/**
 * Thread ids whose InnoDB transaction holds a read view (a consistent snapshot), from the
 * TRANSACTIONS section of SHOW ENGINE INNODB STATUS. (INFORMATION_SCHEMA.INNODB_TRX is a cache
 * refreshed at most every 100 ms after its last read: polled faster, it never changes.)
 */
export function threadsWithReadView(innodbStatus: string): number[] {
  const start = innodbStatus.indexOf('LIST OF TRANSACTIONS');
  if (start < 0) return [];
  const list = innodbStatus.slice(start).split(/^-{4,}$/m)[0] ?? '';
  return list
    .split(/^---TRANSACTION /m)
    .slice(1)
    .filter((block) => /^Trx read view will not see/m.test(block))
    .map((block) => /(?:MySQL|MariaDB) thread id (\d+)/.exec(block)?.[1])
    .filter((id): id is string => id !== undefined)
    .map(Number);
}

/**
 * Waits until a connection of the dump's user opened after ours holds a read view: the dump
 * client's consistent snapshot exists. False when the client exited first or after maxMs.
 */
async function waitForDumpSnapshot(
  connection: MysqlConnection,
  ownId: number,
  username: string,
  exited: () => boolean,
  maxMs: number,
): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline && !exited()) {
    const candidates = await query<{ id: string | number }>(
      connection,
      'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ? AND ID > ?',
      [username, ownId],
    );
    if (candidates.length > 0) {
      const [status] = await query<{ Status: string }>(connection, 'SHOW ENGINE INNODB STATUS');
      const withSnapshot = new Set(threadsWithReadView(status?.Status ?? ''));
      if (candidates.some((c) => withSnapshot.has(Number(c.id)))) return true;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return false;
}

function checkDumpOptions(target: DumpTarget, options: DumpOptions): void {
  if (options.preflight.engine !== 'mysql' && options.preflight.engine !== 'mariadb') {
    throw new EngineError('InvalidDumpOptions', `preflight: engine is ${options.preflight.engine}, expected mysql or mariadb`);
  }
  if (!target.databases.includes(options.database)) {
    throw new EngineError('InvalidDumpOptions', `database: "${options.database}" is not one of the target's databases`);
  }
}

function compressor(compression: Compression): NodeJS.ReadWriteStream[] {
  if (compression.method === 'zstd') {
    return [
      createZstdCompress({
        params: {
          [zlibConstants.ZSTD_c_compressionLevel]: compression.level as number,
          // `zstd -t` and `zstd -d` then detect corruption of the artifact.
          [zlibConstants.ZSTD_c_checksumFlag]: 1,
        },
      }),
    ];
  }
  if (compression.method === 'gzip') return [createGzip({ level: compression.level })];
  return [];
}

/**
 * Starts the dump of one database. Throws `InvalidDumpOptions` synchronously; everything else
 * arrives through `completion` (see DumpProcess).
 */
export function startDump(target: DumpTarget, options: DumpOptions): DumpProcess {
  checkDumpOptions(target, options);
  const { preflight: pre, database } = options;
  const compression = chooseMysqlCompression(options.compression);
  const exclude = options.excludeTables?.length ? tableMatcher(options.excludeTables, false) : undefined;
  const maxBytes = options.exactCountMaxBytes ?? DEFAULT_EXACT_COUNT_MAX_BYTES;
  const mode = options.rowCountConsistency ?? 'separate-snapshot';
  const warn = options.onWarning ?? (() => undefined);
  // A point-in-time source's base: the dump's own text names its snapshot's binlog coordinates.
  const tap = options.binlogCoordinates ? new CoordinateTap() : undefined;
  const body = async ({ out, killed, started, countWhileDumping }: DumpRun): Promise<void> => {
    let connection: MysqlConnection | undefined;
    try {
      connection = (await connectMysql(target)).connection;
      const conn = connection;
      await query(conn, 'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      const listed = await listTables(conn, database);
      const isExcluded = (t: ListedTable): boolean => exclude?.(database, t.name) ?? false;
      const included = listed.filter((t) => !isExcluded(t));
      const [{ id: ownId } = { id: 0 }] = await query<{ id: string | number }>(conn, 'SELECT CONNECTION_ID() AS id');

      let locked = false;
      if (mode === 'same-snapshot') {
        try {
          await query(conn, `SET SESSION lock_wait_timeout = ${GLOBAL_LOCK_WAIT_SECONDS}`);
          await query(conn, 'FLUSH TABLES WITH READ LOCK');
          locked = true;
        } catch (err) {
          warn(`row counts: FLUSH TABLES WITH READ LOCK failed (${(err as Error).message}); counting in a separate snapshot`);
        }
        await query(conn, 'SET SESSION lock_wait_timeout = DEFAULT');
      }
      // Never leave production writes blocked, whatever happens below: the server drops the
      // lock with the connection.
      const lockGuard = locked ? setTimeout(() => conn.destroy(), GLOBAL_LOCK_MAX_HOLD_MS + 5_000) : undefined;
      let aligned = false;
      let running: ReturnType<typeof runClient>;
      try {
        await query(conn, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
        if (killed()) throw new EngineError('DumpFailed', `${pre.client.tool} was stopped before it started`);
        running = runClient({
          label: pre.client.tool,
          path: pre.client.path,
          args: mysqlDumpArgs({
            client: { flavor: pre.client.flavor === 'mysql' ? 'mysql' : 'mariadb', major: pre.client.major },
            serverFlavor: pre.engine === 'mysql' ? 'mysql' : 'mariadb',
            host: target.host,
            port: target.port,
            username: target.username,
            databases: [database],
            tls: engineTls(target).mode === 'prefer' ? { mode: pre.tls ? 'prefer' : 'disable' } : engineTls(target),
            ignoreTables: listed.filter(isExcluded).map((t) => [database, t.name] as const),
            binlogCoordinates: tap !== undefined,
          }),
          env: childEnv({ MYSQL_PWD: target.password }),
          transforms: [...(tap ? [tap] : []), ...compressor(compression)],
          out,
          secrets: [target.password],
          killed,
          stdoutBufferBytes: CLIENT_PIPE_BUFFER_BYTES,
          tlsError: (failure) => tlsEngineError(failure, target, 'MySQL/MariaDB', database),
        });
        started(running.child);
        if (locked) {
          let exited = false;
          running.done.catch(() => undefined).finally(() => (exited = true));
          try {
            aligned = await waitForDumpSnapshot(conn, Number(ownId), target.username, () => exited, GLOBAL_LOCK_MAX_HOLD_MS);
            if (!aligned && !exited) warn('row counts: the dump transaction was not seen in time; counts are from a separate snapshot');
          } catch (err) {
            warn(`row counts: cannot watch the dump's transaction (${(err as Error).message}); counts are from a separate snapshot`);
          }
        }
      } finally {
        if (locked) {
          await query(conn, 'UNLOCK TABLES').catch(() => conn.destroy());
          clearTimeout(lockGuard);
        }
      }

      await countWhileDumping(
        countTables(conn, database, included, maxBytes).then(({ counts, nonTransactional }) => ({
          tables: counts,
          consistency: aligned && !nonTransactional ? ('same-snapshot' as const) : ('separate-snapshot' as const),
        })),
        running,
        () => conn.destroy(),
      );
    } finally {
      if (connection !== undefined) {
        await query(connection, 'COMMIT').catch(() => undefined);
        await connection.end().catch(() => undefined);
      }
    }
  };

  const dump = startDumpProcess({ password: target.password, artifact: mysqlArtifact(compression), body });
  return tap ? { ...dump, binlogCoordinates: quiet(dump.completion.then(() => tap.coordinates())) } : dump;
}

async function countTables(
  connection: MysqlConnection,
  database: string,
  tables: readonly ListedTable[],
  maxBytes: number,
): Promise<{ counts: TableCount[]; nonTransactional: boolean }> {
  const counts: TableCount[] = [];
  let nonTransactional = false;
  for (const t of tables) {
    const estimate: TableCount = { database, schema: database, name: t.name, rows: Math.max(0, t.estimate), exact: false };
    if (t.bytes > maxBytes) {
      counts.push(estimate);
      continue;
    }
    try {
      const [row] = await query<{ n: string }>(
        connection,
        `SELECT COUNT(*) AS n FROM ${quoteMysqlIdent(database)}.${quoteMysqlIdent(t.name)}`,
      );
      counts.push({ database, schema: database, name: t.name, rows: Number(row?.n ?? 0), exact: true });
      if (!TRANSACTIONAL_ENGINES.has(t.engine.toLowerCase())) nonTransactional = true;
    } catch (err) {
      const errno = (err as { errno?: number }).errno;
      // ER_NO_SUCH_TABLE: dropped since it was listed, so not in the dump's snapshot either.
      if (errno === 1146) continue;
      // ER_TABLE_DEF_CHANGED: altered after the snapshot; the planner's figure is all there is.
      if (errno !== 1412) throw err;
      counts.push(estimate);
    }
  }
  return { counts, nonTransactional };
}

export const mysqlEngine: DumpEngine = { preflight, startDump };
