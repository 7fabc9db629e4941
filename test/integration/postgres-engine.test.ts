/**
 * The PostgreSQL engine against throwaway servers: preflight, version safety, a dump that
 * stock pg_restore restores with exactly the counted rows, snapshot-consistent counts under
 * concurrent writes, credentials kept out of errors, and failures mid-dump.
 */
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { freePort, run } from '../harness/processes';
import { startPostgres, type PgServer } from '../harness/postgres';
import { PG_CLIENT_MAJOR, pgClientTooOldHint } from '../../lib/domain/versions';
import { EMBEDDED_PG_BIN_DIR, embeddedPgMajor } from '../../lib/drill/servers';
import { resolveClient } from '../../worker/engines/common';
import { quotePgIdent } from '../../worker/engines/postgres-clients';
import { dumpGlobals, preflight, startDump } from '../../worker/engines/postgres';
import type { DumpProcess, DumpTarget, Preflight, TableCount } from '../../worker/engines/types';

const SEED = readFileSync(join(__dirname, '../fixtures/seed-postgres.sql'), 'utf8');
const PASSWORD = 'Tr0ub4dor&3-пароль';

let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'lifeboat-pg-engine-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function targetFor(pg: PgServer, database: string, password = PASSWORD): DumpTarget {
  return { host: pg.host, port: pg.port, username: pg.user, password, databases: [database] };
}

async function toFile(stream: Readable, name: string): Promise<string> {
  const path = join(workDir, name);
  await pipeline(stream, createWriteStream(path));
  return path;
}

/** Writes the artifact to a file and waits for the dump; returns the path. */
async function dumpToFile(dump: DumpProcess, name: string): Promise<string> {
  const [path] = await Promise.all([toFile(dump.stdout, name), dump.completion]);
  return path;
}

async function restore(pg: PgServer, artifact: string, database: string): Promise<void> {
  await pg.createDatabase(database);
  const result = await run('pg_restore', ['--exit-on-error', '--no-owner', `--dbname=${database}`, artifact], {
    env: { ...process.env, ...pg.env },
  });
  if (result.code !== 0) throw new Error(`pg_restore failed: ${result.stderr}`);
}

async function restoredCounts(pg: PgServer, database: string, tables: readonly TableCount[]): Promise<TableCount[]> {
  const sql = tables
    .map((t) => `SELECT count(*) FROM ONLY ${quotePgIdent(t.schema)}.${quotePgIdent(t.name)};`)
    .join('\n');
  const counts = (await pg.psql(sql, database)).trim().split('\n').map(Number);
  return tables.map((t, i) => ({ ...t, rows: counts[i] as number }));
}

