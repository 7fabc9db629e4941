/**
 * The runbook's pure parts: which drills measured a throughput, the medians, the recovery-time
 * arithmetic, and what it says when facts are missing. (test/integration/runbook.test.ts runs
 * its commands against real servers.)
 */
import { downloadBytes, drillThroughput, estimateRecovery, measuredThroughput, median, renderRunbook, type DrillEvidence } from '../../cli/runbook';
import type { RunRecord } from '../../lib/catalog/catalog';
import type { Manifest } from '../../lib/domain/manifest';
import { storageNames } from '../../lib/stacks/naming';
import { testConfig } from '../fixtures/config';
import { drillReport } from '../fixtures/drills';
import { buildRun, verificationFor } from '../fixtures/runs';

const RUN = '20261126T030000Z';
const orders = testConfig.sources[0]!;

function record(manifest: Manifest): RunRecord {
  return { source: manifest.source, runId: manifest.runId, status: 'verified', manifest, verification: verificationFor(manifest), objects: [] };
}

const manifest: Manifest = { ...buildRun('orders', RUN, { databases: ['orders'] }).manifest, databaseSizeBytes: 4e9 };
const evidence = (fixture: Parameters<typeof drillReport>[1]): DrillEvidence => ({ report: drillReport(manifest, fixture), run: record(manifest) });

test('downloadBytes: the artifacts, and globals.sql of a PostgreSQL run (the drill applies it)', () => {
  const artifacts = manifest.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0);
  expect(downloadBytes(manifest)).toBe(artifacts + manifest.globals!.bytes);
  expect(downloadBytes({ ...manifest, engine: 'mariadb' })).toBe(artifacts);
});

test.each([
  ['a passed drill', true, { drillId: '20261126T040000Z', downloadSeconds: 2, restoreSeconds: 8 }],
  ['a drill that failed a check after its restore (RtoExceeded)', true, { drillId: '20261126T040000Z', downloadSeconds: 2, restoreSeconds: 8, error: 'RtoExceeded' }],
  ['a drill that failed a check after its restore (RowCountMismatch)', true, { drillId: '20261126T040000Z', downloadSeconds: 2, restoreSeconds: 8, error: 'RowCountMismatch' }],
  ['a drill whose restore failed', false, { drillId: '20261126T040000Z', downloadSeconds: 2, restoreSeconds: 1, error: 'RestoreFailed' }],
  ['a drill whose download failed', false, { drillId: '20261126T040000Z', downloadSeconds: 0, restoreSeconds: 0, error: 'ChecksumMismatch' }],
  ['a drill with no measurable restore time', false, { drillId: '20261126T040000Z', downloadSeconds: 2, restoreSeconds: 0 }],
] as const)('drillThroughput: %s measures a throughput: %s', (_what, measures, fixture) => {
  const measured = drillThroughput(evidence(fixture));
  expect(measured !== undefined).toBe(measures);
  if (measured) {
    expect(measured.downloadBytesPerSecond).toBe(downloadBytes(manifest) / fixture.downloadSeconds);
    expect(measured.restoreBytesPerSecond).toBe(4e9 / fixture.restoreSeconds);
  }
});

test('drillThroughput: a drill whose run is gone from the bucket measures nothing (no bytes to divide)', () => {
  expect(drillThroughput({ report: drillReport(manifest, { drillId: '20261126T040000Z', downloadSeconds: 2, restoreSeconds: 8 }) })).toBeUndefined();
});

test.each([
  [[3], 3],
  [[5, 1, 3], 3],
  [[4, 1, 3, 2], 2.5],
])('median(%j) = %d', (values, expected) => {
  expect(median(values)).toBe(expected);
});

test('measuredThroughput: each median separately, over the newest five drills that measured one', () => {
  const restoreTimes = [10, 40, 20, 80, 30, 1];
  const downloadTimes = [8, 1, 4, 2, 16, 1];
  const drills = restoreTimes.map((restoreSeconds, index) =>
    evidence({ drillId: `20261126T0${5 - index}0000Z`, downloadSeconds: downloadTimes[index]!, restoreSeconds }));
  const failed = evidence({ drillId: '20261126T060000Z', downloadSeconds: 1, restoreSeconds: 1, error: 'RestoreFailed' });
  const measured = measuredThroughput([failed, ...drills])!;
  expect(measured.drills).toHaveLength(5);
  // The sixth drill (1 s, 1 s) is left out; the failed one too.
  expect(measured.restoreBytesPerSecond).toBe(4e9 / 30);
  expect(measured.downloadBytesPerSecond).toBe(downloadBytes(manifest) / 4);
  expect(measuredThroughput([failed])).toBeUndefined();
  expect(measuredThroughput([])).toBeUndefined();
});

