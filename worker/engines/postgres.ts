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
import { Client, type ClientConfig } from 'pg';
import {
  childEnv,
  clientVersionLine,
  formatCompression,
  parseCompression,
  quiet,
  redact,
  resolveClient,
  runClient,
  startDumpProcess,
  tableMatcher,
  type Compression,
  type DumpRun,
} from './common';
import { pgClientTooOldHint } from '../../lib/domain/versions';
import { engineTls, readCaBundle, tlsEngineError, type TlsSession } from './tls';
import { CLIENT_PIPE_BUFFER_BYTES } from '../../lib/process/stdio-buffers';
import { findPgPrivilegeGaps, pgIdent, pgPrivilegeError, type PgPrivilegeGaps } from './postgres-privileges';
import {
  DEFAULT_CONNECT_TIMEOUT_SECONDS,
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
  type TlsMode,
} from './types';

const APPLICATION_NAME = 'lifeboat';

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

/** A libpq keyword/value connection string; values single-quoted with \\ and \' escaped. */
export function pgConninfo(params: Record<string, string | number | undefined>): string {
  return Object.entries(params)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([key, value]) => `${key}='${String(value).replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`)
    .join(' ');
}

/**
 * Connection string for the clients: everything but the password (that goes in PGPASSWORD).
 * sslrootcert only with verify-full: libpq reads a root certificate under "require" as
 * "verify-ca", which would change what require means.
 */
export function targetConninfo(target: DumpTarget, database: string): string {
  const tls = engineTls(target);
  return pgConninfo({
    host: target.host,
    port: target.port,
    user: target.username,
    dbname: database,
    sslmode: tls.mode,
    sslrootcert: tls.mode === 'verify-full' ? tls.caFile : undefined,
    connect_timeout: target.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS,
    application_name: APPLICATION_NAME,
  });
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

function pgEnv(target: DumpTarget): NodeJS.ProcessEnv {
  return childEnv({ PGPASSWORD: target.password });
}

/**
 * Maps a connection error of the `pg` driver to an EngineError without the password: bad
 * credentials and missing databases are not retryable, anything else (refused, timed out,
 * unknown host, too many connections, starting up) is `SourceUnreachable`.
 */
export function pgConnectError(err: unknown, target: DumpTarget, database: string, source = 'SOURCE'): EngineError {
  if (err instanceof EngineError) return err;
  const e = err as { code?: string; message?: string };
  const tls = tlsEngineError(err, target, 'PostgreSQL', database);
  if (tls) return tls;
  const where = `${target.username}@${target.host}:${target.port}/${database}`;
  const message = redact(`cannot connect to PostgreSQL as ${where}: ${e.message ?? String(err)}`, [target.password]);
  if (e.code === '28P01' || e.code === '28000' || /password|SASL|SCRAM/i.test(e.message ?? '')) {
    return new EngineError('AuthenticationFailed', message);
  }
  if (e.code === '3D000') return new EngineError('DatabaseNotFound', message);
  // 42501 at connect: the database refuses the role (REVOKE CONNECT … FROM PUBLIC). Retrying cannot help.
  if (e.code === '42501') {
    return new EngineError(
      'InsufficientPrivileges',
      `${message}; fix: GRANT CONNECT ON DATABASE ${pgIdent(database)} TO ${pgIdent(target.username)} (or run the SQL of lifeboat grants ${source})`,
    );
  }
  return new EngineError('SourceUnreachable', message);
}

function baseClientConfig(target: DumpTarget, database: string): ClientConfig {
  return {
    host: target.host,
    port: target.port,
    user: target.username,
    password: target.password,
    database,
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: (target.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS) * 1000,
  };
}

/** node-postgres' TLS options: verify-full checks the chain against the CA bundle and the host name (Node's checkServerIdentity). */
function sslConfig(target: DumpTarget, mode: TlsMode): ClientConfig['ssl'] {
  if (mode === 'disable') return false;
  if (mode === 'verify-full') return { rejectUnauthorized: true, ca: readCaBundle(engineTls(target), target) };
  return { rejectUnauthorized: false };
}

/** The TLS of a connected session as the server sees it (pg_stat_ssl); undefined in plain text. */
async function pgTlsSession(client: Client): Promise<TlsSession | undefined> {
  const { rows } = await client.query<{ ssl: boolean; version: string | null; cipher: string | null }>(
    'SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
  );
  const row = rows[0];
  return row?.ssl ? { protocol: row.version ?? '', cipher: row.cipher ?? '' } : undefined;
}

/**
 * A connected `pg` client honouring the TLS mode (`prefer` falls back to plain TCP when the server
 * offers no TLS; verify-full and require never do). `source` names the source in the fix of a
 * refused CONNECT. `tls` is what the server reports for the session: verify-full and require
 * fail with `TlsRequired` should it ever say plain text.
 */
export async function connectPg(
  target: DumpTarget,
  database: string,
  source?: string,
): Promise<{ client: Client; tls: boolean; session?: TlsSession }> {
  const mode = engineTls(target).mode;
  const attempt = async (ssl: ClientConfig['ssl']): Promise<Client> => {
    const client = new Client({ ...baseClientConfig(target, database), ssl });
    // A server that goes away emits 'error' on an idle client; the next query reports it.
    client.on('error', () => undefined);
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  };
  let client: Client;
  try {
    client = await attempt(sslConfig(target, mode));
  } catch (err) {
    if (mode === 'prefer' && /does not support SSL/i.test((err as Error).message ?? '')) {
      try {
        return { client: await attempt(false), tls: false };
      } catch (plainErr) {
        throw pgConnectError(plainErr, target, database, source);
      }
    }
    throw pgConnectError(err, target, database, source);
  }
  if (mode === 'disable') return { client, tls: false };
  try {
    const session = await pgTlsSession(client);
    if (!session && mode !== 'prefer') {
      throw tlsEngineError({ name: 'TlsRequired', cause: 'the server reports this session as plain text' }, target, 'PostgreSQL');
    }
    return { client, tls: session !== undefined, session };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err instanceof EngineError ? err : pgConnectError(err, target, database, source);
  }
}

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
