/**
 * The MySQL/MariaDB engine against throwaway MariaDB servers: preflight, a dump that stock
 * `zstd -d | mariadb` restores into a fresh server with exactly the counted rows and the
 * routines, trigger and event; both row-count consistency modes under concurrent writes;
 * credentials kept out of errors.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as mysql from 'mysql2/promise';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { run } from '../harness/processes';
import { preflight, quoteMysqlIdent, startDump } from '../../worker/engines/mysql';
import type { DumpProcess, DumpTarget, Preflight, TableCount } from '../../worker/engines/types';

const SEED = readFileSync(join(__dirname, '../fixtures/seed-mariadb.sql'), 'utf8');
const PASSWORD = "Tr0ub4dor&3-'пароль'";

let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'lifeboat-mysql-engine-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

async function dumpToFile(dump: DumpProcess, name: string): Promise<string> {
  const path = join(workDir, name);
  await Promise.all([pipeline(dump.stdout, createWriteStream(path)), dump.completion]);
  return path;
}

/** `zstd -dc artifact | mariadb` (or gzip), as a runbook would do it, without a shell. */
async function restore(server: MariaDbServer, artifact: string, decompressor: 'zstd' | 'gzip'): Promise<void> {
  const decompress = spawn(decompressor, ['-dc', artifact], { stdio: ['ignore', 'pipe', 'pipe'] });
  const client = spawn(
    'mariadb',
    ['--no-defaults', '--protocol=TCP', `--host=${server.host}`, `--port=${server.port}`, `--user=${server.user}`],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  client.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  decompress.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = (child: ReturnType<typeof spawn>): Promise<number | null> => new Promise((resolve) => child.on('close', resolve));
  const [, decompressed, restored] = await Promise.all([pipeline(decompress.stdout, client.stdin), exit(decompress), exit(client)]);
  if (decompressed !== 0 || restored !== 0) throw new Error(`restore failed (${decompressed}/${restored}): ${stderr}`);
}

async function countsIn(server: MariaDbServer, tables: readonly TableCount[]): Promise<TableCount[]> {
  const sql = tables.map((t) => `SELECT COUNT(*) FROM ${quoteMysqlIdent(t.database)}.${quoteMysqlIdent(t.name)};`).join('\n');
  const counts = (await server.sql(sql)).trim().split('\n').map(Number);
  return tables.map((t, i) => ({ ...t, rows: counts[i] as number }));
}

async function withFreshServer<T>(fn: (server: MariaDbServer) => Promise<T>): Promise<T> {
  const server = await startMariaDb();
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}

describe('MySQL/MariaDB engine on MariaDB', () => {
  let db: MariaDbServer;
  let target: DumpTarget;
  let pre: Preflight;

  beforeAll(async () => {
    db = await startMariaDb({ password: PASSWORD });
    await db.sql(SEED);
    target = { host: db.host, port: db.port, username: db.user, password: PASSWORD, databases: ['shop', 'crm'] };
    pre = await preflight(target);
  });
  afterAll(() => db?.stop());

  test('preflight reports the flavour, versions, sizes and character sets', async () => {
    const clientLine = (await run('mariadb-dump', ['--version'])).stdout.trim();
    const sizes = (
      await db.sql(
        "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('shop', 'crm') GROUP BY TABLE_SCHEMA ORDER BY TABLE_SCHEMA = 'crm';",
      )
    )
      .trim()
      .split('\n')
      .map(Number);

    expect(pre.engine).toBe('mariadb');
    expect(pre.server).toEqual({ version: db.version.split('-')[0], major: 10, versionString: db.version });
    expect(pre.client).toMatchObject({
      tool: 'mariadb-dump',
      flavor: 'mariadb',
      version: /Distrib (\d+\.\d+\.\d+)/.exec(clientLine)?.[1],
      major: 10,
      versionString: clientLine,
    });
    expect(pre.client.path).toMatch(/\/mariadb-dump$/);
    expect(pre.databases).toEqual([
      { name: 'shop', sizeBytes: sizes[0], encoding: 'utf8mb4', collation: 'utf8mb4_unicode_ci' },
      { name: 'crm', sizeBytes: sizes[1], encoding: 'utf8mb4', collation: 'utf8mb4_unicode_ci' },
    ]);
    expect(pre.databaseSizeBytes).toBe((sizes[0] ?? 0) + (sizes[1] ?? 0));
    expect(pre.encoding).toBe('utf8mb4');
    expect(pre.extensions).toEqual([]);
    expect(pre.tls).toBe(false);
    expect(pre.warnings).toEqual([]);
  });

  test('the dump restores with stock zstd and mariadb into a fresh server: counted rows, routines, trigger, event', async () => {
    const dump = startDump(target, { preflight: pre, database: 'shop' });
    expect(dump.artifact).toEqual({ fileExtension: '.sql.zst', format: 'sql', compression: 'zstd:3' });
    const artifact = await dumpToFile(dump, 'shop.sql.zst');
    const tables = await dump.tables;
    expect(await dump.rowCountConsistency).toBe('separate-snapshot');

    expect((await run('zstd', ['-t', artifact])).code).toBe(0);
    expect(tables.map((t) => t.name).sort()).toEqual(['Kunden Ümlaut', 'customers', 'empty_table', 'order_audit', 'orders', 'we`ird']);
    expect(tables.find((t) => t.name === 'Kunden Ümlaut')).toEqual({
      database: 'shop',
      schema: 'shop',
      name: 'Kunden Ümlaut',
      rows: 37,
      exact: true,
    });
    expect(tables.find((t) => t.name === 'orders')?.rows).toBe(3001);

    await withFreshServer(async (fresh) => {
      await restore(fresh, artifact, 'zstd');
      expect(await countsIn(fresh, tables)).toEqual(tables);
      const objects = await fresh.sql(`
        SELECT CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop'
        UNION ALL SELECT CONCAT('TRIGGER ', TRIGGER_NAME, ' ', EVENT_OBJECT_TABLE) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop'
        UNION ALL SELECT CONCAT('EVENT ', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'shop'
        UNION ALL SELECT CONCAT('VIEW ', TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop';`);
      expect(objects.trim().split('\n').sort()).toEqual([
        'EVENT purge_audit',
        'FUNCTION customer_total',
        'PROCEDURE add_order',
        'TRIGGER orders_audit orders',
        'VIEW order_summary',
      ]);
      expect(
        (await fresh.sql("SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop';")).trim(),
      ).toBe('utf8mb4_unicode_ci');
      expect((await fresh.sql('SELECT `größe`, HEX(token) = SHA2(7, 256) FROM shop.`Kunden Ümlaut`, shop.orders WHERE `Kunden Ümlaut`.id = 2 AND orders.id = 7;')).trim()).toBe(
        '3.00\t1',
      );
      expect((await fresh.sql('SELECT shop.customer_total(7);')).trim()).toBe(
        (await db.sql('SELECT shop.customer_total(7);')).trim(),
      );
      // The trigger works after the restore (it was created after the data, so the data did not fire it).
      await fresh.sql('CALL shop.add_order(1, 5.00);');
      expect((await fresh.sql('SELECT COUNT(*) FROM shop.order_audit;')).trim()).toBe('3002');
    });
  });

  test('same-snapshot: the counts equal the artifact while other connections keep inserting', async () => {
    const writers = await Promise.all(
      [0, 1].map(() => mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: PASSWORD, database: 'shop' })),
    );
    let writing = true;
    let inserted = 0;
    const loops = writers.map(async (connection, i) => {
      while (writing) {
        await connection.query('CALL add_order(?, 1.00)', [1 + i]);
        inserted++;
      }
    });
    const warnings: string[] = [];
    try {
      while (inserted < 200) await new Promise((resolve) => setTimeout(resolve, 5));
      const dump = startDump(target, {
        preflight: pre,
        database: 'shop',
        compression: 'gzip',
        rowCountConsistency: 'same-snapshot',
        onWarning: (message) => warnings.push(message),
      });
      expect(dump.artifact).toEqual({ fileExtension: '.sql.gz', format: 'sql', compression: 'gzip:1' });
      const artifact = await dumpToFile(dump, 'shop-concurrent.sql.gz');
      const tables = await dump.tables;
      expect(warnings).toEqual([]);
      expect(await dump.rowCountConsistency).toBe('same-snapshot');
      const atEnd = inserted;
      while (inserted < atEnd + 100) await new Promise((resolve) => setTimeout(resolve, 5));
      writing = false;
      await Promise.all(loops);

      const counted = (name: string): number => tables.find((t) => t.name === name)?.rows ?? -1;
      const live = Number((await db.sql('SELECT COUNT(*) FROM shop.orders;')).trim());
      expect(counted('orders')).toBeGreaterThanOrEqual(3201);
      expect(live).toBeGreaterThan(counted('orders'));
      // Each order inserts its audit row in the same transaction: one snapshot sees both or neither.
      expect(counted('order_audit')).toBe(counted('orders'));
      await withFreshServer(async (fresh) => {
        await restore(fresh, artifact, 'gzip');
        expect(await countsIn(fresh, tables)).toEqual(tables);
      });
      console.log(`same-snapshot under inserts: ${counted('orders')} orders in the dump, ${live} by the end`);
    } finally {
      writing = false;
      await Promise.allSettled(loops);
      await Promise.all(writers.map((c) => c.end()));
    }
  });

  test('same-snapshot without the RELOAD privilege falls back to a separate snapshot and says so', async () => {
    const password = 'dumper-pw-4711';
    await db.sql(`
      CREATE USER dumper@'%' IDENTIFIED BY '${password}';
      GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS ON *.* TO dumper@'%';`);
    const dumperTarget: DumpTarget = { ...target, username: 'dumper', password, databases: ['crm'] };
    const warnings: string[] = [];
    const dump = startDump(dumperTarget, {
      preflight: await preflight(dumperTarget),
      database: 'crm',
      rowCountConsistency: 'same-snapshot',
      onWarning: (message) => warnings.push(message),
    });
    dump.stdout.resume();
    await dump.completion;
    expect(await dump.tables).toEqual([{ database: 'crm', schema: 'crm', name: 'contacts', rows: 250, exact: true }]);
    expect(await dump.rowCountConsistency).toBe('separate-snapshot');
    expect(warnings).toEqual([expect.stringMatching(/^row counts: FLUSH TABLES WITH READ LOCK failed \(.*RELOAD.*\); counting in a separate snapshot$/)]);
  });

  test('tables above exactCountMaxBytes get flagged estimates; excluded tables are neither dumped nor counted', async () => {
    const dump = startDump(target, {
      preflight: pre,
      database: 'shop',
      compression: 'none',
      exactCountMaxBytes: 64 * 1024,
      excludeTables: ['shop.we`ird', 'order_a*'],
    });
    expect(dump.artifact.fileExtension).toBe('.sql');
    const sql = readFileSync(await dumpToFile(dump, 'shop-excluded.sql'), 'utf8');
    const tables = await dump.tables;
    expect(tables.map((t) => t.name).sort()).toEqual(['Kunden Ümlaut', 'customers', 'empty_table', 'orders']);
    expect(tables.find((t) => t.name === 'orders')).toMatchObject({ exact: false });
    expect(tables.find((t) => t.name === 'Kunden Ümlaut')).toMatchObject({ rows: 37, exact: true });
    expect(sql).toContain('CREATE TABLE `orders`');
    expect(sql).not.toContain('CREATE TABLE `order_audit`');
    expect(sql).not.toContain('CREATE TABLE `we``ird`');
  });

  test('a wrong password is AuthenticationFailed and appears in no message or stack', async () => {
    const wrong = 'wr0ng-Passw0rd-!xyz';
    const err = (await preflight({ ...target, password: wrong }).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('AuthenticationFailed');
    expect(err.message).toMatch(/Access denied for user 'root'/);
    expect(`${err.message}\n${err.stack}\n${JSON.stringify(err)}`).not.toContain(wrong);

    const dump = startDump({ ...target, password: wrong }, { preflight: pre, database: 'shop' });
    const dumpErr = (await dump.completion.catch((e: unknown) => e)) as Error;
    expect(dumpErr.name).toBe('AuthenticationFailed');
    expect(`${dumpErr.message}\n${dumpErr.stack}`).not.toContain(wrong);
    expect(dump.stdout.destroyed).toBe(true);
  });

  test('an unknown database is DatabaseNotFound; a database outside the target is InvalidDumpOptions', async () => {
    await expect(preflight({ ...target, databases: ['shop', 'nope'] })).rejects.toMatchObject({
      name: 'DatabaseNotFound',
      message: expect.stringContaining('nope'),
    });
    expect(() => startDump(target, { preflight: pre, database: 'mysql' })).toThrow(
      expect.objectContaining({ name: 'InvalidDumpOptions' }),
    );
  });

  test('kill() before the client started: completion rejects with DumpFailed', async () => {
    const dump = startDump(target, { preflight: pre, database: 'shop' });
    dump.kill();
    await expect(dump.completion).rejects.toMatchObject({ name: 'DumpFailed', message: 'mariadb-dump was stopped before it started' });
    expect(dump.stdout.destroyed).toBe(true);
  });
});
