/**
 * The MySQL/MariaDB engine's own connection (the preflight's, the row counts'): TLS as the
 * source's mode says, the server's report of the session, and connection errors by name,
 * without the password.
 */
import * as mysql from 'mysql2/promise';
import { redact } from './common';
import { engineTls, readCaBundle, tlsEngineError, type TlsSession } from './tls';
import { DEFAULT_CONNECT_TIMEOUT_SECONDS, EngineError, type DumpTarget } from './types';

const AUTH_ERRNOS = new Set([1044, 1045, 1698, 1251, 1862]);

/** Maps a mysql2 connection error to an EngineError without the password. */
export function mysqlConnectError(err: unknown, target: DumpTarget): EngineError {
  if (err instanceof EngineError) return err;
  const tls = tlsEngineError(err, target, 'MySQL/MariaDB');
  if (tls) return tls;
  const e = err as { code?: string; errno?: number; message?: string };
  const message = redact(
    `cannot connect to MySQL/MariaDB as ${target.username}@${target.host}:${target.port}: ${e.message ?? String(err)}`,
    [target.password],
  );
  if ((e.errno !== undefined && AUTH_ERRNOS.has(e.errno)) || /access denied/i.test(e.message ?? '')) {
    return new EngineError('AuthenticationFailed', message);
  }
  if (e.errno === 1049) return new EngineError('DatabaseNotFound', message);
  return new EngineError('SourceUnreachable', message);
}

export type MysqlConnection = mysql.Connection;

/**
 * mysql2's TLS options: verify-full checks the chain against the CA bundle (rejectUnauthorized)
 * and the host name (verifyIdentity, which mysql2 leaves off unless asked); require encrypts
 * and checks nothing. With either, a server without TLS fails (HANDSHAKE_NO_SSL_SUPPORT).
 */
function mysqlSsl(target: DumpTarget): mysql.ConnectionOptions['ssl'] {
  const tls = engineTls(target);
  if (tls.mode === 'disable') return undefined;
  if (tls.mode === 'verify-full') return { ca: readCaBundle(tls, target), rejectUnauthorized: true, verifyIdentity: true };
  return { rejectUnauthorized: false, verifyIdentity: false };
}

/** The session's TLS as the server reports it; undefined in plain text. */
async function mysqlTlsSession(connection: MysqlConnection): Promise<TlsSession | undefined> {
  const rows = (await query<{ Variable_name: string; Value: string }>(connection,
    "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')"))
    .map((row) => ({ name: row.Variable_name.toUpperCase(), value: row.Value }));
  const value = (name: string) => rows.find((row) => row.name.toUpperCase() === name)?.value ?? '';
  return value('SSL_CIPHER') ? { protocol: value('SSL_VERSION'), cipher: value('SSL_CIPHER') } : undefined;
}

/**
 * A connected mysql2 connection honouring the TLS mode (`prefer` falls back to plain TCP;
 * verify-full and require never do). `tls` is what the server reports for the session:
 * verify-full and require fail with `TlsRequired` should it ever say plain text.
 */
export async function connectMysql(target: DumpTarget): Promise<{ connection: MysqlConnection; tls: boolean; session?: TlsSession }> {
  const mode = engineTls(target).mode;
  const attempt = async (ssl: mysql.ConnectionOptions['ssl']): Promise<MysqlConnection> => {
    const connection = await mysql.createConnection({
      host: target.host,
      port: target.port,
      user: target.username,
      password: target.password,
      ssl,
      connectTimeout: (target.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS) * 1000,
      charset: 'utf8mb4_general_ci',
      supportBigNumbers: true,
      bigNumberStrings: true,
      multipleStatements: false,
    });
    // A server that goes away emits 'error' on an idle connection; the next query reports it.
    connection.on('error', () => undefined);
    return connection;
  };
  const ssl = mysqlSsl(target);
  let connection: MysqlConnection;
  try {
    connection = await attempt(ssl);
  } catch (err) {
    if (mode === 'prefer' && (err as { code?: string }).code === 'HANDSHAKE_NO_SSL_SUPPORT') {
      try {
        return { connection: await attempt(undefined), tls: false };
      } catch (plainErr) {
        throw mysqlConnectError(plainErr, target);
      }
    }
    throw mysqlConnectError(err, target);
  }
  if (ssl === undefined) return { connection, tls: false };
  try {
    const session = await mysqlTlsSession(connection);
    if (!session && mode !== 'prefer') {
      throw tlsEngineError({ name: 'TlsRequired', cause: 'the server reports this session as plain text' }, target, 'MySQL/MariaDB');
    }
    return { connection, tls: session !== undefined, session };
  } catch (err) {
    await connection.end().catch(() => undefined);
    throw mysqlConnectError(err, target);
  }
}

export async function query<T>(connection: MysqlConnection, sql: string, values: unknown[] = []): Promise<T[]> {
  const [rows] = await connection.query(sql, values);
  return rows as T[];
}

/**
 * The privileges of this session, as SHOW GRANTS lists them: its own and its active roles'.
 * MariaDB lists the current role's grants itself; MySQL 8 only with `USING` the active roles.
 */
export async function showGrants(connection: MysqlConnection, flavor: 'mysql' | 'mariadb'): Promise<string[]> {
  let sql = 'SHOW GRANTS';
  if (flavor === 'mysql') {
    const [row] = await query<{ roles: string | null }>(connection, 'SELECT CURRENT_ROLE() AS roles');
    // CURRENT_ROLE() is NONE or a list of quoted accounts (`r`@`%`,…), as USING takes it.
    if (row?.roles && row.roles !== 'NONE') sql = `SHOW GRANTS FOR CURRENT_USER() USING ${row.roles}`;
  }
  const rows = await query<Record<string, unknown>>(connection, sql);
  return rows.map((row) => String(Object.values(row)[0] ?? ''));
}
