/**
 * PostgreSQL's restore (the engine's `restore`, lib/engines/postgres.ts): the target inspected
 * through the driver, each missing database created from template0, pg_restore --jobs from the
 * downloaded archive, globals.sql applied with psql first when asked.
 */
import { Client } from 'pg';
import { redact } from '../domain/errors';
import { pgTlsEnv } from '../domain/tls';
import type { EngineRestore, PlannedRestore, RestoreTarget, TargetState } from '../engines/restore-contract';
import { restoreError } from './errors';
import {
  CONNECT_TIMEOUT_MS, caPem, childEnv, childFailure, connectFailure, resolveTool, startChild, targetTls,
} from './target';

export const postgresRestore: EngineRestore = {
  replaces: 'drop or collide with',
  clients(context) {
    const restore = resolveTool(['pg_restore']);
    const psql = context.globals ? resolveTool(['psql']) : undefined;
    const { target, secrets, signal } = context;
    return {
      inspect: (database) => inspectPostgres(target, database, secrets),
      ...(psql ? { applyGlobals: (file: string) => applyGlobals(psql, target, file, context.log, secrets, signal) } : {}),
      async restore(item, progress) {
        if (!item.exists) await createPgDatabase(target, item.database, context.manifest.encoding, secrets);
        await pgRestore(restore, target, item, { jobs: context.jobs, clean: context.clean, noOwner: context.noOwner }, secrets, signal);
        progress.add(item.artifact.bytes);
      },
    };
  },
};

