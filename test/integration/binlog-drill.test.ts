/**
 * MySQL/MariaDB point-in-time drills (lib/binlog/drill-run.ts) on real components: a MariaDB
 * 10.11 source writing its binary log (small rotation size), the real worker's dump recording
 * its coordinates, judged by the real verifier, writes with the real archiver run between them,
 * then drills into throwaway MariaDB servers: before any base (NoVerifiedRun), to the base's own
 * finish (the manifest's exact counts compared), to latest and then to a random second (the
 * alternating choice; counts reported, the drill checks proving the restored rows are the
 * source's at that second), and a drill SQL check that fails (report failed, DrillCheckFailed).
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readBinlogArchive } from '../../lib/binlog/archive-read';
import { BINLOG_DRILL_ENGINE, chooseBinlogDrillTarget } from '../../lib/binlog/drill';
import { runBinlogDrillRun, type BinlogDrillError, type BinlogDrillRunOptions } from '../../lib/binlog/drill-run';
import { basesOf, restoreWindows } from '../../lib/binlog/restore-plan';
import { listRuns } from '../../lib/catalog/catalog';
import { recentDrillReports } from '../../lib/catalog/drills';
import { parseConfig, type Source } from '../../lib/config';
import { parseDrillReport, type DrillReport } from '../../lib/domain/drill-report';
import { drillReportKey, verificationKey } from '../../lib/domain/layout';
import { serializeVerification } from '../../lib/domain/verification';
import { verifyRun } from '../../lib/verify/verify-run';
import { runBinlogArchiveJob, type BinlogArchiveJob } from '../../worker/binlog-archive-main';
import { runBackup } from '../../worker/run-backup';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startS3, type S3Server } from '../harness/s3';

const BUCKET = 'binlog-drill';
const RUN_ID = '20261204T000000Z';

jest.setTimeout(300_000);

let s3: S3Server;
let client: S3Client;
let db: MariaDbServer;
let source: Source;

function sourceWith(drillChecks: { name: string; sql: string }[], rtoSeconds?: number): Source {
  const parsed = parseConfig({
    primary: { region: 'eu-west-1', account: '111111111111' },
    offsite: { region: 'eu-central-1', account: '222222222222' },
    sources: [{
      name: 'shop', engine: 'mariadb', tier: 'tier1', method: ['logical', 'pitr'],
      connection: { host: db.host, port: db.port, databases: ['shop', 'ledger'], username: 'root', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:shop-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
      drillChecks,
    }],
  }).sources[0] as Source;
  return rtoSeconds === undefined ? parsed : { ...parsed, tier: { ...parsed.tier, rtoSeconds } };
}

/** The drill as the task runs it, against the primary bucket. */
const drill = (opts: Partial<BinlogDrillRunOptions> & { source?: Source } = {}) => runBinlogDrillRun({
  source, from: 'primary', s3: client, bucket: BUCKET, reportS3: client, reportBucket: BUCKET, log: () => undefined, ...opts,
});

/** The drill's error, with its report. */
async function failedDrill(opts: Partial<BinlogDrillRunOptions> & { source?: Source } = {}): Promise<BinlogDrillError> {
  const error = await drill(opts).then(() => undefined, (thrown: unknown) => thrown as BinlogDrillError);
  if (!error) throw new Error('the drill passed, expected it to fail');
  return error;
}

async function readReport(drillId: string): Promise<DrillReport> {
  const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: drillReportKey('shop', drillId) }));
  return parseDrillReport(await (object.Body as { transformToString(): Promise<string> }).transformToString());
}

function archiveJob(): BinlogArchiveJob {
  return {
    source: 'shop', engine: 'mariadb', binlogClient: 'mariadb-binlog',
    connection: { host: db.host, port: db.port, username: 'root', tls: { mode: 'disable' } },
    bucket: BUCKET, region: 'us-east-1', objectLock: { mode: 'GOVERNANCE', retentionSeconds: 86_400 }, minServerRetentionSeconds: 60,
  };
}

async function archiveOnce(): Promise<void> {
  // The archiver names its run after the second it starts: runs are at least a second apart.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const outcome = await runBinlogArchiveJob(archiveJob(), { s3: client, log: () => undefined });
  if (outcome.code !== 0) throw new Error(`archiver run failed: ${outcome.error?.name}: ${outcome.error?.message}`);
}

