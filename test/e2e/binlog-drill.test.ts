/**
 * End to end: the binlog PITR drill as deployed — the synthesized restore-drill state machine with
 * a MySQL/MariaDB source's drill task (kind 'binlog', worker/binlog-drill-main.ts), restoring a real
 * MariaDB source's verified dump and archived binary logs from the primary bucket into a throwaway
 * server, to latest and then to a random second; before any base it fails NoVerifiedRun on the
 * alarm topic. IAM-true: every call of the state machine and the task evaluated as its role.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recentDrillReports } from '../../lib/catalog/drills';
import type { Source } from '../../lib/config';
import { verificationKey } from '../../lib/domain/layout';
import { serializeVerification } from '../../lib/domain/verification';
import { verifyRun } from '../../lib/verify/verify-run';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { runLocalDrillExecution } from '../../local/runner';
import { synthApp } from '../../local/synth';
import { runBinlogArchiveJob } from '../../worker/binlog-archive-main';
import { runBackup } from '../../worker/run-backup';
import { binlogConfig } from '../fixtures/binlog-config';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';

jest.setTimeout(240_000);

const shop = binlogConfig.sources.find((source) => source.name === 'shop') as Source;
const RUN_ID = '20261204T000000Z';
let aws: LocalAws;
let db: MariaDbServer;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'binlog-drill-e2e-'));
  [aws, db] = await Promise.all([startLocalAws({ config: binlogConfig, app: synthApp(binlogConfig) }), startMariaDb({ binlog: { maxSize: 16 * 1024 } })]);
  await db.sql(`
    CREATE DATABASE shop;
    CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, total DECIMAL(12,2)) ENGINE=InnoDB;
    INSERT INTO shop.orders (total) VALUES (1), (2), (3);
  `);
}, 240_000);

afterAll(async () => {
  await Promise.all([aws?.stop(), db?.stop()]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

afterEach(() => {
  // IAM-true: nothing any role did in a test was denied.
  expect(aws.evaluator?.denials).toEqual([]);
});

const drill = () => runLocalDrillExecution({ aws, source: shop, from: 'primary', kind: 'binlog', containerEnv: { LIFEBOAT_SCRATCH_DIR: scratch, TMPDIR: scratch } });

test('before any verified dump with coordinates: the drill fails NoVerifiedRun, on the alarm topic', async () => {
  const result = await drill();
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('NoVerifiedRun');
  expect(result.notifications.map((notification) => notification.message).join('\n')).toContain('NoVerifiedRun');
});

test('after a verified dump and archived writes: drills to latest, then to a random second; each report names its target and base', async () => {
  const s3 = aws.services.s3;
  const bucket = aws.services.primaryBucket;
  await runBackup({
    source: 'shop', engine: 'mariadb', tier: 'tier1', runId: RUN_ID, bucket,
    target: { host: db.host, port: db.port, databases: ['shop'], username: 'root', tls: { mode: 'disable' } },
    objectLockMode: 'GOVERNANCE', retentionSeconds: 86_400, excludeTables: [], binlogCoordinates: true,
  }, { s3, log: () => undefined });
  const verification = await verifyRun({ s3, bucket, source: 'shop', runId: RUN_ID, verifiedBy: 'lambda' });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: verificationKey('shop', RUN_ID), Body: serializeVerification(verification) }));
  await new Promise((resolve) => setTimeout(resolve, 2100));
  await db.sql('INSERT INTO shop.orders (total) SELECT total + 10 FROM shop.orders; FLUSH BINARY LOGS; INSERT INTO shop.orders (total) VALUES (99);');
  const archived = await runBinlogArchiveJob({
    source: 'shop', engine: 'mariadb', binlogClient: 'mariadb-binlog', connection: { host: db.host, port: db.port, username: 'root', tls: { mode: 'disable' } },
    bucket, region: binlogConfig.primary.region, objectLock: { mode: 'GOVERNANCE', retentionSeconds: 86_400 }, minServerRetentionSeconds: 60,
  }, { s3, log: () => undefined });
  expect(archived.code).toBe(0);

  const first = await drill();
  expect(first.history.error).toBeUndefined();
  expect(first.history.status).toBe('SUCCEEDED');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const second = await drill();
  expect(second.history.error).toBeUndefined();
  expect(second.history.status).toBe('SUCCEEDED');

  const [newest, older] = await recentDrillReports(s3, bucket, 'shop', 2);
  expect(older).toMatchObject({ engine: 'binlog', from: 'primary', verdict: 'ok', runId: RUN_ID, binlog: { target: 'latest', baseRun: RUN_ID } });
  expect(newest).toMatchObject({ engine: 'binlog', verdict: 'ok', binlog: { target: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/), baseRun: RUN_ID, rowCounts: 'reported' } });
  for (const report of [older, newest]) expect(report?.checks.map((check) => check.name)).toEqual(['table-set', 'row-counts', 'rto']);
  // The measured RTO as a metric per source, as for every drill.
  expect(aws.metrics.flatMap((metric) => metric.data as { MetricName: string }[]).map((datum) => datum.MetricName)).toContain('MeasuredRtoSeconds');
});
