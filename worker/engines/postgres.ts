/**
 * PostgreSQL engine: pg_dump custom format to stdout, row counts from the dump's own snapshot.
 *
 * Row counts: a `pg` connection opens `REPEATABLE READ READ ONLY`, exports its snapshot and
 * starts pg_dump with `--snapshot`; the tables are listed and counted (`count(*) FROM ONLY`)
 * inside that transaction, which stays open until pg_dump has exited. Every exact count is
 * therefore the number of rows of that table in the artifact (`same-snapshot`), whatever is
 * written meanwhile. Partitions are counted one by one; a partitioned parent stores no rows and
 * is listed with 0, so the counts add up to the rows in the artifact. Tables whose main fork is
 * above `exactCountMaxBytes` get `reltuples` (`exact: false`). Tables that belong to an
 * extension are not listed (pg_dump dumps them only as part of CREATE EXTENSION).
 */
import { dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Client } from 'pg';
import {
  clientVersionLine,
  formatCompression,
  quiet,
  resolveClient,
  runClient,
  startDumpProcess,
  tableMatcher,
  type DumpRun,
} from './common';
import { tlsEngineError, type TlsSession } from './tls';
import { CLIENT_PIPE_BUFFER_BYTES } from '../../lib/process/stdio-buffers';
import {
  checkPgClientVersion, choosePgCompression, parsePgClientVersion, parsePgServerVersion, pgDumpArgs, pgDumpallGlobalsArgs, quotePgIdent,
} from './postgres-clients';
import { connectPg, pgEnv, targetConninfo } from './postgres-connection';
import { findPgPrivilegeGaps, pgPrivilegeError, type PgPrivilegeGaps } from './postgres-privileges';
import {
  DEFAULT_EXACT_COUNT_MAX_BYTES,
  DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS,
  EngineError,
  type ClientOptions,
  type DatabaseInfo,
  type DumpEngine,
  type DumpOptions,
  type DumpProcess,
  type DumpTarget,
  type ExtensionInfo,
  type Preflight,
  type PreflightOptions,
  type TableCount,
} from './types';

function requireDatabases(target: DumpTarget): void {
  if (target.databases.length === 0) throw new EngineError('InvalidDumpOptions', 'databases: at least one database is needed');
}

/**
 * Versions, sizes, encodings, extensions and privileges. The version check comes first: with a
 * pg_dump older than the server, nothing else is asked and `ClientTooOld` names both versions.
 * Then, in every database, what pg_dump will read is checked against what the user may read:
 * `InsufficientPrivileges` names what is missing in each database and the GRANT that fixes it.
 */
