/**
 * The RDS point-in-time drill's checker (lib/rds/native-drill-check.ts) against real servers: the
 * "restored instance" is a stand-in (test/harness/rds-stand-in.ts), a throwaway PostgreSQL with a
 * password restored from the source's latest verified logical dump in a local S3. The checker
 * compares the table set with that dump's manifest, runs the drill SQL checks, reads every table
 * once (the lazy-load scan, timed on its own) and writes the report under drills/<source>/ with
 * the RTO measured from the restore call.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Source } from '../../lib/config/types';
import { parseDrillReport, type DrillReport } from '../../lib/domain/drill-report';
import { drillReportKey } from '../../lib/domain/layout';
import { formatRunId } from '../../lib/domain/run-id';
import { latestVerifiedRun } from '../../lib/catalog/catalog';
import { lazyLoadSeconds, NATIVE_DRILL_ENGINE, runNativeDrillCheck } from '../../lib/rds/native-drill-check';
import { tier1 } from '../fixtures/config';
import type { PgServer } from '../harness/postgres';
import { dumpVerifiedRun, startSeededSource, startStandIn } from '../harness/rds-stand-in';
import { startS3, type S3Server } from '../harness/s3';

const BUCKET = 'primary';
const PASSWORD = 'stand-in-Pa55-never-logged';
const HOUR = 3_600_000;
// A run of a few hours ago: the catalog reads runs up to now.
const RUN_ID = formatRunId(new Date(Math.floor((Date.now() - 3 * HOUR) / HOUR) * HOUR));

let s3: S3Server;
let origin: PgServer;
let standIn: PgServer;

const ledger = (overrides: Partial<Source> = {}): Source => ({
  name: 'ledger',
  engine: 'postgres',
  methods: ['logical'],
  tier: tier1,
  connection: {
    host: 'ledger-db.c9akciq32.eu-west-1.rds.amazonaws.com', port: 5432, databases: ['shop'], username: 'postgres',
    passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:ledger-AbCdEf', tls: 'verify-full',
  },
  network: { vpcId: 'vpc-1', subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] },
  dumpOptions: { excludeTables: [] },
  drillChecks: [{ name: 'customers restored', sql: 'SELECT count(*) = 1000 FROM public.customers' }],
  rds: { kind: 'instance', identifier: 'ledger-db', detected: true, region: 'eu-west-1', requiredWindowDays: 35, manage: false, drill: { securityGroupIds: [] } },
  ...overrides,
});

beforeAll(async () => {
  [s3, origin] = await Promise.all([startS3(), startSeededSource('shop')]);
  await s3.createBucket(BUCKET);
  await dumpVerifiedRun({ s3: s3.client(), bucket: BUCKET, server: origin, database: 'shop', source: 'ledger', runId: RUN_ID });
  standIn = await startStandIn({ s3: s3.client(), bucket: BUCKET, source: 'ledger', password: PASSWORD });
}, 120_000);

afterAll(async () => {
  await Promise.all([s3?.stop(), origin?.stop(), standIn?.stop()]);
});

async function readReport(key: string): Promise<DrillReport> {
  const object = await s3.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return parseDrillReport(await (object.Body as { transformToString(): Promise<string> }).transformToString());
}

/** Each check gets its own restore second, so its own report key. */
let second = 0;
const restoreCall = () => new Date(Math.floor(Date.now() / 1000) * 1000 - 10 * 60_000 + 1000 * second++);

const check = (source: Source, restoreStartedAt: Date, lines: string[] = [], port = standIn.port) => runNativeDrillCheck({
  source, s3: s3.client(), bucket: BUCKET,
  endpoint: { host: standIn.host, port, username: 'postgres', password: PASSWORD, tls: { mode: 'disable' } },
  target: { kind: 'time', time: '2026-12-04T01:23:45Z' }, restoreStartedAt, drillIdentifier: 'lbd-ledger-0a1b2c3d',
  log: (line) => lines.push(line),
});