async function withPg<T>(target: RestoreTarget, database: string, secrets: readonly (string | undefined)[], fn: (client: Client) => Promise<T>): Promise<T> {
  const tls = targetTls(target);
  const connect = async (ssl: false | { rejectUnauthorized: boolean; ca?: string }): Promise<Client> => {
    const candidate = new Client({
      host: target.host, port: target.port, user: target.username, password: target.password, database,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ssl,
    });
    try {
      await candidate.connect();
      return candidate;
    } catch (error) {
      await candidate.end().catch(() => undefined);
      throw error;
    }
  };
  let client: Client;
  try {
    const ssl = tls.mode === 'disable' ? false : tls.mode === 'verify-full' ? { rejectUnauthorized: true, ca: caPem(target, secrets) } : { rejectUnauthorized: false };
    client = await connect(ssl).catch((error: Error) => {
      if (tls.mode === 'prefer' && /does not support SSL/i.test(error.message)) return connect(false);
      throw error;
    });
  } catch (error) {
    throw connectFailure(target, database, error, secrets);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function inspectPostgres(target: RestoreTarget, database: string, secrets: readonly (string | undefined)[]): Promise<TargetState> {
  const exists = await withPg(target, 'postgres', secrets, async (client) =>
    (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount === 1);
  if (!exists) return { exists, relations: [] };
  const relations = await withPg(target, database, secrets, async (client) =>
    (await client.query<{ name: string }>(`SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      ORDER BY 1`)).rows.map((row) => row.name));
  return { exists, relations };
}

function quotePgIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * CREATE DATABASE needs the CREATEDB privilege (or a superuser); from template0 so nothing in
 * the server's template1 collides with the artifact. pg_restore then needs to own the objects it
 * creates: a superuser, or --no-owner with a user that owns the database.
 */
async function createPgDatabase(target: RestoreTarget, database: string, encoding: string | undefined, secrets: readonly (string | undefined)[]): Promise<void> {
  const withEncoding = encoding && /^[A-Za-z0-9_]+$/.test(encoding) ? ` ENCODING '${encoding}'` : '';
  await withPg(target, 'postgres', secrets, async (client) => {
    try {
      await client.query(`CREATE DATABASE ${quotePgIdent(database)} TEMPLATE template0${withEncoding}`);
    } catch (error) {
      throw restoreError('RestoreFailed',
        redact(`cannot create database ${database} on ${target.host}:${target.port} as ${target.username}: ${(error as Error).message} ` +
          '(the restore user needs CREATEDB, or create the database beforehand and grant it to that user)', secrets));
    }
  });
}

async function pgRestore(
  path: string,
  target: RestoreTarget,
  item: PlannedRestore,
  flags: { jobs: number; clean: boolean; noOwner: boolean },
  secrets: readonly (string | undefined)[],
  signal?: AbortSignal,
): Promise<void> {
  const args = pgRestoreArgs(target, item.database, item.file, flags);
  const { child, exit } = startChild(path, args, childEnv({ PGPASSWORD: target.password, PGCONNECT_TIMEOUT: '10', ...pgTlsEnv(targetTls(target)) }), signal);
  child.stdin?.end();
  const result = await exit;
  if (result.code === 0 && !result.spawnError) return;
  if (flags.clean && !result.spawnError && !signal?.aborted && onlyCleanDropsFailed(result.stderr)) return;
  const hint = /role .* does not exist/.test(result.stderr)
    ? ' (the roles of the source are missing: pass --globals to create them first, or --no-owner to restore without owners and grants)'
    : '';
  throw childFailure(`pg_restore into database ${item.database} on ${target.host}:${target.port}`, result, secrets, signal, hint, target);
}

/**
 * With --clean, pg_restore drops each object before creating it, newest first; some drops fail
 * harmlessly (a partition's inherited primary key cannot be dropped on its own, and goes with
 * the partitioned table dropped right after). So a clean restore runs without --exit-on-error
 * and succeeds only when every failed statement was such a DROP and the count of ignored errors
 * pg_restore reports is exactly those.
 */
export function onlyCleanDropsFailed(stderr: string): boolean {
  const ignored = /errors ignored on restore: (\d+)/.exec(stderr);
  if (!ignored) return false;
  const commands = [...stderr.matchAll(/^Command was: (.*)$/gm)].map((match) => match[1]);
  const drops = commands.filter((sql) => /^(DROP |ALTER TABLE (IF EXISTS )?(ONLY )?\S+ DROP CONSTRAINT )/.test(sql));
  return drops.length === commands.length && drops.length === Number(ignored[1]);
}

/** pg_restore's argv (no password: it travels in PGPASSWORD). */
export function pgRestoreArgs(
  target: Pick<RestoreTarget, 'host' | 'port' | 'username'>,
  database: string,
  file: string,
  flags: { jobs: number; clean: boolean; noOwner: boolean },
): string[] {
  return [
    '--host', target.host, '--port', String(target.port), '--username', target.username, '--no-password',
    '--dbname', database, '--jobs', String(flags.jobs),
    ...(flags.clean ? ['--clean', '--if-exists'] : ['--exit-on-error']),
    ...(flags.noOwner ? ['--no-owner', '--no-privileges'] : []),
    file,
  ];
}

/**
 * globals.sql (pg_dumpall --globals-only) creates every role of the source, including ones the
 * target already has (its bootstrap superuser): those statements fail and are reported, the
 * rest applies. psql exits non-zero only when it cannot run the file at all.
 */
async function applyGlobals(
  path: string,
  target: RestoreTarget,
  file: string,
  log: (line: string) => void,
  secrets: readonly (string | undefined)[],
  signal?: AbortSignal,
): Promise<void> {
  const args = ['-X', '-q', '--host', target.host, '--port', String(target.port), '--username', target.username, '--no-password',
    '--dbname', 'postgres', '-f', file];
  const { child, exit } = startChild(path, args, childEnv({ PGPASSWORD: target.password, PGCONNECT_TIMEOUT: '10', ...pgTlsEnv(targetTls(target)) }), signal);
  child.stdin?.end();
  const result = await exit;
  if (result.code !== 0 || result.spawnError) throw childFailure(`psql applying globals.sql on ${target.host}:${target.port}`, result, secrets, signal, '', target);
  const errors = result.stderr.split('\n').filter((line) => line.includes('ERROR:'));
  log(`globals.sql applied${errors.length > 0 ? ` with ${errors.length} statement(s) skipped:` : ''}`);
  for (const line of errors.slice(0, 10)) log(`  ${redact(line.replace(/^.*?ERROR:\s*/, ''), secrets)}`);
}