test('estimateRecovery: today\'s row, then 10 GB to 10 TB at today\'s artifact ratio, each against the RTO', () => {
  const rows = estimateRecovery({ downloadBytesPerSecond: 100e6, restoreBytesPerSecond: 50e6 }, { databaseBytes: 20e9, artifactBytes: 5e9 }, 3600);
  expect(rows.map((row) => [row.label, row.artifactBytes, row.downloadSeconds, row.restoreSeconds, row.totalSeconds, row.withinRto])).toEqual([
    ['today', 5e9, 50, 400, 450, true],
    ['10 GB', 2.5e9, 25, 200, 225, true],
    ['100 GB', 25e9, 250, 2000, 2250, true],
    ['1 TB', 250e9, 2500, 20_000, 22_500, false],
    ['10 TB', 2500e9, 25_000, 200_000, 225_000, false],
  ]);
  // Without a verified run there is no "today", and no ratio: artifacts as large as the database.
  expect(estimateRecovery({ downloadBytesPerSecond: 100e6, restoreBytesPerSecond: 50e6 }, undefined, 3600).map((row) => [row.label, row.artifactBytes]))
    .toEqual([['10 GB', 10e9], ['100 GB', 100e9], ['1 TB', 1e12], ['10 TB', 10e12]]);
});

describe('renderRunbook', () => {
  const base = { config: testConfig, source: orders, bucket: 'lifeboat-primary', offsiteBucket: 'lifeboat-offsite-111111111111-eu-central-1', now: new Date('2026-11-26T05:00:00Z') };

  test('pg_restore must be at least the newer of the server\'s and the dump client\'s majors', () => {
    const newer: Manifest = { ...manifest, server: { version: '16.4', major: 16 }, client: { tool: 'pg_dump', version: '17.2', major: 17 } };
    const markdown = renderRunbook({ ...base, latest: record(newer), drills: [] });
    expect(markdown).toContain('PostgreSQL **17 or newer** (the run was dumped from PostgreSQL 16.4 by pg_dump 17.2');
    expect(markdown).toContain('A target server of PostgreSQL 16 or newer');
  });

  test('without a verified run or a drill: it says so, with placeholders and no figures', () => {
    const markdown = renderRunbook({ ...base, drills: [] });
    expect(markdown).toContain('**There is no verified run of this source in s3://lifeboat-primary/.**');
    expect(markdown).toContain('--run RUN_ID');
    expect(markdown).toContain('No drill has restored this source yet');
    expect(markdown).not.toMatch(/~\d/);
  });

  test('drills that never finished a restore: named, and no figures', () => {
    const markdown = renderRunbook({ ...base, latest: record(manifest), drills: [evidence({ drillId: '20261126T040000Z', downloadSeconds: 1, restoreSeconds: 0.2, error: 'RestoreFailed' })] });
    expect(markdown).toContain('none of the 1 most recent drill(s) measured a finished restore');
    expect(markdown).toContain('20261126T040000Z, failed, RestoreFailed');
    expect(markdown).not.toMatch(/\| 10 GB/);
  });

  test('an environment-agnostic config: the offsite bucket\'s account is a placeholder, not a CDK token', () => {
    const agnostic = { ...testConfig, primary: { region: 'eu-west-1' }, offsite: { ...testConfig.offsite, account: undefined } };
    const markdown = renderRunbook({ ...base, config: agnostic, offsiteBucket: storageNames(agnostic).offsiteBucketName, latest: record(manifest), drills: [] });
    expect(markdown).not.toContain('${Token');
    expect(markdown).toContain('`lifeboat-offsite-OFFSITE_ACCOUNT-eu-central-1`');
    expect(markdown).toContain('arn:aws:iam::PRIMARY_ACCOUNT:role/lifeboat/operator/Lifeboat-operator-eu-west-1');
  });
});