test('a good restore passes: the table set of the dump\'s manifest, the drill SQL, every table read once (timed), the report with the RTO measured from the restore call', async () => {
  const run = await latestVerifiedRun(s3.client(), BUCKET, 'ledger');
  expect(run?.runId).toBe(RUN_ID);
  const tables = run?.manifest?.tables ?? [];
  expect(tables.length).toBeGreaterThan(5);
  await standIn.psql('SELECT pg_stat_reset()', 'shop');

  const startedAt = restoreCall();
  const lines: string[] = [];
  const before = Date.now();
  const report = await check(ledger(), startedAt, lines);
  const after = Date.now();

  expect(report.verdict).toBe('ok');
  expect(report.engine).toBe(NATIVE_DRILL_ENGINE);
  expect(report.runId).toBe(RUN_ID);
  expect(report.pitr).toEqual({ target: '2026-12-04T01:23:45Z', set: 'instance ledger-db → lbd-ledger-0a1b2c3d' });
  expect(report.checks.map((c) => [c.name, c.ok])).toEqual([['table-set', true], ['sql:customers restored', true], ['lazy-load-scan', true], ['rto', true]]);
  // The measured RTO runs from the restore call (10 minutes ago) to the end of the checks.
  expect(report.startedAt).toBe(startedAt.toISOString());
  expect(report.measuredRtoSeconds).toBeGreaterThanOrEqual((before - startedAt.getTime()) / 1000);
  expect(report.measuredRtoSeconds).toBeLessThanOrEqual((after - startedAt.getTime()) / 1000);
  expect(report.measuredRtoSeconds).toBeGreaterThan(590);
  // The lazy-load scan: its own time, inside the checks' time, and every row of the manifest read.
  expect(report.timings.lazyLoadSeconds).toBeGreaterThan(0);
  expect(report.timings.lazyLoadSeconds).toBeLessThanOrEqual(report.timings.checkSeconds);
  expect(lazyLoadSeconds(report)).toBe(report.timings.lazyLoadSeconds);
  const rows = tables.reduce((sum, table) => sum + table.rows, 0);
  expect(report.checks.find((c) => c.name === 'lazy-load-scan')?.detail).toContain(`read ${rows} row(s) of ${tables.length} table(s) once`);
  // Every table of the stand-in that holds rows (not a partitioned parent, not a materialized view) was scanned by the checker.
  const scans = JSON.parse(await standIn.psql(
    "SELECT json_object_agg(s.schemaname || '.' || s.relname, s.seq_scan) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE c.relkind = 'r'",
    'shop')) as Record<string, number>;
  expect(Object.keys(scans).length).toBeGreaterThan(5);
  expect(Object.entries(scans).filter(([, count]) => count < 1)).toEqual([]);

  // Under drills/<source>/<drillId>/, the drill id the restore call's second.
  const stored = await readReport(drillReportKey('ledger', formatRunId(startedAt)));
  expect(stored).toEqual(report);
  expect(JSON.stringify(stored)).not.toContain(PASSWORD);
  expect(lines.join('\n')).not.toContain(PASSWORD);
  expect(lines.join('\n')).toMatch(/native drill ledger: ok, measured RTO .* \(lazy-load scan .*\), report s3:\/\/primary\/drills\/ledger\//);
}, 60_000);

test('a table missing from the restore fails TableSetMismatch naming it; the report says so and is written', async () => {
  await standIn.psql('ALTER TABLE public.empty_table RENAME TO empty_table_moved', 'shop');
  try {
    const startedAt = restoreCall();
    const error = await check(ledger(), startedAt).then(() => undefined, (caught: unknown) => caught as Error & { report?: DrillReport });
    expect(error?.name).toBe('TableSetMismatch');
    expect(error?.message).toContain('public.empty_table');
    const stored = await readReport(drillReportKey('ledger', formatRunId(startedAt)));
    expect(stored.verdict).toBe('failed');
    expect(stored.error?.name).toBe('TableSetMismatch');
    expect(stored.checks.find((c) => c.name === 'table-set')).toMatchObject({ ok: false });
    expect(stored.checks.find((c) => c.name === 'table-set')?.detail).toContain('public.empty_table');
  } finally {
    await standIn.psql('ALTER TABLE public.empty_table_moved RENAME TO empty_table', 'shop');
  }
}, 60_000);

test('a drill SQL check that is false fails DrillCheckFailed; one that errors says why, without the password', async () => {
  const startedAt = restoreCall();
  const source = ledger({
    drillChecks: [
      { name: 'a customer per order', sql: 'SELECT count(*) = 1 FROM public.customers' },
      { name: 'broken', sql: 'SELECT * FROM no_such_table' },
    ],
  });
  const error = await check(source, startedAt).then(() => undefined, (caught: unknown) => caught as Error);
  expect(error?.name).toBe('DrillCheckFailed');
  const stored = await readReport(drillReportKey('ledger', formatRunId(startedAt)));
  expect(stored.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['sql:a customer per order', 'sql:broken']);
  expect(stored.checks.find((c) => c.name === 'sql:broken')?.detail).toContain('no_such_table');
  expect(JSON.stringify(stored)).not.toContain(PASSWORD);
}, 60_000);

test('an RTO shorter than the restore took fails RtoExceeded, with every other check ok', async () => {
  const startedAt = restoreCall();
  const error = await check(ledger({ tier: { ...tier1, rtoSeconds: 300 } }), startedAt).then(() => undefined, (caught: unknown) => caught as Error);
  expect(error?.name).toBe('RtoExceeded');
  const stored = await readReport(drillReportKey('ledger', formatRunId(startedAt)));
  expect(stored.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['rto']);
  expect(stored.rtoTargetSeconds).toBe(300);
}, 60_000);

test('a drill instance that cannot be reached fails TargetUnreachable naming it; the password is in no message and no report', async () => {
  const startedAt = restoreCall();
  const error = await check(ledger(), startedAt, [], 1).then(() => undefined, (caught: unknown) => caught as Error);
  expect(error?.name).toBe('TargetUnreachable');
  expect(error?.message).toContain('lbd-ledger-0a1b2c3d');
  expect(error?.message).not.toContain(PASSWORD);
  const stored = await readReport(drillReportKey('ledger', formatRunId(startedAt)));
  expect(stored).toMatchObject({ verdict: 'failed', error: { name: 'TargetUnreachable' } });
  expect(stored.timings.lazyLoadSeconds).toBeUndefined();
  expect(JSON.stringify(stored)).not.toContain(PASSWORD);
}, 60_000);

test('a wrong password fails TargetUnreachable and the wrong password is not echoed', async () => {
  const startedAt = restoreCall();
  const wrong = 'wrong-Pa55-also-secret';
  const error = await runNativeDrillCheck({
    source: ledger(), s3: s3.client(), bucket: BUCKET,
    endpoint: { host: standIn.host, port: standIn.port, username: 'postgres', password: wrong, tls: { mode: 'disable' } },
    target: { kind: 'latest' }, restoreStartedAt: startedAt, drillIdentifier: 'lbd-ledger-0a1b2c3d',
  }).then(() => undefined, (caught: unknown) => caught as Error);
  expect(error?.name).toBe('TargetUnreachable');
  expect(error?.message).toMatch(/password authentication failed/);
  expect(error?.message).not.toContain(wrong);
}, 60_000);
