/**
 * The binlog PITR drill's pure judgements (lib/binlog/drill.ts): the alternating target and when
 * the manifest's exact counts are compared; the worker entry's environment.
 */
import { chooseBinlogDrillTarget, countsComparable } from '../../lib/binlog/drill';
import type { RestoreWindow } from '../../lib/binlog/restore-plan';
import { parseConfig } from '../../lib/config';
import { drillReportSchema } from '../../lib/domain/drill-report';
import { binlogDrillJobFromEnv } from '../../worker/binlog-drill-main';

const t = (iso: string) => new Date(iso);
const window = (from: string, to: string): RestoreWindow => ({ from: t(from), to: t(to) });
const LONG = [window('2026-12-01T03:00:00.250Z', '2026-12-04T12:00:00.500Z')];
const SHORT = [window('2026-12-04T11:59:00.250Z', '2026-12-04T12:00:00.500Z')];

describe('chooseBinlogDrillTarget', () => {
  test.each([
    ['no previous drill', undefined],
    ['after a drill to a time', '2026-12-04T10:00:00.000Z'],
  ])('%s: latest', (_what, previous) => {
    expect(chooseBinlogDrillTarget(previous, LONG, () => 0.5)).toBe('latest');
  });

  test('no window: latest (the plan then says why nothing can be restored)', () => {
    expect(chooseBinlogDrillTarget('latest', [], () => 0.5)).toBe('latest');
  });

  test.each([0, 1e-9, 0.25, 0.5, 0.999999, 1 - Number.EPSILON])('after latest, random %p: a whole second of the newest window\'s last day, never in its last second', (r) => {
    for (const windows of [LONG, SHORT, [...SHORT.map((w) => ({ from: new Date(w.from.getTime() - 7 * 86_400_000), to: new Date(w.from.getTime() - 6 * 86_400_000) })), ...LONG]]) {
      const target = chooseBinlogDrillTarget('latest', windows, () => r);
      if (target === 'latest') throw new Error('expected a time');
      const newest = windows.at(-1) as RestoreWindow;
      expect(target.getTime() % 1000).toBe(0);
      expect(target.getTime()).toBeGreaterThan(newest.from.getTime());
      // Never the base's own finishing second: the automatic choice never compares counts a dump's own writes would break.
      expect(countsComparable(target, newest.from)).toBe(false);
      expect(target.getTime()).toBeGreaterThanOrEqual(newest.to.getTime() - 86_400_000);
      expect(target.getTime()).toBeLessThan(newest.to.getTime() - 0);
      expect(target.getTime()).toBeLessThanOrEqual(Math.ceil(newest.to.getTime() / 1000) * 1000 - 1000);
    }
  });

  test('golden: the last day of a long window, from the second after the one to-24h is in to its last whole second before to', () => {
    expect(chooseBinlogDrillTarget('latest', LONG, () => 0)).toEqual(t('2026-12-03T12:00:02.000Z'));
    expect(chooseBinlogDrillTarget('latest', LONG, () => 0.999999999)).toEqual(t('2026-12-04T12:00:00.000Z'));
    // A window shorter than a day: never before its start (the base's finish), never its start's second.
    expect(chooseBinlogDrillTarget('latest', SHORT, () => 0)).toEqual(t('2026-12-04T11:59:02.000Z'));
  });

  test('a window with no whole second after its start\'s second and before its last: latest', () => {
    expect(chooseBinlogDrillTarget('latest', [window('2026-12-04T12:00:00.250Z', '2026-12-04T12:00:00.900Z')], () => 0.5)).toBe('latest');
    expect(chooseBinlogDrillTarget('latest', [window('2026-12-04T12:00:00.250Z', '2026-12-04T12:00:02.000Z')], () => 0.5)).toBe('latest');
    expect(chooseBinlogDrillTarget('latest', [window('2026-12-04T12:00:00.250Z', '2026-12-04T12:00:02.001Z')], () => 0.5)).toEqual(t('2026-12-04T12:00:02.000Z'));
  });
});

