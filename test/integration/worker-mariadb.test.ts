/**
 * The dump worker end to end for MariaDB: a throwaway server seeded with InnoDB tables, a
 * routine, a trigger and an event; the artifact restores with the stock client (after zstd).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { dumpCommand } from '../../cli/dump';
import { artifactKey, manifestKey, runPrefix } from '../../lib/domain/layout';
import { parseManifest } from '../../lib/domain/manifest';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startS3, type S3Server } from '../harness/s3';
import { getBytes, listKeys, sha256 } from '../harness/s3-objects';

const BUCKET = 'primary';
const SEED = readFileSync(path.join(__dirname, '../fixtures/seed-mariadb.sql'), 'utf8');
const DATABASES = ['shop', 'crm'];
let source: MariaDbServer;
let target: MariaDbServer;
let s3: S3Server;

beforeAll(async () => {
  [source, target, s3] = await Promise.all([startMariaDb(), startMariaDb(), startS3()]);
  await source.sql(SEED);
  await s3.createBucket(BUCKET);
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop(), s3?.stop()]);
});

/** Per table: row count and CHECKSUM TABLE; plus the routines, triggers, events and views. */
async function snapshot(server: MariaDbServer): Promise<Record<string, string>> {
  const schemas = DATABASES.map((name) => `'${name}'`).join(',');
  const result: Record<string, string> = {};
  const tables = (await server.sql(`SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables
    WHERE table_schema IN (${schemas}) AND table_type = 'BASE TABLE' ORDER BY 1`)).split('\n').filter(Boolean);
  for (const table of tables) {
    const [schema, name] = table.split(/\.(.*)/s);
    const quoted = `\`${schema}\`.\`${name.replace(/`/g, '``')}\``;
    const count = (await server.sql(`SELECT COUNT(*) FROM ${quoted}`)).trim();
    const checksum = (await server.sql(`CHECKSUM TABLE ${quoted}`)).trim().split('\t').at(-1);
    result[table] = `${count} rows, checksum ${checksum}`;
  }
  result['(routines)'] = await server.sql(`SELECT GROUP_CONCAT(CONCAT(routine_schema, '.', routine_name, ':', routine_type) ORDER BY 1)
    FROM information_schema.routines WHERE routine_schema IN (${schemas})`);
  result['(triggers)'] = await server.sql(`SELECT GROUP_CONCAT(CONCAT(trigger_schema, '.', trigger_name) ORDER BY 1)
    FROM information_schema.triggers WHERE trigger_schema IN (${schemas})`);
  result['(events)'] = await server.sql(`SELECT GROUP_CONCAT(CONCAT(event_schema, '.', event_name, ':', status) ORDER BY 1)
    FROM information_schema.events WHERE event_schema IN (${schemas})`);
  result['(views)'] = await server.sql(`SELECT GROUP_CONCAT(CONCAT(table_schema, '.', table_name) ORDER BY 1)
    FROM information_schema.views WHERE table_schema IN (${schemas})`);
  return result;
}

test('MariaDB round trip: every table, routine, trigger and event restores with the stock client', async () => {
  const runId = '20261126T030000Z';
  const before = await snapshot(source);
  expect(before['(routines)']).toMatch(/PROCEDURE/);
  expect(before['(triggers)']).not.toBe('NULL');
  expect(before['(events)']).not.toBe('NULL');

  const lines: string[] = [];
  const code = await dumpCommand([
    '--source-url', `mariadb://${source.user}@${source.host}:${source.port}/`, '--databases', DATABASES.join(','),
    '--source', 'catalogue', '--bucket', BUCKET, '--tier', 'tier2', '--run-id', runId, '--retention', 'none',
  ], {}, { s3: s3.client(), log: (line) => lines.push(line) });
  expect(lines.join('\n')).toContain(`committed catalogue/${runId}`);
  expect(code).toBe(0);

  const client = s3.client();
  const manifest = parseManifest((await getBytes(client, BUCKET, manifestKey('catalogue', runId))).toString('utf8'));
  expect(manifest.engine).toBe('mariadb');
  expect(manifest.globals).toBeUndefined();
  const keys = DATABASES.map((database) => artifactKey('catalogue', runId, database, '.sql.zst'));
  expect(await listKeys(client, BUCKET, runPrefix('catalogue', runId))).toEqual([...keys, manifestKey('catalogue', runId)].sort());

  for (const database of DATABASES) {
    const key = artifactKey('catalogue', runId, database, '.sql.zst');
    const artifact = await getBytes(client, BUCKET, key);
    expect(manifest.artifacts.find((entry) => entry.database === database)).toMatchObject({
      key, bytes: artifact.length, sha256: sha256(artifact), format: 'sql', compression: 'zstd:3',
    });
    // What a runbook does: zstd -d < artifact | mariadb
    await target.sql(zstdDecompressSync(artifact).toString('utf8'));
  }

  const after = await snapshot(target);
  expect(after).toEqual(before);
  for (const table of manifest.tables) {
    expect(`${table.database}.${table.name}: ${after[`${table.schema}.${table.name}`]?.split(' ')[0]}`)
      .toBe(`${table.database}.${table.name}: ${table.rows}`);
  }
}, 120_000);
