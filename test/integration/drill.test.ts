/**
 * Restore drills against real servers: a small PostgreSQL source dumped by the worker into the
 * local S3 server, verified, then restored by the drill into throwaway servers and judged
 * against its manifest. Forged manifests stand for the lies the verifier cannot see.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { drillCommand } from '../../cli/drill';
import type { LifeboatConfig, Source } from '../../lib/config/types';
import { parseDrillReport, type DrillReport } from '../../lib/domain/drill-report';
import { manifestKey, verificationKey } from '../../lib/domain/layout';
import { parseManifest, serializeManifest, type Manifest } from '../../lib/domain/manifest';
import { serializeVerification } from '../../lib/domain/verification';
import { PG_CLIENT_MAJOR } from '../../lib/domain/versions';
import { runDrill, type DrillError } from '../../lib/drill/run-drill';
import { embeddedPgMajor, startDrillServer, type DrillServerFactory } from '../../lib/drill/servers';
import { dumpCommand } from '../../cli/dump';
import { tier1 } from '../fixtures/config';
import { put, verificationFor } from '../fixtures/runs';
import { startPostgres, type PgServer } from '../harness/postgres';
import { startS3, type S3Server } from '../harness/s3';

const BUCKET = 'primary';
const SEED = `
  CREATE EXTENSION citext;
  CREATE TABLE public.customers (id int PRIMARY KEY, email citext NOT NULL);
  CREATE TABLE public.orders (id int PRIMARY KEY, customer int REFERENCES customers, total numeric NOT NULL);
  CREATE SCHEMA audit;
  CREATE TABLE audit.events (id bigserial PRIMARY KEY, what text);
  INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 20) g;
  INSERT INTO orders SELECT g, 1 + g % 20, g * 1.5 FROM generate_series(1, 50) g;
  INSERT INTO audit.events (what) SELECT 'e' || g FROM generate_series(1, 7) g;`;

let db: PgServer;
let s3: S3Server;
let goodRun: Manifest;

const shop = (overrides: Partial<Source> = {}): Source => ({
  name: 'shop',
  engine: 'postgres',
  methods: ['logical'],
  tier: tier1,
  connection: { host: '127.0.0.1', port: 5432, databases: ['shop'], username: 'postgres', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:x', tls: 'prefer' },
  network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] },
  dumpOptions: { excludeTables: [] },
  drillChecks: [{ name: 'every order has a customer', sql: 'SELECT bool_and(customer IS NOT NULL) FROM orders' }],
  ...overrides,
});

/** A drill clock: each drill gets its own second, so its report key is its own. */
let clockSeconds = 0;
const drillClock = () => {
  const at = new Date(Date.UTC(2026, 10, 27, 4, 0, clockSeconds++));
  return () => at;
};

async function dumpAndVerify(runId: string, forge?: (manifest: Manifest) => Manifest): Promise<Manifest> {
  const lines: string[] = [];
  const code = await dumpCommand([
    '--source-url', `postgres://${db.user}@${db.host}:${db.port}/shop`, '--source', 'shop', '--bucket', BUCKET,
    '--tier', 'tier1', '--run-id', runId, '--retention', 'none',
  ], {}, { s3: s3.client(), log: (line) => lines.push(line) });
  expect({ code, output: lines.join('\n') }).toMatchObject({ code: 0 });
  const client = s3.client();
  const stored = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifestKey('shop', runId) }));
  let manifest = parseManifest(await (stored.Body as { transformToString(): Promise<string> }).transformToString());
  if (forge) {
    manifest = forge(manifest);
    await put(client, BUCKET, manifestKey('shop', runId), serializeManifest(manifest));
  }
  // What the Commit step writes after the verifier's ok (which a forged count does not change).
  await put(client, BUCKET, verificationKey('shop', runId), serializeVerification(verificationFor(manifest)));
  return manifest;
}

async function readReport(source: string, drillId: string): Promise<DrillReport> {
  const object = await s3.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: `drills/${source}/${drillId}/report.json` }));
  return parseDrillReport(await (object.Body as { transformToString(): Promise<string> }).transformToString());
}