describe('countsComparable', () => {
  const finished = t('2026-12-04T03:00:07.420Z');
  test.each([
    ['the finish itself', finished, true],
    ['the end of its second (the replay stops at the same --stop-datetime)', t('2026-12-04T03:00:08.000Z'), true],
    ['the next second', t('2026-12-04T03:00:08.001Z'), false],
    ['an hour later', t('2026-12-04T04:00:07.420Z'), false],
    ['before the finish (the plan refuses it)', t('2026-12-04T03:00:07.000Z'), false],
    ['latest', 'latest' as const, false],
  ])('%s: %p', (_what, target, expected) => {
    expect(countsComparable(target, finished)).toBe(expected);
  });
});

test('the report schema takes a binlog block and refuses one without its base run', () => {
  const report = {
    schemaVersion: 1, lifeboatVersion: '0.1.0', source: 'shop', drillId: '20261204T050000Z', runId: '20261204T030000Z', from: 'primary', engine: 'binlog',
    startedAt: '2026-12-04T05:00:00.000Z', finishedAt: '2026-12-04T05:01:00.000Z',
    timings: { planSeconds: 0.2, downloadSeconds: 1, restoreSeconds: 3, replaySeconds: 2, checkSeconds: 0.5 },
    binlog: { target: 'latest', baseRun: '20261204T030000Z', files: ['binlog.000001', 'binlog.000002 (partial)'], bytes: 1234, replaySeconds: 2, rowCounts: 'reported', notChecked: ['marker'] },
    measuredRtoSeconds: 6.7, rtoTargetSeconds: 3600, checks: [], verdict: 'ok',
  };
  expect(drillReportSchema.safeParse(report).success).toBe(true);
  const { baseRun: _dropped, ...withoutBase } = report.binlog;
  expect(drillReportSchema.safeParse({ ...report, binlog: withoutBase }).success).toBe(false);
  expect(drillReportSchema.safeParse({ ...report, binlog: { ...report.binlog, rowCounts: 'maybe' } }).success).toBe(false);
});

describe('binlogDrillJobFromEnv', () => {
  const config = parseConfig({
    primary: { region: 'eu-west-1', account: '111111111111' },
    offsite: { region: 'eu-central-1', account: '222222222222' },
    sources: [
      { name: 'shop', engine: 'mariadb', tier: 'tier1', method: ['logical', 'pitr'] },
      { name: 'ledger', engine: 'mysql', tier: 'tier2', method: ['logical', 'pitr'] },
      { name: 'orders', engine: 'mariadb', tier: 'tier2', method: 'logical' },
    ].map((source) => ({
      ...source,
      connection: { host: `${source.name}.internal`, database: 'shop', username: 'backup', passwordSecretArn: `arn:aws:secretsmanager:eu-west-1:111111111111:secret:${source.name}-AbCdEf` },
      network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
    })),
  });
  const env = (name: string, extra: Record<string, string> = {}) => ({
    LIFEBOAT_BUCKET: 'primary', LIFEBOAT_SOURCE_CONFIG: JSON.stringify(config.sources.find((source) => source.name === name)), AWS_REGION: 'eu-west-1', ...extra,
  });

  test('a MariaDB source: mariadb-binlog, the scratch directory', () => {
    expect(binlogDrillJobFromEnv(env('shop', { LIFEBOAT_SCRATCH_DIR: '/scratch' }))).toMatchObject({ binlogClient: 'mariadb-binlog', scratch: '/scratch', from: 'primary' });
  });

  test('a MySQL source: the image\'s own mysqlbinlog when it names one', () => {
    expect(binlogDrillJobFromEnv(env('ledger')).binlogClient).toBe('mysqlbinlog');
    expect(binlogDrillJobFromEnv(env('ledger', { LIFEBOAT_MYSQLBINLOG: '/opt/mysql/usr/bin/mysqlbinlog' })).binlogClient).toBe('/opt/mysql/usr/bin/mysqlbinlog');
  });

  test('fails when the source archives no binary logs, naming it and what is valid', () => {
    expect(() => binlogDrillJobFromEnv(env('orders'))).toThrow(expect.objectContaining({
      name: 'InvalidInput', message: expect.stringContaining("the source orders archives no binary logs (valid: the drill task of a MySQL/MariaDB source with method 'pitr')"),
    }));
  });

  test('fails without a region, naming it', () => {
    const { AWS_REGION: _region, ...without } = env('shop');
    expect(() => binlogDrillJobFromEnv(without)).toThrow(expect.objectContaining({ message: expect.stringContaining('AWS_REGION (and the offsite region for a drill from offsite): required') }));
  });
});
