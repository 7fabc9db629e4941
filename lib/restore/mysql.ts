/**
 * MySQL's and MariaDB's restore (the engines' `restore`, lib/engines/mysql.ts): the target
 * inspected through the driver, the database dropped first when `clean`, the decompressed SQL
 * script streamed into the stock client (which recreates the database: it was dumped with
 * --databases).
 */
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import * as mysql from 'mysql2/promise';
import { redact } from '../domain/errors';
import { mysqlTlsArgs } from '../domain/tls';
import type { EngineRestore, PlannedRestore, RestoreTarget, TargetState } from '../engines/restore-contract';
import { restoreError } from './errors';
import { CONNECT_TIMEOUT_MS, caPem, childEnv, childFailure, connectFailure, resolveTool, startChild, targetTls } from './target';

/** Node's 16 KiB default makes decompression several times slower than the CLI (see lib/verify). */
const DECOMPRESS_CHUNK_BYTES = 256 * 1024;

/** The restore of MySQL/MariaDB SQL scripts with `clients` (mysql, mariadb: the first found). */
export function sqlScriptRestore(clients: readonly string[]): EngineRestore {
  return {
    replaces: 'drop',
    clients(context) {
      const sql = resolveTool(clients);
      const { target, secrets, signal } = context;
      return {
        inspect: (database) => inspectMysql(target, database, secrets),
        async restore(item, progress) {
          if (context.clean && item.exists) await dropMysqlDatabase(target, item.database, secrets);
          await mysqlRestore(sql, target, item, progress, secrets, signal);
        },
      };
    },
  };
}

async function withMysql<T>(
  target: RestoreTarget,
  database: string,
  secrets: readonly (string | undefined)[],
  fn: (connection: mysql.Connection) => Promise<T>,
): Promise<T> {
  const tls = targetTls(target);
  const connect = (ssl: mysql.ConnectionOptions['ssl']) => mysql.createConnection({
    host: target.host, port: target.port, user: target.username, password: target.password, connectTimeout: CONNECT_TIMEOUT_MS, ssl,
  });
  let connection: mysql.Connection;
  try {
    // verifyIdentity: mysql2 checks the host name only when asked.
    const ssl = tls.mode === 'disable' ? undefined
      : tls.mode === 'verify-full' ? { ca: caPem(target, secrets), rejectUnauthorized: true, verifyIdentity: true }
        : { rejectUnauthorized: false, verifyIdentity: false };
    connection = await connect(ssl).catch((error: { code?: string }) => {
      if (tls.mode === 'prefer' && error.code === 'HANDSHAKE_NO_SSL_SUPPORT') return connect(undefined);
      throw error;
    });
  } catch (error) {
    throw connectFailure(target, database, error, secrets);
  }
  try {
    return await fn(connection);
  } finally {
    await connection.end().catch(() => undefined);
  }
}

async function inspectMysql(target: RestoreTarget, database: string, secrets: readonly (string | undefined)[]): Promise<TargetState> {
  return withMysql(target, database, secrets, async (connection) => {
    const [schemata] = await connection.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
    if ((schemata as unknown[]).length === 0) return { exists: false, relations: [] };
    const [tables] = await connection.query(
      'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME', [database]);
    return { exists: true, relations: (tables as { name: string }[]).map((row) => `${database}.${row.name}`) };
  });
}

async function dropMysqlDatabase(target: RestoreTarget, database: string, secrets: readonly (string | undefined)[]): Promise<void> {
  await withMysql(target, database, secrets, async (connection) => {
    try {
      await connection.query(`DROP DATABASE IF EXISTS \`${database.replaceAll('`', '``')}\``);
    } catch (error) {
      throw restoreError('RestoreFailed', redact(`cannot drop database ${database} on ${target.host}:${target.port}: ${(error as Error).message}`, secrets));
    }
  });
}

/**
 * The mysql/mariadb client's argv (no password: it travels in MYSQL_PWD); the TLS flags for the
 * client's flavour (MySQL's and MariaDB's take different ones).
 */
export function mysqlClientArgs(
  target: Pick<RestoreTarget, 'host' | 'port' | 'username' | 'tls'>,
  flavor: 'mysql' | 'mariadb' = 'mariadb',
): string[] {
  return [
    '--no-defaults', '--protocol=TCP', '--host', target.host, '--port', String(target.port), '--user', target.username,
    '--batch', '--default-character-set=utf8mb4', '--max-allowed-packet=1G',
    ...(target.tls ? mysqlTlsArgs(flavor, target.tls) : []),
  ];
}

/** Which project built a mysql/mariadb client: `mysql  Ver 8.4…` is Oracle's, anything saying MariaDB is MariaDB's. */
function clientFlavor(path: string): 'mysql' | 'mariadb' {
  const version = spawnSync(path, ['--version'], { encoding: 'utf8', env: childEnv({}), timeout: 10_000 });
  return /mariadb/i.test(`${path.slice(path.lastIndexOf('/') + 1)} ${version.stdout ?? ''}`) ? 'mariadb' : 'mysql';
}

/** Streams the artifact through the decompressor into the client, with back-pressure; waits for both. */
async function mysqlRestore(
  path: string,
  target: RestoreTarget,
  item: PlannedRestore,
  progress: { add(bytes: number): void },
  secrets: readonly (string | undefined)[],
  signal?: AbortSignal,
): Promise<void> {
  const method = item.artifact.compression.split(':')[0];
  const decompress: Transform[] = method === 'zstd'
    ? [createZstdDecompress({ chunkSize: DECOMPRESS_CHUNK_BYTES })]
    : method === 'gzip'
      ? [createGunzip({ chunkSize: DECOMPRESS_CHUNK_BYTES })]
      : method === 'none' ? [] : (() => {
        throw restoreError('InvalidInput', `${item.artifact.key}: unknown compression ${item.artifact.compression}`);
      })();
  const tls = targetTls(target);
  const { child, exit } = startChild(path, mysqlClientArgs({ ...target, tls }, clientFlavor(path)), childEnv({ MYSQL_PWD: target.password }), signal);
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      progress.add(chunk.length);
      callback(null, chunk);
    },
  });
  const streams: (Readable | Transform | Writable)[] = [createReadStream(item.file), meter, ...decompress, child.stdin as Writable];
  // The client may exit early (a failed statement): the pipe then fails with EPIPE; the exit code tells why.
  const piped = (pipeline as (...s: unknown[]) => Promise<void>)(...streams).then(() => undefined, (error: Error) => error);
  const [result, pipeError] = await Promise.all([exit, piped]);
  const label = `${path.slice(path.lastIndexOf('/') + 1)} restoring ${item.database} on ${target.host}:${target.port}`;
  if (result.code !== 0 || result.spawnError) throw childFailure(label, result, secrets, signal, '', target);
  if (pipeError) throw restoreError('RestoreFailed', redact(`${label}: reading ${item.artifact.key} failed: ${pipeError.message}`, secrets));
}