let nextEvent = 1;
/** Insert-only `shop.events` (one statement per row: its `at` is its binlog event's second), and updates and deletes elsewhere. */
async function writeBatch(rows: number): Promise<void> {
  const statements = Array.from({ length: rows }, () => `INSERT INTO shop.events (id, at) VALUES (${nextEvent++}, UTC_TIMESTAMP(6));`);
  await db.sql(`
    ${statements.join('\n')}
    INSERT INTO shop.orders (status, total) SELECT 'new', id FROM shop.events WHERE id > ${nextEvent - 1 - rows};
    UPDATE shop.orders SET status = 'paid' WHERE id % 3 = 0 AND status = 'new';
    DELETE FROM shop.orders WHERE id % 11 = 0;
    INSERT INTO ledger.entries (amount) VALUES (${rows}), (-${rows});
  `);
}

const count = async (sql: string) => Number((await db.sql(sql)).trim());
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let baseFinishedAt: Date;

beforeAll(async () => {
  [s3, db] = await Promise.all([startS3(), startMariaDb({ binlog: { maxSize: 16 * 1024 } })]);
  client = s3.client();
  await s3.createBucket(BUCKET, { objectLock: true });
  await db.sql(`
    CREATE DATABASE shop; CREATE DATABASE ledger;
    CREATE TABLE shop.events (id INT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB;
    CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, status VARCHAR(20), total DECIMAL(12,2)) ENGINE=InnoDB;
    CREATE TABLE ledger.entries (id BIGINT AUTO_INCREMENT PRIMARY KEY, amount DECIMAL(12,2)) ENGINE=InnoDB;
  `);
  await writeBatch(100);
  source = sourceWith([{ name: 'orders restored', sql: 'SELECT count(*) > 0 FROM shop.orders' }]);
}, 120_000);

afterAll(async () => {
  client?.destroy();
  await Promise.all([s3?.stop(), db?.stop()]);
});

test('before any verified dump with coordinates: NoVerifiedRun, nothing restored and no report', async () => {
  await archiveOnce();
  const error = await failedDrill();
  expect(error.name).toBe('NoVerifiedRun');
  expect(error.message).toContain('shop: nothing to drill in the primary copy s3://binlog-drill/: no restorable window yet');
  expect(error.report).toBeUndefined();
  expect(await recentDrillReports(client, BUCKET, 'shop', 1)).toEqual([]);
});

test('a verified dump, then writes archived: a drill to the base\'s own finish compares the manifest\'s exact counts', async () => {
  // No write while the dump runs: at its finish the tables hold exactly its snapshot.
  const manifest = await runBackup({
    source: 'shop', engine: 'mariadb', tier: 'tier1', runId: RUN_ID, bucket: BUCKET,
    target: { host: db.host, port: db.port, databases: ['shop', 'ledger'], username: 'root', tls: { mode: 'disable' } },
    objectLockMode: 'GOVERNANCE', retentionSeconds: 86_400, excludeTables: [], binlogCoordinates: true,
  }, { s3: client, log: () => undefined });
  baseFinishedAt = new Date(manifest.finishedAt);
  const verification = await verifyRun({ s3: client, bucket: BUCKET, source: 'shop', runId: RUN_ID, verifiedBy: 'lambda' });
  expect(verification.verdict).toBe('ok');
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: verificationKey('shop', RUN_ID), Body: serializeVerification(verification) }));
  // The writes after the dump start in the second after its finish.
  await sleep(Math.ceil((baseFinishedAt.getTime() + 1) / 1000) * 1000 - Date.now() + 50);
  for (let round = 0; round < 6; round += 1) {
    await writeBatch(30 + round * 5);
    if (round === 2) await db.sql('FLUSH BINARY LOGS;');
    await archiveOnce();
    await sleep(600);
  }
  await archiveOnce();

  const report = await drill({ at: baseFinishedAt });
  expect(report).toMatchObject({
    engine: BINLOG_DRILL_ENGINE, runId: RUN_ID, verdict: 'ok', from: 'primary',
    binlog: { target: baseFinishedAt.toISOString(), baseRun: RUN_ID, rowCounts: 'compared' },
  });
  expect(report.checks.map((check) => [check.name, check.ok])).toEqual([['table-set', true], ['row-counts', true], ['sql:orders restored', true], ['rto', true]]);
  expect(report.checks[0]?.detail).toBe('3 table(s), the manifest\'s set');
  expect(report.checks[1]?.detail).toBe('3 exact count(s) equal the manifest\'s');
  expect(report.binlog?.notChecked.join('\n')).toContain('marker');
  expect(await readReport(report.drillId)).toEqual(report);
});