export async function preflight(target: DumpTarget, clientOptions: ClientOptions = {}, options: PreflightOptions = {}): Promise<Preflight> {
  requireDatabases(target);
  const path = resolveClient('pg_dump', clientOptions.binDir);
  const clientLine = await clientVersionLine(path);
  const clientVersion = parsePgClientVersion(clientLine);

  const databases: DatabaseInfo[] = [];
  const extensions: ExtensionInfo[] = [];
  const gaps: PgPrivilegeGaps[] = [];
  let server: Preflight['server'] | undefined;
  let tls = false;
  let tlsSession: TlsSession | undefined;
  for (const database of target.databases) {
    const connected = await connectPg(target, database, options.source);
    const client = connected.client;
    try {
      if (server === undefined) {
        tls = connected.tls;
        tlsSession = connected.session;
        const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
        const versionString = rows[0]?.v ?? '';
        const parsed = parsePgServerVersion(versionString);
        checkPgClientVersion(clientVersion, parsed);
        server = { ...parsed, versionString };
      }
      const info = await client.query<{ size: string; encoding: string; collation: string }>(
        `SELECT pg_database_size(d.oid)::text AS size, pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collation
           FROM pg_database d WHERE d.datname = current_database()`,
      );
      const row = info.rows[0];
      databases.push({ name: database, sizeBytes: Number(row?.size ?? 0), encoding: row?.encoding ?? '', collation: row?.collation ?? '' });
      const ext = await client.query<{ name: string; version: string }>(
        `SELECT extname AS name, extversion AS version FROM pg_extension ORDER BY extname`,
      );
      for (const e of ext.rows) extensions.push({ database, name: e.name, version: e.version });
      gaps.push(await findPgPrivilegeGaps(client, database, options.excludeTables));
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  const denied = pgPrivilegeError(gaps, { username: target.username, source: options.source, serverMajor: (server as Preflight['server']).major });
  if (denied) throw denied;

  return {
    engine: 'postgres',
    server: server as Preflight['server'],
    client: { tool: 'pg_dump', path, ...clientVersion, flavor: 'postgres', versionString: clientLine },
    databaseSizeBytes: databases.reduce((sum, d) => sum + d.sizeBytes, 0),
    encoding: databases[0]?.encoding ?? '',
    databases,
    extensions,
    tls,
    ...(tlsSession ? { tlsSession } : {}),
    warnings: [],
  };
}

interface ListedTable {
  readonly schema: string;
  readonly name: string;
  readonly kind: 'r' | 'p';
  readonly bytes: number;
  readonly reltuples: number;
}

/** Tables whose rows pg_dump writes: ordinary and partitioned, permanent and unlogged, not owned by an extension. */
const LIST_TABLES_SQL = `
  SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind,
         pg_relation_size(c.oid)::text AS bytes, c.reltuples::float8 AS reltuples
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p')
     AND c.relpersistence IN ('p', 'u')
     AND n.nspname <> 'information_schema'
     AND n.nspname !~ '^pg_'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
   ORDER BY n.nspname, c.relname`;

async function listTables(client: Client): Promise<ListedTable[]> {
  const { rows } = await client.query<{ schema: string; name: string; kind: 'r' | 'p'; bytes: string; reltuples: number }>(LIST_TABLES_SQL);
  return rows.map((r) => ({ schema: r.schema, name: r.name, kind: r.kind, bytes: Number(r.bytes), reltuples: Number(r.reltuples) }));
}

async function countTables(client: Client, database: string, tables: readonly ListedTable[], maxBytes: number): Promise<TableCount[]> {
  const counts: TableCount[] = [];
  for (const t of tables) {
    if (t.kind === 'p') {
      counts.push({ database, schema: t.schema, name: t.name, rows: 0, exact: true });
    } else if (t.bytes > maxBytes) {
      counts.push({ database, schema: t.schema, name: t.name, rows: Math.max(0, Math.round(t.reltuples)), exact: false });
    } else {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM ONLY ${quotePgIdent(t.schema)}.${quotePgIdent(t.name)}`,
      );
      counts.push({ database, schema: t.schema, name: t.name, rows: Number(rows[0]?.n ?? 0), exact: true });
    }
  }
  return counts;
}

function checkDumpOptions(target: DumpTarget, options: DumpOptions): void {
  if (options.preflight.engine !== 'postgres') {
    throw new EngineError('InvalidDumpOptions', `preflight: engine is ${options.preflight.engine}, expected postgres`);
  }
  if (!target.databases.includes(options.database)) {
    throw new EngineError('InvalidDumpOptions', `database: "${options.database}" is not one of the target's databases`);
  }
}

/**
 * Starts pg_dump for one database. Throws `InvalidDumpOptions` synchronously; everything else
 * arrives through `completion` (see DumpProcess).
 */
export function startDump(target: DumpTarget, options: DumpOptions): DumpProcess {
  checkDumpOptions(target, options);
  const { preflight: pre, database } = options;
  const compression = choosePgCompression(pre.client.major, options.compression);
  const exclude = options.excludeTables?.length ? tableMatcher(options.excludeTables, true) : undefined;
  const maxBytes = options.exactCountMaxBytes ?? DEFAULT_EXACT_COUNT_MAX_BYTES;
  const body = async ({ out, killed, started, countWhileDumping }: DumpRun): Promise<void> => {
    let client: Client | undefined;
    try {
      client = (await connectPg(target, database)).client;
      const lockWait = options.lockWaitTimeoutSeconds ?? DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS;
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query(`SET LOCAL lock_timeout = ${Math.round(lockWait * 1000)}`);
      await client.query('SET LOCAL statement_timeout = 0');
      const { rows } = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
      const snapshot = rows[0]?.id as string;
      const listed = await listTables(client);
      const excluded = exclude ? listed.filter((t) => exclude(t.schema, t.name)) : [];
      const included = exclude ? listed.filter((t) => !exclude(t.schema, t.name)) : listed;
      if (killed()) throw new EngineError('DumpFailed', 'pg_dump was stopped before it started');

      const running = runClient({
        label: 'pg_dump',
        path: pre.client.path,
        args: pgDumpArgs({
          clientMajor: pre.client.major,
          conninfo: targetConninfo(target, database),
          compression,
          snapshot,
          lockWaitTimeoutSeconds: lockWait,
          excludeTables: excluded.map((t) => [t.schema, t.name] as const),
        }),
        env: pgEnv(target),
        out,
        secrets: [target.password],
        killed,
        stdoutBufferBytes: CLIENT_PIPE_BUFFER_BYTES,
        tlsError: (failure) => tlsEngineError(failure, target, 'PostgreSQL', database),
      });
      started(running.child);

      // Counting shares the exported snapshot's transaction, which (with the snapshot pg_dump
      // imported) stays open until pg_dump exits; a failed dump cancels the counting by
      // closing the connection.
      const pgClient = client;
      await countWhileDumping(
        countTables(pgClient, database, included, maxBytes).then((counts) => ({ tables: counts, consistency: 'same-snapshot' as const })),
        running,
        () => void pgClient.end().catch(() => undefined),
      );
    } finally {
      if (client !== undefined) {
        await client.query('COMMIT').catch(() => undefined);
        await client.end().catch(() => undefined);
      }
    }
  };

  return startDumpProcess({
    password: target.password,
    artifact: { fileExtension: '.pgdump', format: 'pg_dump-custom', compression: formatCompression(compression) },
    body,
  });
}

/**
 * Roles and tablespaces as SQL (`pg_dumpall --globals-only --no-role-passwords`), connecting
 * to the target's first database. pg_dumpall is taken from the directory of the preflight's
 * pg_dump (`preflight`, or its `client.path` as `pgDumpPath`), so it passed the same version
 * check; else from `binDir` or PATH.
 */
export function dumpGlobals(
  target: DumpTarget,
  options: ClientOptions & { readonly preflight?: Preflight; readonly pgDumpPath?: string } = {},
): { stdout: Readable; completion: Promise<void> } {
  requireDatabases(target);
  const out = new PassThrough();
  const database = target.databases[0] as string;
  const run = async (): Promise<void> => {
    let path: string;
    try {
      const pgDumpPath = options.preflight?.client.path ?? options.pgDumpPath;
      path =
        pgDumpPath !== undefined
          ? resolveClient(join(dirname(pgDumpPath), 'pg_dumpall'))
          : resolveClient('pg_dumpall', options.binDir);
    } catch (err) {
      out.destroy();
      throw err;
    }
    const running = runClient({
      label: 'pg_dumpall',
      path,
      args: pgDumpallGlobalsArgs(targetConninfo(target, database), database),
      env: pgEnv(target),
      out,
      secrets: [target.password],
      killed: () => false,
      tlsError: (failure) => tlsEngineError(failure, target, 'PostgreSQL', database),
    });
    await running.done;
  };
  return { stdout: out, completion: quiet(run()) };
}

export const postgresEngine: DumpEngine = { preflight, startDump, dumpGlobals };