/** Leaf tables whose data the archive holds, from its table of contents. */
async function tocTableData(pg: PgServer, artifact: string): Promise<string[]> {
  const result = await run('pg_restore', ['--list', artifact], { env: { ...process.env, ...pg.env } });
  return result.stdout
    .split('\n')
    .map((line) => /TABLE DATA (\S+) (.+) \S+$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]}.${m[2]}`)
    .sort();
}

describe('PostgreSQL engine on PostgreSQL 15', () => {
  let pg: PgServer;
  let target: DumpTarget;
  let pre: Preflight;

  beforeAll(async () => {
    pg = await startPostgres({ password: PASSWORD });
    await pg.createDatabase('app');
    await pg.psql(SEED, 'app');
    target = targetFor(pg, 'app');
    pre = await preflight(target);
  });
  afterAll(() => pg?.stop());

  test('preflight reports versions, size, encoding and extensions', async () => {
    const pgDump = await run('pg_dump', ['--version']);
    const clientVersion = /(\d+\.\d+)/.exec(pgDump.stdout)?.[1];
    const serverVersion = (await pg.psql('SHOW server_version;')).trim();
    const size = Number((await pg.psql("SELECT pg_database_size('app');")).trim());

    expect(pre.engine).toBe('postgres');
    expect(pre.server).toEqual({ version: serverVersion.split(' ')[0], major: 15, versionString: serverVersion });
    expect(pre.client).toMatchObject({ tool: 'pg_dump', version: clientVersion, major: 15, flavor: 'postgres' });
    expect(pre.client.path).toMatch(/\/pg_dump$/);
    expect(pre.client.versionString).toBe(pgDump.stdout.trim());
    expect(pre.databaseSizeBytes).toBeGreaterThan(size * 0.9);
    expect(pre.databaseSizeBytes).toBeLessThan(size * 1.1);
    expect(pre.encoding).toBe('UTF8');
    expect(pre.databases).toEqual([{ name: 'app', sizeBytes: pre.databaseSizeBytes, encoding: 'UTF8', collation: 'C' }]);
    expect(pre.extensions.map((e) => e.name)).toEqual(['citext', 'pgcrypto', 'plpgsql']);
    for (const e of pre.extensions) expect(e).toEqual({ database: 'app', name: e.name, version: expect.stringMatching(/^\d+\.\d+$/) });
    // The harness server has no TLS: 'prefer' fell back to plain TCP.
    expect(pre.tls).toBe(false);
    expect(pre.warnings).toEqual([]);
  });

  test('the dump restores with stock pg_restore and holds exactly the counted rows', async () => {
    const dump = startDump(target, { preflight: pre, database: 'app' });
    expect(dump.artifact).toEqual({ fileExtension: '.pgdump', format: 'pg_dump-custom', compression: 'gzip:1' });
    const artifact = await dumpToFile(dump, 'app.pgdump');
    const tables = await dump.tables;
    expect(await dump.rowCountConsistency).toBe('same-snapshot');

    expect(readFileSync(artifact).subarray(0, 5).toString()).toBe('PGDMP');
    expect(tables.map((t) => `${t.schema}.${t.name}`)).toEqual([
      'Kunden.Kunden Ümlaut',
      'public.cache',
      'public.customers',
      'public.documents',
      'public.empty_table',
      'sales.Order "Notes"',
      'sales.orders',
      'sales.orders_2025',
      'sales.orders_2026',
      'sales.orders_default',
    ]);
    const byName = Object.fromEntries(tables.map((t) => [`${t.schema}.${t.name}`, t]));
    expect(byName['Kunden.Kunden Ümlaut']).toEqual({ database: 'app', schema: 'Kunden', name: 'Kunden Ümlaut', rows: 37, exact: true });
    expect(byName['public.customers']?.rows).toBe(1000);
    // The partitioned parent stores nothing itself; its 3000 rows are in the partitions.
    expect(byName['sales.orders']?.rows).toBe(0);
    expect(['sales.orders_2025', 'sales.orders_2026', 'sales.orders_default'].map((n) => byName[n]?.rows ?? 0).reduce((a, b) => a + b)).toBe(3000);
    expect(tables.every((t) => t.exact)).toBe(true);

    // Every table whose data the archive holds is counted, and nothing else but the parent.
    const toc = await tocTableData(pg, artifact);
    expect(toc).toEqual(tables.filter((t) => t.name !== 'orders').map((t) => `${t.schema}.${t.name}`).sort());

    await restore(pg, artifact, 'restored');
    expect(await restoredCounts(pg, 'restored', tables)).toEqual(tables);
    expect((await pg.psql("SELECT \"größe\" FROM \"Kunden\".\"Kunden Ümlaut\" WHERE id = 2;", 'restored')).trim()).toBe('3.00');
    expect((await pg.psql("SELECT extname FROM pg_extension ORDER BY 1;", 'restored')).trim().split('\n')).toEqual(['citext', 'pgcrypto', 'plpgsql']);
    expect((await pg.psql("SELECT nextval('sales.invoice_no');", 'restored')).trim()).toBe('1005');
    expect((await pg.psql('SELECT count(*) FROM pg_largeobject_metadata;', 'restored')).trim()).toBe('5');
    expect(
      (await pg.psql("SELECT convert_from(lo_get(content), 'UTF8') FROM public.documents WHERE id = 3;", 'restored')).trim(),
    ).toBe('Dokument 3 größe; '.repeat(50).trim());
    expect((await pg.psql('SELECT count(*) FROM sales.daily_totals;', 'restored')).trim()).toBe('500');
  });

  test('zstd needs pg_dump 16: asking pg_dump 15 for it fails before anything starts', () => {
    expect(() => startDump(target, { preflight: pre, database: 'app', compression: 'zstd:3' })).toThrow(
      expect.objectContaining({ name: 'InvalidDumpOptions', message: expect.stringContaining('needs pg_dump 16 or later') }),
    );
  });

  test('row counts are from the dump snapshot while other connections keep inserting', async () => {
    await pg.psql('CREATE TABLE public.ticks (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());', 'app');
    const writers = await Promise.all(
      [0, 1].map(async () => {
        const client = new Client({ host: pg.host, port: pg.port, user: pg.user, password: PASSWORD, database: 'app' });
        await client.connect();
        return client;
      }),
    );
    let writing = true;
    let inserted = 0;
    const loops = writers.map(async (client, i) => {
      while (writing) {
        await client.query('INSERT INTO public.ticks DEFAULT VALUES');
        await client.query('INSERT INTO sales.orders (customer_id, ordered_at, amount) VALUES ($1, $2, 1)', [1 + i, i ? '2026-03-01' : '2025-03-01']);
        inserted++;
      }
    });
    try {
      while (inserted < 200) await new Promise((resolve) => setTimeout(resolve, 5));
      const dump = startDump(target, { preflight: pre, database: 'app', compression: 'none' });
      const artifact = await dumpToFile(dump, 'concurrent.pgdump');
      const tables = await dump.tables;
      const atEnd = inserted;
      while (inserted < atEnd + 200) await new Promise((resolve) => setTimeout(resolve, 5));
      writing = false;
      await Promise.all(loops);

      const counted = (name: string): number => tables.find((t) => t.name === name)?.rows ?? -1;
      const live = Number((await pg.psql('SELECT count(*) FROM public.ticks;', 'app')).trim());
      // Writes went on before, during and after the dump...
      expect(counted('ticks')).toBeGreaterThanOrEqual(200);
      expect(live).toBeGreaterThan(counted('ticks'));
      // ...and the counts are exactly what the artifact holds.
      await restore(pg, artifact, 'restored_concurrent');
      expect(await restoredCounts(pg, 'restored_concurrent', tables)).toEqual(tables);
      console.log(`concurrent inserts: ${counted('ticks')} ticks in the dump, ${live} by the end`);
    } finally {
      writing = false;
      await Promise.allSettled(loops);
      await Promise.all(writers.map((c) => c.end()));
    }
  });

  test('tables above exactCountMaxBytes get flagged planner estimates', async () => {
    const dump = startDump(target, { preflight: pre, database: 'app', exactCountMaxBytes: 64 * 1024 });
    dump.stdout.resume();
    await dump.completion;
    const tables = await dump.tables;
    const customers = tables.find((t) => t.name === 'customers');
    const relSize = Number((await pg.psql("SELECT pg_relation_size('public.customers');", 'app')).trim());
    expect(relSize).toBeGreaterThan(64 * 1024);
    // ANALYZE in the seed made reltuples exact for this table.
    expect(customers).toEqual({ database: 'app', schema: 'public', name: 'customers', rows: 1000, exact: false });
    expect(tables.find((t) => t.name === 'Kunden Ümlaut')?.exact).toBe(true);
  });

  test('excluded tables are neither dumped nor counted', async () => {
    const dump = startDump(target, {
      preflight: pre,
      database: 'app',
      excludeTables: ['"Kunden"."Kunden Ümlaut"', 'public.cach?', 'sales.Order*'],
    });
    const artifact = await dumpToFile(dump, 'excluded.pgdump');
    const names = (await dump.tables).map((t) => `${t.schema}.${t.name}`);
    expect(names).not.toContain('Kunden.Kunden Ümlaut');
    expect(names).not.toContain('public.cache');
    // Unquoted pattern parts fold to lower case, as in psql: "Order*" does not match 'Order "Notes"'.
    expect(names).toContain('sales.Order "Notes"');
    const toc = await tocTableData(pg, artifact);
    expect(toc).not.toContain('Kunden.Kunden Ümlaut');
    expect(toc).not.toContain('public.cache');
    expect(toc).toContain('public.customers');
  });

  test('dumpGlobals gives roles without their passwords', async () => {
    await pg.psql("CREATE ROLE app_reader LOGIN PASSWORD 'reader-secret-42';");
    const globals = dumpGlobals(target, { preflight: pre });
    const [path] = await Promise.all([toFile(globals.stdout, 'globals.sql'), globals.completion]);
    const sql = readFileSync(path, 'utf8');
    expect(sql).toMatch(/CREATE ROLE app_reader;/);
    expect(sql).not.toMatch(/reader-secret-42|SCRAM-SHA-256\$/);
    expect(sql).not.toContain(PASSWORD);
  });

  test('a wrong password is AuthenticationFailed and appears in no message or stack', async () => {
    const wrong = 'wr0ng-Passw0rd-!xyz';
    const err = (await preflight(targetFor(pg, 'app', wrong)).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('AuthenticationFailed');
    expect(err.message).toMatch(/password authentication failed/);
    expect(`${err.message}\n${err.stack}\n${JSON.stringify(err)}`).not.toContain(wrong);

    const dump = startDump(targetFor(pg, 'app', wrong), { preflight: pre, database: 'app' });
    const dumpErr = (await dump.completion.catch((e: unknown) => e)) as Error;
    expect(dumpErr.name).toBe('AuthenticationFailed');
    expect(`${dumpErr.message}\n${dumpErr.stack}`).not.toContain(wrong);
    await expect(dump.tables).rejects.toMatchObject({ name: 'AuthenticationFailed' });
    expect(dump.stdout.destroyed).toBe(true);
  });

  test('a missing password is AuthenticationFailed; a missing database DatabaseNotFound', async () => {
    await expect(preflight({ ...target, password: undefined })).rejects.toMatchObject({ name: 'AuthenticationFailed' });
    await expect(preflight({ ...target, databases: ['app', 'nope'] })).rejects.toMatchObject({
      name: 'DatabaseNotFound',
      message: expect.stringContaining('"nope" does not exist'),
    });
  });

  test('nothing listening is SourceUnreachable', async () => {
    const port = await freePort();
    await expect(preflight({ ...target, port, connectTimeoutSeconds: 2 })).rejects.toMatchObject({
      name: 'SourceUnreachable',
      message: expect.stringContaining(`postgres@127.0.0.1:${port}/app`),
    });
  });

  test('kill() before pg_dump started: completion rejects with DumpFailed, stdout is closed', async () => {
    const dump = startDump(target, { preflight: pre, database: 'app' });
    dump.kill();
    await expect(dump.completion).rejects.toMatchObject({ name: 'DumpFailed', message: 'pg_dump was stopped before it started' });
    await expect(dump.tables).rejects.toMatchObject({ name: 'DumpFailed' });
    expect(dump.stdout.destroyed).toBe(true);
  });
});

/** Polls pg_stat_activity until a backend streaming a COPY of `database` waits on its client. */
async function waitForBackendBlockedOnWrite(server: PgServer, database: string): Promise<void> {
  const sql =
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'ClientWrite' " +
    `AND datname = '${database}' AND query LIKE 'COPY %';`;
  for (let attempt = 0; attempt < 600; attempt++) {
    if ((await server.psql(sql)).trim() === '1') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no backend of ${database} blocked on ClientWrite after 600 polls`);
}