test('the alternating drill: latest first, then a random second of the window\'s last day; each restores the source as it was then', async () => {
  const latestEvents = await count('SELECT count(*) FROM shop.events');
  const latestOrders = await count('SELECT count(*) FROM shop.orders');
  const latestSource = sourceWith([
    { name: 'every event', sql: `SELECT count(*) = ${latestEvents} FROM shop.events` },
    { name: 'every order', sql: `SELECT count(*) = ${latestOrders} FROM shop.orders` },
  ]);
  const latest = await drill({ source: latestSource });
  expect(latest).toMatchObject({ verdict: 'ok', binlog: { target: 'latest', baseRun: RUN_ID, rowCounts: 'reported' } });
  expect(latest.checks.map((check) => [check.name, check.ok])).toEqual([['table-set', true], ['row-counts', true], ['sql:every event', true], ['sql:every order', true], ['rto', true]]);
  expect(latest.checks[1]?.detail).toMatch(/^3 table\(s\) counted, not compared: the target latest is after the base's finish .+: shop\.events \d+ \(dump: 100\)/);
  expect(latest.binlog?.files.length).toBeGreaterThan(2);
  expect(latest.binlog?.bytes).toBeGreaterThan(0);
  expect(latest.binlog?.notChecked.join('\n')).toContain('row counts: reported, not compared');
  expect(latest.measuredRtoSeconds).toBeCloseTo((latest.timings.planSeconds ?? 0) + latest.timings.downloadSeconds + latest.timings.restoreSeconds + (latest.timings.replaySeconds ?? 0) + latest.timings.checkSeconds, 6);
  expect(latest.timings.replaySeconds).toBeGreaterThan(0);

  // The next drill's second, as the drill chooses it from the same windows and random number.
  const random = () => 0.37;
  const windows = restoreWindows(basesOf(await listRuns(client, BUCKET, 'shop'), await readBinlogArchive({ s3: client, bucket: BUCKET, source: 'shop' })));
  const second = chooseBinlogDrillTarget('latest', windows, random);
  if (second === 'latest') throw new Error(`the window ${JSON.stringify(windows)} holds no second to drill to`);
  expect(second.getTime()).toBeGreaterThan(baseFinishedAt.getTime());
  // Each event's `at` is its statement's start, the second of its binlog event: those before the second are replayed.
  const at = second.toISOString().slice(0, 23).replace('T', ' ');
  const eventsThen = await count(`SELECT count(*) FROM shop.events WHERE at < '${at}'`);
  expect(eventsThen).toBeGreaterThan(100);
  expect(eventsThen).toBeLessThan(latestEvents);
  const timed = await drill({ source: sourceWith([{ name: 'events then', sql: `SELECT count(*) = ${eventsThen} FROM shop.events` }]), random });
  expect(timed).toMatchObject({ verdict: 'ok', binlog: { target: second.toISOString(), rowCounts: 'reported' } });
  expect(timed.checks.find((check) => check.name === 'sql:events then')).toMatchObject({ ok: true });
  expect(timed.binlog?.files.length).toBeLessThanOrEqual(latest.binlog?.files.length ?? 0);

  const [newest, older] = await recentDrillReports(client, BUCKET, 'shop', 2);
  expect([older?.binlog?.target, newest?.binlog?.target]).toEqual(['latest', second.toISOString()]);
});

test('a drill SQL check that fails: the report says failed and names it, the drill throws DrillCheckFailed', async () => {
  const failing = sourceWith([
    { name: 'orders restored', sql: 'SELECT count(*) > 0 FROM shop.orders' },
    { name: 'no events', sql: 'SELECT count(*) = 0 FROM shop.events' },
  ]);
  const error = await failedDrill({ source: failing, at: 'latest' });
  expect(error.name).toBe('DrillCheckFailed');
  expect(error.message).toMatch(/^binlog PITR drill of shop to latest \(base 20261204T000000Z\) failed: sql:no events: returned 0 on database shop, expected true$/);
  const report = await readReport(error.report?.drillId as string);
  expect(report).toMatchObject({ verdict: 'failed', error: { name: 'DrillCheckFailed' }, binlog: { target: 'latest' } });
  expect(report.checks.filter((check) => !check.ok).map((check) => check.name)).toEqual(['sql:no events']);
});

test('a drill slower than the tier\'s RTO fails RtoExceeded, with its report', async () => {
  const error = await failedDrill({ source: sourceWith([], 0.001), at: 'latest' });
  expect(error.name).toBe('RtoExceeded');
  expect(error.report).toMatchObject({ verdict: 'failed', error: { name: 'RtoExceeded' }, rtoTargetSeconds: 0.001 });
  expect(error.report?.checks.at(-1)).toMatchObject({ name: 'rto', ok: false });
});
