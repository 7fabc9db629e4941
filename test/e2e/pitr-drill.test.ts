/**
 * End to end: the PITR restore drill as deployed — the synthesized restore-drill state machine
 * with a PITR source's drill task (kind 'pitr', worker/pitr-drill-main.ts), restoring the
 * source's pgBackRest repository (real pgBackRest 2.45, PostgreSQL 15) from the primary and
 * from the offsite copy to a point, alternately the end of the archive and a random second of
 * the window, into a throwaway server; the report under drills/<source>/; IAM-true.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { recentDrillReports } from '../../lib/catalog/drills';
import { parseConfig, type LifeboatConfig, type Source } from '../../lib/config';
import { chooseTarget } from '../../lib/pitr/drill-run';
import type { LocalAws } from '../../local/aws';
import { startLocalPitr, type LocalPitr } from '../harness/local-pitr';
import { listKeys } from '../harness/s3-objects';
import type { LocalPitrSource } from '../../local/pitr-host';
import { runLocalDrillExecution, runLocalPitrExecution } from '../../local/runner';
import { runScheduledSendCommand, sendCommandSchedules } from '../../local/scheduler';

const config: LifeboatConfig = parseConfig({
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  sources: [{
    name: 'ledger', engine: 'postgres', tier: 'tier1', method: 'pitr',
    pitr: { host: { tag: { key: 'lifeboat-db', value: 'ledger' } }, dataDirectory: '/var/lib/postgresql/15/main', marker: true },
    connection: { host: 'ledger.db.internal', database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:ledger-AbCdEf' },
    network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
    drillChecks: [{ name: 'customers restored', sql: 'SELECT count(*) > 0 FROM public.customers' }],
  }],
});
const source = config.sources[0] as Source;

let local: LocalPitr;
let aws: LocalAws;
let pitr: LocalPitrSource;

beforeAll(async () => {
  local = await startLocalPitr(config, source);
  ({ aws, pitr } = local);
}, 180_000);

afterAll(() => local?.stop());

afterEach(() => {
  // IAM-true: nothing any role did in a test was denied.
  expect(local.denials()).toEqual([]);
});

const drill = (from: 'primary' | 'offsite') => runLocalDrillExecution({ aws, source, from, kind: 'pitr', containerEnv: pitr.verifierEnv });

test('before any verified PITR run: the drill fails NoVerifiedRun, on the alarm topic, with nothing restored', async () => {
  const result = await drill('primary');
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('NoVerifiedRun');
  expect(result.notifications.map((notification) => notification.message).join('\n')).toContain('NoVerifiedRun');
}, 120_000);

test('after a full: drills from the primary to latest, then from the offsite copy to a second of the window; each report names its target and set', async () => {
  // The marker schedule (every 5 minutes in AWS) as Scheduler would invoke it, as its role.
  const [markerSchedule] = sendCommandSchedules(aws, '-pitr-marker');
  expect(markerSchedule).toBeDefined();
  const mark = async () => expect(await runScheduledSendCommand(aws, markerSchedule, pitr.ssm)).toMatchObject({ status: 'Success' });
  await mark();
  const run = await runLocalPitrExecution({ aws, source, type: 'full', scheduledTime: new Date(Date.UTC(2026, 11, 3, 1, 0, 0)), ssm: pitr.ssm, verifierEnv: pitr.verifierEnv });
  expect(run.history.status).toBe('SUCCEEDED');
  await pitr.host.source.psql("INSERT INTO public.customers (name, email) SELECT 'Drill ' || g, 'drill' || g || '@example.com' FROM generate_series(1, 100) g", 'shop');
  await mark();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await mark();
  await pitr.host.source.psql('SELECT pg_switch_wal()', 'shop');
  await new Promise((resolve) => setTimeout(resolve, 3000));

  const first = await drill('primary');
  expect(first.history.error).toBeUndefined();
  expect(first.history.status).toBe('SUCCEEDED');
  const second = await drill('offsite');
  expect(second.history.error).toBeUndefined();
  expect(second.history.status).toBe('SUCCEEDED');

  const [newest, older] = await recentDrillReports(aws.services.s3, aws.services.primaryBucket, source.name, 2);
  expect(older.engine).toBe('pgbackrest');
  expect(older.from).toBe('primary');
  expect(older.pitr?.target).toBe('latest');
  expect(newest.from).toBe('offsite');
  expect(newest.pitr?.target).toMatch(/^\d{4}-\d\d-\d\dT/);
  for (const report of [older, newest]) {
    expect(report.verdict).toBe('ok');
    expect(report.checks.map((check) => check.name)).toEqual(expect.arrayContaining(['recovery-target', 'pitr-marker', 'amcheck', 'check: customers restored', 'rto']));
    expect(report.measuredRtoSeconds).toBeCloseTo(report.timings.restoreSeconds + (report.timings.replaySeconds ?? 0) + report.timings.checkSeconds, 5);
    expect(report.server?.major).toBe(15);
  }
  // The drill's measured RTO is a metric per source, as for logical drills.
  expect(aws.metrics.flatMap((metric) => metric.data as { MetricName: string }[]).map((datum) => datum.MetricName)).toContain('MeasuredRtoSeconds');
}, 300_000);

test('a WAL segment gone from the archive after the newest set: the drill to latest fails WalGap naming it, its report says so', async () => {
  const s3 = aws.services.s3;
  for (let i = 0; i < 3; i += 1) {
    await pitr.host.source.psql(`INSERT INTO public.customers (name, email) VALUES ('Gap ${i}', 'gap${i}@example.com'); SELECT pg_switch_wal();`, 'shop');
  }
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const segments = (await listKeys(s3, aws.services.primaryBucket, 'pitr/ledger/archive/')).filter((key) => /\/[0-9A-F]{24}-/.test(key));
  const removed = segments.at(-2) as string;
  await s3.send(new DeleteObjectCommand({ Bucket: aws.services.primaryBucket, Key: removed }));
  const segment = /\/([0-9A-F]{24})-/.exec(removed)?.[1] as string;

  // The segments after the gap arrived seconds ago: with the watchdog's settle (5 minutes) the drill would stop before
  // the gap (an asynchronous push may still deliver it); here the gap counts at once.
  const result = await runLocalDrillExecution({ aws, source, from: 'primary', kind: 'pitr', containerEnv: { ...pitr.verifierEnv, LIFEBOAT_PITR_GAP_SETTLE_SECONDS: '0' } });
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('WalGap');
  expect(result.history.error?.cause).toContain(`gap at ${segment}`);
  expect(result.notifications.map((notification) => notification.message).join('\n')).toContain(segment);
  const [report] = await recentDrillReports(s3, aws.services.primaryBucket, source.name, 1);
  expect(report).toMatchObject({ verdict: 'failed', error: { name: 'WalGap' }, pitr: { target: 'latest' } });
}, 180_000);

test('the target alternates: latest after a drill to a time, a random second of the last day of the window after latest', () => {
  const earliest = new Date('2026-12-01T00:00:00Z');
  const latest = new Date('2026-12-03T12:00:00Z');
  expect(chooseTarget(undefined, earliest, latest, () => 0.5)).toBe('latest');
  expect(chooseTarget('2026-12-03T10:00:00.000Z', earliest, latest, () => 0.5)).toBe('latest');
  // The last day of the window: from latest - 24 h to latest - 1 s.
  const from = Date.parse('2026-12-02T12:00:00Z');
  const to = latest.getTime() - 1000;
  expect(chooseTarget('latest', earliest, latest, () => 0.5)).toEqual({ time: new Date(Math.floor((from + 0.5 * (to - from)) / 1000) * 1000) });
  // A window shorter than a day: never before its earliest point.
  const short = chooseTarget('latest', new Date('2026-12-03T11:59:00Z'), latest, () => 0);
  expect(short).toEqual({ time: new Date('2026-12-03T11:59:00Z') });
  // A window of a second: latest.
  expect(chooseTarget('latest', new Date(latest.getTime() - 1000), latest, () => 0.5)).toBe('latest');
});