describe('PostgreSQL engine: the server dies mid-dump', () => {
  let pg: PgServer;
  beforeAll(async () => {
    pg = await startPostgres({ password: PASSWORD });
    await pg.createDatabase('big');
    await pg.psql("CREATE TABLE big AS SELECT i AS id, md5(i::text) AS payload FROM generate_series(1, 1000000) AS i;", 'big');
  });
  afterAll(() => pg?.stop());

  test('kill() while pg_dump streams: completion rejects with DumpFailed', async () => {
    const target = targetFor(pg, 'big');
    const dump = startDump(target, { preflight: await preflight(target), database: 'big', compression: 'none' });
    await new Promise((resolve) => dump.stdout.once('data', resolve));
    dump.stdout.pause();
    dump.kill();
    dump.stdout.resume();
    await expect(dump.completion).rejects.toMatchObject({ name: 'DumpFailed', message: expect.stringMatching(/^pg_dump was stopped before it finished/) });
  });

  test('SIGKILL of the postmaster while pg_dump streams → completion rejects with DumpFailed', async () => {
    const target = targetFor(pg, 'big');
    const pre = await preflight(target);
    const dump = startDump(target, { preflight: pre, database: 'big', compression: 'none' });
    // Read one chunk, then stop reading: pg_dump blocks mid-table on back-pressure.
    const first = await new Promise<Buffer>((resolve) => dump.stdout.once('data', resolve));
    dump.stdout.pause();
    // A backend notices its postmaster's death only while it waits. Kill once it is blocked
    // writing the COPY to pg_dump; a fixed delay raced on a loaded machine (the backend had not
    // filled the buffers yet, then streamed to the end without ever waiting again).
    await waitForBackendBlockedOnWrite(pg, 'big');
    pg.kill('SIGKILL');
    let bytes = first.length;
    dump.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    dump.stdout.resume();
    const err = (await dump.completion.catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('DumpFailed');
    expect(err.message).toMatch(/^pg_dump exited with code 1: /);
    expect(err.message).not.toContain(PASSWORD);
    // Far less than the table: the output was cut off, and completion said so.
    expect(bytes).toBeLessThan(30_000_000);
    console.log(`server killed after ${bytes} bytes: ${err.message.split('\n').slice(0, 2).join(' | ')}`);
  });
});

describe(`PostgreSQL engine against a newer server (embedded PostgreSQL ${embeddedPgMajor()})`, () => {
  let newer: PgServer;
  beforeAll(async () => {
    newer = await startPostgres({ binDir: EMBEDDED_PG_BIN_DIR });
  });
  afterAll(() => newer?.stop());

  test('preflight fails with ClientTooOld naming both versions, and starts no dump', async () => {
    expect(newer.version).toBe(embeddedPgMajor());
    const serverVersion = (await newer.psql('SHOW server_version;')).trim();
    const clientVersion = /(\d+\.\d+)/.exec((await run('pg_dump', ['--version'])).stdout)?.[1];
    // A pg_dump that records each invocation, then runs the real one.
    const binDir = join(workDir, 'recording-bin');
    const log = join(workDir, 'pg_dump-invocations.log');
    mkdirSync(binDir);
    writeFileSync(join(binDir, 'pg_dump'), `#!/bin/sh\necho "$*" >> '${log}'\nexec '${resolveClient('pg_dump')}' "$@"\n`, { mode: 0o755 });

    const err = (await preflight({ host: newer.host, port: newer.port, username: newer.user, databases: ['postgres'] }, { binDir }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(err.name).toBe('ClientTooOld');
    expect(err.message).toBe(
      `pg_dump ${clientVersion} cannot dump PostgreSQL ${serverVersion}: the dump client must be at least the server's major version; ` +
        pgClientTooOldHint('pg_dump', Number(clientVersion?.split('.')[0]), newer.version),
    );
    expect(err.message).toContain(`PostgreSQL ${PG_CLIENT_MAJOR} clients`);
    // The only run of pg_dump was the --version probe.
    expect(readFileSync(log, 'utf8')).toBe('--version\n');
  });

  test('without a preflight, pg_dump itself refuses: DumpFailed and not a byte of output', async () => {
    const target: DumpTarget = { host: newer.host, port: newer.port, username: newer.user, databases: ['postgres'] };
    const pg15Preflight = preflightOf15();
    const dump = startDump(target, { preflight: pg15Preflight, database: 'postgres' });
    let bytes = 0;
    dump.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    await expect(dump.completion).rejects.toMatchObject({ name: 'DumpFailed', message: expect.stringMatching(/server version mismatch/) });
    expect(bytes).toBe(0);
  });
});

/** A preflight result for the local pg_dump, as if taken against a PostgreSQL 15 server. */
function preflightOf15(): Preflight {
  const path = resolveClient('pg_dump');
  return {
    engine: 'postgres',
    server: { version: '15.0', major: 15, versionString: '15.0' },
    client: { tool: 'pg_dump', path, version: '15.0', major: 15, flavor: 'postgres', versionString: '' },
    databaseSizeBytes: 0,
    encoding: 'UTF8',
    databases: [],
    extensions: [],
    tls: false,
    warnings: [],
  };
}