/** The default factory, counting the servers it started and stopped. */
function countingServers() {
  const counts = { started: 0, stopped: 0 };
  const factory: DrillServerFactory = async (engine, major) => {
    const server = await startDrillServer(engine, major);
    counts.started++;
    return { ...server, stop: async () => { counts.stopped++; await server.stop(); } };
  };
  return { counts, factory };
}

async function failedDrill(opts: Omit<Parameters<typeof runDrill>[0], 's3' | 'bucket'>): Promise<DrillError> {
  const error = await runDrill({ s3: s3.client(), bucket: BUCKET, ...opts }).then(() => undefined, (thrown: unknown) => thrown as DrillError);
  if (!error) throw new Error('the drill passed');
  return error;
}

beforeAll(async () => {
  [db, s3] = await Promise.all([startPostgres(), startS3()]);
  await db.createDatabase('shop');
  await db.psql(SEED, 'shop');
  await s3.createBucket(BUCKET);
  goodRun = await dumpAndVerify('20261126T030000Z');
}, 60_000);

afterAll(async () => {
  await Promise.all([db?.stop(), s3?.stop()]);
});

test('a good backup passes: every check ok, the report is written, the CLI prints the run, the checks and the measured RTO', async () => {
  const lines: string[] = [];
  const { counts, factory } = countingServers();
  const config = { sources: [shop()] } as unknown as LifeboatConfig;
  const now = drillClock();
  const code = await drillCommand(['shop', '--local', '--bucket', BUCKET, '--run', goodRun.runId], {},
    { s3: s3.client(), config, startServer: factory, now, log: (line) => lines.push(line) });
  const output = lines.join('\n');
  expect(output).toMatch(/run 20261126T030000Z from primary .* restored into a throwaway postgres 15\./);
  expect(output).toMatch(/ok {5}table-set: 3 table\(s\), the manifest's set/);
  expect(output).toMatch(/ok {5}row-counts: 3 exact count\(s\) equal the manifest's/);
  expect(output).toMatch(/ok {5}extensions: 2 extension\(s\) present/);
  expect(output).toMatch(/ok {5}sql:every order has a customer: true on database shop/);
  expect(output).toMatch(/timings: download [\d.]+s, restore [\d.]+s, checks [\d.]+s/);
  expect(output).toMatch(/measured RTO [\d.]+s \(target 1h \(3600s\)\)/);
  expect(output).toMatch(/drill passed/);
  expect(code).toBe(0);
  expect(counts).toEqual({ started: 1, stopped: 1 });

  const drillId = '20261127T040000Z';
  const report = await readReport('shop', drillId);
  expect(report).toMatchObject({ source: 'shop', drillId, runId: goodRun.runId, from: 'primary', engine: 'postgres', verdict: 'ok', rtoTargetSeconds: 3600 });
  expect(report.server?.major).toBe(15);
  expect(report.error).toBeUndefined();
  expect(report.checks.map((check) => [check.name, check.ok])).toEqual([
    ['table-set', true], ['row-counts', true], ['extensions', true], ['sql:every order has a customer', true], ['rto', true]]);
  const { downloadSeconds, restoreSeconds, checkSeconds } = report.timings;
  expect(report.measuredRtoSeconds).toBeCloseTo(downloadSeconds + restoreSeconds + checkSeconds, 6);
  expect(restoreSeconds).toBeGreaterThan(0);
  expect(checkSeconds).toBeGreaterThan(0);
}, 60_000);

test('a manifest that records more rows than the artifact holds fails the row-count check, naming the table (the verifier cannot see this)', async () => {
  const forged = await dumpAndVerify('20261126T031500Z', (manifest) => ({
    ...manifest,
    tables: manifest.tables.map((table) => (table.name === 'orders' ? { ...table, rows: table.rows + 5 } : table)),
  }));
  const { counts, factory } = countingServers();
  const error = await failedDrill({ source: shop(), runId: forged.runId, startServer: factory, now: drillClock() });
  expect(error.name).toBe('RowCountMismatch');
  expect(error.message).toMatch(/restore drill of shop \(run 20261126T031500Z\) failed: row-counts: 1 of 3 exact count\(s\) differ: shop: public\.orders: expected 55 rows \(manifest\), found 50/);
  expect(counts).toEqual({ started: 1, stopped: 1 });
  const report = await readReport('shop', error.report?.drillId as string);
  expect(report).toMatchObject({ verdict: 'failed', runId: forged.runId, error: { name: 'RowCountMismatch' } });
  expect(report.checks.filter((check) => !check.ok).map((check) => check.name)).toEqual(['row-counts']);
}, 60_000);

test('a measured RTO above the tier\'s fails with both figures', async () => {
  const error = await failedDrill({ source: shop({ tier: { ...tier1, rtoSeconds: 0.001 } }), runId: goodRun.runId, now: drillClock() });
  expect(error.name).toBe('RtoExceeded');
  expect(error.message).toMatch(/rto: measured RTO [\d.]+s exceeds the tier's RTO of 0\.001s/);
  const report = await readReport('shop', error.report?.drillId as string);
  expect(report.rtoTargetSeconds).toBe(0.001);
  expect(report.measuredRtoSeconds).toBeGreaterThan(0.001);
  expect(report.checks.filter((check) => !check.ok).map((check) => check.name)).toEqual(['rto']);
}, 60_000);

test('an extension the manifest records but the restored database lacks is reported by name', async () => {
  const forged = await dumpAndVerify('20261126T033000Z', (manifest) => ({
    ...manifest, extensions: [...manifest.extensions, { database: 'shop', name: 'postgis', version: '3.4.0' }],
  }));
  const error = await failedDrill({ source: shop(), runId: forged.runId, now: drillClock() });
  expect(error.name).toBe('ExtensionMissing');
  expect(error.message).toMatch(/extensions: 1 extension\(s\) of the manifest missing after the restore: postgis 3\.4\.0 \(database shop\)/);
  expect((await readReport('shop', error.report?.drillId as string)).verdict).toBe('failed');
}, 60_000);

test('a configured SQL check that returns false, and one that errors, fail the drill', async () => {
  const source = shop({
    drillChecks: [
      { name: 'no big orders', sql: 'SELECT max(total) < 10 FROM orders' },
      { name: 'refunds table', sql: 'SELECT count(*) = 0 FROM refunds' },
      { name: 'audit kept', sql: 'SELECT count(*) = 7 FROM audit.events' },
    ],
  });
  const error = await failedDrill({ source, runId: goodRun.runId, now: drillClock() });
  expect(error.name).toBe('DrillCheckFailed');
  const report = error.report as DrillReport;
  expect(report.checks.filter((check) => check.name.startsWith('sql:'))).toEqual([
    { name: 'sql:no big orders', ok: false, detail: 'returned f on database shop, expected true' },
    { name: 'sql:refunds table', ok: false, detail: expect.stringMatching(/failed on database shop: .*relation "refunds" does not exist/) },
    { name: 'sql:audit kept', ok: true, detail: 'true on database shop' },
  ]);
  expect(await readReport('shop', report.drillId)).toEqual(report);
}, 60_000);

test('a run of a major no available server can restore fails before restoring, naming both majors, what is available and the constant; the report says so', async () => {
  const newest = embeddedPgMajor() as number;
  const tooNew = Math.max(newest, PG_CLIENT_MAJOR) + 1;
  const forged = await dumpAndVerify('20261126T034500Z', (manifest) => ({ ...manifest, server: { version: `${tooNew}.1`, major: tooNew } }));
  const { counts, factory } = countingServers();
  const error = await failedDrill({ source: shop(), runId: forged.runId, now: drillClock(), startServer: factory });
  expect(error.name).toBe('NoDrillServer');
  expect(error.message).toMatch(new RegExp(
    `^run shop/${forged.runId} was dumped from postgres ${tooNew}\\.1: no PostgreSQL server of major ${tooNew} or newer .*` +
    `the newest server this drill can start is PostgreSQL ${newest} \\(available: PostgreSQL ${db.version} .*PostgreSQL ${newest} .*` +
    `never restores into an older major.*raise PG_CLIENT_MAJOR in lib/domain/versions.ts to at least ${tooNew}`));
  expect(counts.started).toBe(0);
  const report = await readReport('shop', error.report?.drillId as string);
  expect(report).toMatchObject({ verdict: 'failed', error: { name: 'NoDrillServer', message: error.message }, checks: [], measuredRtoSeconds: 0 });
  expect(report.server).toBeUndefined();
}, 60_000);

test('a run from a major between the servers restores into the next newer one (the embedded), and the report records its major', async () => {
  // This machine has Debian's server and the embedded newer one; a source of a major between
  // them (the dump itself is the installed major's, which pg_restore reads the same way).
  const between = db.version + 1;
  const newest = embeddedPgMajor() as number;
  expect(between).toBeLessThan(newest);
  const forged = await dumpAndVerify('20261126T040000Z', (manifest) => ({ ...manifest, server: { version: `${between}.4`, major: between } }));
  const lines: string[] = [];
  const report = await runDrill({ s3: s3.client(), bucket: BUCKET, source: shop(), runId: forged.runId, now: drillClock(), log: (line) => lines.push(line) });
  expect(report.verdict).toBe('ok');
  expect(report.server?.major).toBe(newest);
  expect(report.server?.version).toMatch(new RegExp(`^${newest}\\.`));
  expect(await readReport('shop', report.drillId)).toEqual(report);
  expect(lines.join('\n')).toContain(`(the source was postgres ${between}.4)`);
}, 120_000);

test('a server factory that starts an older major than the source\'s: NoDrillServer naming both, nothing restored, the server stopped', async () => {
  const between = db.version + 1;
  const forged = await dumpAndVerify('20261126T041500Z', (manifest) => ({ ...manifest, server: { version: `${between}.4`, major: between } }));
  const counts = { started: 0, stopped: 0 };
  // Ignores the major it is asked for: the installed (older) server.
  const careless: DrillServerFactory = async (engine) => {
    const server = await startDrillServer(engine, 0);
    counts.started++;
    return { ...server, stop: async () => { counts.stopped++; await server.stop(); } };
  };
  const error = await failedDrill({ source: shop(), runId: forged.runId, now: drillClock(), startServer: careless });
  expect(error.name).toBe('NoDrillServer');
  expect(error.message).toMatch(new RegExp(
    `^run shop/${forged.runId} was dumped from postgres ${between}\\.4 \\(major ${between}\\); the throwaway server is postgres ${db.version}\\.\\d+.* \\(major ${db.version}\\), older`));
  expect(counts).toEqual({ started: 1, stopped: 1 });
  const report = error.report as DrillReport;
  expect(report).toMatchObject({ verdict: 'failed', server: { major: db.version }, checks: [], timings: { restoreSeconds: 0 } });
  expect(await readReport('shop', report.drillId)).toEqual(report);
}, 60_000);

test('the CLI: unknown source and missing --local are usage errors (exit 2); no verified run is exit 1 and writes no report', async () => {
  const config = { sources: [shop()] } as unknown as LifeboatConfig;
  const run = async (argv: string[]) => {
    const lines: string[] = [];
    const code = await drillCommand(argv, {}, { s3: s3.client(), config, log: (line) => lines.push(line) });
    return { code, output: lines.join('\n') };
  };
  expect(await run(['nope', '--local', '--bucket', BUCKET])).toMatchObject({ code: 2, output: expect.stringContaining('unknown source "nope" (known: shop)') });
  expect(await run(['shop'])).toMatchObject({ code: 2, output: expect.stringContaining('--local: required') });
  expect(await run(['shop', '--local', '--from', 'tape'])).toMatchObject({ code: 2, output: expect.stringContaining('--from: "tape" is not valid') });
  await s3.createBucket('empty');
  expect(await run(['shop', '--local', '--bucket', 'empty'])).toMatchObject({ code: 1, output: expect.stringContaining('NoVerifiedRun') });
  const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: 'empty' }));
  expect(listed.KeyCount ?? 0).toBe(0);
}, 30_000);
