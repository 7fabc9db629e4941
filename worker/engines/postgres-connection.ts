/**
 * The PostgreSQL engine's own connection (the preflight's, the exported snapshot's) and the
 * clients' connection strings: TLS as the source's mode says, the server's report of the
 * session, and connection errors by name, without the password.
 */
import { Client, type ClientConfig } from 'pg';
import { childEnv, redact } from './common';
import { pgIdent } from './postgres-privileges';
import { engineTls, readCaBundle, tlsEngineError, type TlsSession } from './tls';
import { DEFAULT_CONNECT_TIMEOUT_SECONDS, EngineError, type DumpTarget, type TlsMode } from './types';

const APPLICATION_NAME = 'lifeboat';

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

export function pgEnv(target: DumpTarget): NodeJS.ProcessEnv {
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
