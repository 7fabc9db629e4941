/**
 * The RPO watchdog against a local S3 server: ages measured from the run slots, the states,
 * the offsite age, and the EMF documents the handler writes through Powertools. PITR sources
 * from a repository laid out as pgBackRest writes it (archive keys, backup.info); the same on
 * real PostgreSQL and pgBackRest, and IAM-true, is watchdog-pitr.test.ts.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { formatRunId } from '../../lib/domain/run-id';
import { segmentName } from '../../lib/pitr/wal';
import { measureAges, parseWatchedSources, publishAges, type SourceAge, type WatchdogMetrics } from '../../lib/steps/watchdog';
import { buildRun, writeRun } from '../fixtures/runs';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';

const BUCKET = 'primary';
const NOW = new Date('2026-11-26T12:00:00Z');
const MIN = 60;
let server: S3Server;
let s3: S3Client;

const runIdAgo = (seconds: number) => formatRunId(new Date(NOW.getTime() - seconds * 1000));
const write = (source: string, agoSeconds: number, opts: Parameters<typeof writeRun>[3] = {}) =>
  writeRun(s3, BUCKET, buildRun(source, runIdAgo(agoSeconds)), opts);

beforeAll(async () => {
  server = await startS3();
  s3 = server.client();
  await server.createBucket(BUCKET);
  // fresh: verified 10 min ago, confirmed offsite; a newer run still unverified.
  await write('fresh', 25 * MIN, { offsite: true });
  await write('fresh', 10 * MIN, { offsite: true });
  await write('fresh', 0, { verification: 'none' });
  // stale: the last verified run is 2 h old; every run since failed verification.
  await write('stale', 2 * 60 * MIN, { offsite: true });
  await write('stale', 30 * MIN, { verification: 'failed' });
  await write('stale', 15 * MIN, { verification: 'failed' });
  // only-failed: runs exist, none verified.
  await write('failing', 30 * MIN, { verification: 'failed' });
  await write('failing', 15 * MIN, { verification: 'failed' });
  // lagging: verified 5 min ago (offsite pending), the one before confirmed 20 min ago.
  await write('lagging', 20 * MIN, { offsite: true });
  await write('lagging', 5 * MIN);
  // future: a verified run whose slot is after `now` does not count.
  await write('future', 60 * MIN);
  await write('future', -15 * MIN);
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

/** Segments of timeline 1 in the repository `pitr/<source>/` (stanza `main`), as pgBackRest names their keys. */
async function archive(source: string, numbers: readonly number[]): Promise<void> {
  for (const n of numbers) {
    const name = segmentName(1, n);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `pitr/${source}/archive/main/15-1/${name.slice(0, 16)}/${name}-${'ab'.repeat(20)}.zst`, Body: 'wal' }));
  }
  // What the archive holds besides segments: never counted as one.
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `pitr/${source}/archive/main/archive.info`, Body: '[db]' }));
}

/** backup.info with one full set needing segments `walStart`..`walStop`, stopped `stopAgo` seconds before the real now. */
async function backupInfo(source: string, walStart: number, walStop: number, stopAgo: number): Promise<void> {
  const stop = Math.round(Date.now() / 1000) - stopAgo;
  const value = {
    'backrest-format': 5, 'backrest-version': '2.45', 'backup-archive-start': segmentName(1, walStart), 'backup-archive-stop': segmentName(1, walStop),
    'backup-info-repo-size': 1, 'backup-info-repo-size-delta': 1, 'backup-info-size': 1, 'backup-info-size-delta': 1,
    'backup-lsn-start': '0/3000028', 'backup-lsn-stop': '0/4000050', 'backup-timestamp-start': stop - 30, 'backup-timestamp-stop': stop, 'backup-type': 'full',
  };
  await s3.send(new PutObjectCommand({
    Bucket: BUCKET, Key: `pitr/${source}/backup/main/backup.info`,
    Body: `[backrest]\nbackrest-format=5\n\n[backup:current]\n${formatRunId(new Date(stop * 1000)).replace('T', '-').slice(0, 15)}F=${JSON.stringify(value)}\n`,
  }));
}

const measure = (sources: [string, number][], opts: { offsiteLookback?: number } = {}) =>
  measureAges({ s3, bucket: BUCKET, now: NOW, sources: sources.map(([name, rpoSeconds]) => ({ name, rpoSeconds })), ...opts });

test('fresh, stale, never-backed-up and only-failed sources', async () => {
  const ages = await measure([['fresh', 15 * MIN], ['stale', 15 * MIN], ['nothing', 15 * MIN], ['failing', 15 * MIN]]);
  expect(ages).toEqual([
    { source: 'fresh', rpoSeconds: 900, methods: ['logical'], state: 'fresh', secondsSinceVerified: 600, secondsSinceOffsite: 600, lastVerifiedRunId: runIdAgo(600), lastOffsiteRunId: runIdAgo(600) },
    { source: 'stale', rpoSeconds: 900, methods: ['logical'], state: 'stale', secondsSinceVerified: 7200, secondsSinceOffsite: 7200, lastVerifiedRunId: runIdAgo(7200), lastOffsiteRunId: runIdAgo(7200) },
    { source: 'nothing', rpoSeconds: 900, methods: ['logical'], state: 'never' },
    { source: 'failing', rpoSeconds: 900, methods: ['logical'], state: 'never' },
  ]);
});

test('an age equal to the RPO is still fresh; one second more is stale', async () => {
  const [exact] = await measure([['fresh', 600]]);
  expect(exact.state).toBe('fresh');
  const [over] = await measure([['fresh', 599]]);
  expect(over.state).toBe('stale');
});

test('the offsite age is that of the newest verified run confirmed offsite, not the newest verified run', async () => {
  const [lagging] = await measure([['lagging', 15 * MIN]]);
  expect(lagging).toMatchObject({ state: 'fresh', secondsSinceVerified: 300, lastVerifiedRunId: runIdAgo(300), secondsSinceOffsite: 1200, lastOffsiteRunId: runIdAgo(1200) });
});

test('with no confirmation within the lookback, the offsite age is a lower bound and names no run', async () => {
  const [lagging] = await measure([['lagging', 15 * MIN]], { offsiteLookback: 1 });
  expect(lagging).toMatchObject({ secondsSinceVerified: 300, secondsSinceOffsite: 300 });
  expect(lagging.lastOffsiteRunId).toBeUndefined();
  const [future] = await measure([['future', 2 * 60 * MIN]]);
  expect(future).toMatchObject({ state: 'fresh', secondsSinceVerified: 3600, secondsSinceOffsite: 3600, lastVerifiedRunId: runIdAgo(3600) });
  expect(future.lastOffsiteRunId).toBeUndefined();
});

test('an unreadable catalog fails the measurement, naming the bucket', async () => {
  await expect(measureAges({ s3, bucket: 'no-such-bucket', now: NOW, sources: [{ name: 'fresh', rpoSeconds: 900 }] }))
    .rejects.toMatchObject({ name: 'WatchdogReadFailed', message: expect.stringContaining('s3://no-such-bucket: fresh:') });
});

test('publishAges: per source, only the source dimension; no age for a never-backed-up source; the heartbeat', () => {
  const calls: string[] = [];
  const double: WatchdogMetrics = {
    clearDefaultDimensions: () => calls.push('clearDefaultDimensions'),
    addDimension: (name, value) => calls.push(`dimension ${name}=${value}`),
    addMetric: (name, unit, value) => calls.push(`metric ${name}=${value} ${unit}`),
    addMetadata: () => undefined,
    publishStoredMetrics: () => calls.push('flush'),
  };
  const ages: SourceAge[] = [
    { source: 'orders', rpoSeconds: 900, methods: ['logical'], state: 'fresh', secondsSinceVerified: 600, secondsSinceOffsite: 1200 },
    { source: 'billing', rpoSeconds: 900, methods: ['logical'], state: 'never' },
  ];
  publishAges(ages, double);
  expect(calls).toEqual([
    'clearDefaultDimensions',
    'dimension source=orders', 'metric SecondsSinceVerifiedBackup=600 Seconds', 'metric SecondsSinceOffsiteBackup=1200 Seconds', 'flush',
    'dimension source=billing', 'metric NeverBackedUp=1 Count', 'flush',
    'metric WatchdogHeartbeat=1 Count', 'flush',
  ]);
});

test.each([
  ['not json', 'not JSON'],
  ['[]', 'non-empty array'],
  ['[{"name": "", "rpoSeconds": 0}, {"name": "x"}]', '[0].name: expected a source name, got ""; [0].rpoSeconds: expected a positive number of seconds, got 0; [1].rpoSeconds'],
])('LIFEBOAT_SOURCES_JSON %s is refused', (text, message) => {
  expect(() => parseWatchedSources(text)).toThrow(message);
});

describe('a PITR source, from its repository in the bucket', () => {
  const HOUR = 3600;
  beforeAll(async () => {
    await archive('ledger', [1, 2, 3, 4, 5, 6]);
    await backupInfo('ledger', 2, 3, HOUR);
    // A hole (segment 5) after the only set: nothing restores to the newest point.
    await archive('holed', [1, 2, 3, 4, 6]);
    await backupInfo('holed', 2, 3, HOUR);
    // Archiving, but no set yet: WAL alone restores nothing.
    await archive('unset', [1, 2]);
    // Both methods: logical runs and an archive.
    // A slot before the real now (the measure here is against it).
    await writeRun(s3, BUCKET, buildRun('both', formatRunId(new Date(Math.floor(Date.now() / 900_000) * 900_000))), { offsite: true });
    await archive('both', [1, 2, 3]);
    await backupInfo('both', 1, 2, HOUR);
  });
  /** Measures at the real now plus `later` seconds: the server stamps LastModified with the real time. */
  const measurePitr = (sources: { name: string; methods: ('logical' | 'pitr')[] }[], later: number, rpoSeconds = 15 * MIN) =>
    measureAges({ s3, bucket: BUCKET, now: new Date(Date.now() + later * 1000), sources: sources.map((source) => ({ ...source, rpoSeconds, stanza: 'main' })) });

  test('the archive\'s age, no gap, and the window from the set to the newest segment; no logical measure for a PITR-only source', async () => {
    const [ledger] = await measurePitr([{ name: 'ledger', methods: ['pitr'] }], 60);
    expect(ledger).toEqual({
      source: 'ledger', rpoSeconds: 900, methods: ['pitr'], state: 'fresh',
      archive: expect.objectContaining({ stanza: 'main', state: 'fresh', newestSegment: segmentName(1, 6), sets: 1, gaps: 0, missingSegments: 0 }),
    });
    expect(ledger.archive?.ageSeconds).toBeGreaterThanOrEqual(59);
    expect(ledger.archive?.ageSeconds).toBeLessThan(120);
    // The set stopped an hour ago; the newest segment arrived just now.
    expect(ledger.archive?.restorableWindowSeconds).toBeGreaterThanOrEqual(HOUR - 5);
    expect(ledger.archive?.restorableWindowSeconds).toBeLessThan(HOUR + 60);
  });

  test('older than the RPO: stale', async () => {
    const [ledger] = await measurePitr([{ name: 'ledger', methods: ['pitr'] }], 400, 300);
    expect(ledger).toMatchObject({ state: 'stale', archive: { state: 'stale', gaps: 0 } });
  });

  test('a hole counts once the segment after it has been there for the settle time (a parallel push may still fill it)', async () => {
    const [fresh] = await measurePitr([{ name: 'holed', methods: ['pitr'] }], 60);
    expect(fresh.archive).toMatchObject({ gaps: 0, missingSegments: 0 });
    const [settled] = await measurePitr([{ name: 'holed', methods: ['pitr'] }], 400, 1000);
    expect(settled.archive).toMatchObject({ state: 'fresh', gaps: 1, missingSegments: 1, firstMissingSegment: segmentName(1, 5), restorableWindowSeconds: 0 });
    expect(settled.archive?.restorableFrom).toBeUndefined();
  });

  test('WAL but no backup set: never (its age is known, but not published)', async () => {
    const [unset] = await measurePitr([{ name: 'unset', methods: ['pitr'] }], 60);
    expect(unset).toMatchObject({ state: 'never', archive: { state: 'never', sets: 0, gaps: 0, restorableWindowSeconds: 0 } });
    expect(unset.archive?.ageSeconds).toBeGreaterThanOrEqual(59);
  });

  test('both methods: the logical ages and the archive\'s, the state the worse of the two', async () => {
    const [both] = await measurePitr([{ name: 'both', methods: ['logical', 'pitr'] }], 60, HOUR);
    expect(both).toMatchObject({ methods: ['logical', 'pitr'], state: 'fresh', archive: { state: 'fresh', gaps: 0 } });
    expect(both.secondsSinceVerified).toBeGreaterThan(0);
    const [late] = await measurePitr([{ name: 'both', methods: ['logical', 'pitr'] }], 400, 300);
    expect(late).toMatchObject({ state: 'stale', archive: { state: 'stale' } });
    const [nothing] = await measurePitr([{ name: 'unset', methods: ['logical', 'pitr'] }], 60);
    expect(nothing).toMatchObject({ state: 'never', archive: { state: 'never' } });
    expect(nothing.secondsSinceVerified).toBeUndefined();
  });
});

describe('the handler', () => {
  type Handler = (event: unknown, context: Context) => Promise<{ ages: SourceAge[] }>;
  const context = { functionName: 'watchdog', awsRequestId: 'request-1', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

  let original: NodeJS.ProcessEnv;
  // The base environment stays set, as in Lambda: the SDK reads region and credentials per request.
  beforeAll(() => {
    original = { ...process.env };
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      LIFEBOAT_S3_ENDPOINT: server.endpoint,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_SERVICE_NAME: 'lifeboat-watchdog',
    });
  });
  afterAll(() => {
    process.env = original;
  });

  /** Loads the handler module afresh with `overrides` set while it initialises. */
  function load(overrides: Record<string, string | undefined>): Handler {
    const saved = { ...process.env };
    Object.assign(process.env, overrides);
    for (const [key, value] of Object.entries(overrides)) if (value === undefined) delete process.env[key];
    try {
      let handler: Handler | undefined;
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        handler = (require('../../lambdas/watchdog/handler') as { handler: Handler }).handler;
      });
      return handler as Handler;
    } finally {
      process.env = saved;
    }
  }

  test.each([
    ['no LIFEBOAT_BUCKET', { LIFEBOAT_BUCKET: undefined, LIFEBOAT_SOURCES_JSON: '[{"name":"fresh","rpoSeconds":900}]' }, 'environment variable LIFEBOAT_BUCKET is not set'],
    ['no LIFEBOAT_SOURCES_JSON', { LIFEBOAT_BUCKET: BUCKET, LIFEBOAT_SOURCES_JSON: undefined }, 'environment variable LIFEBOAT_SOURCES_JSON is not set'],
    ['a malformed LIFEBOAT_SOURCES_JSON', { LIFEBOAT_BUCKET: BUCKET, LIFEBOAT_SOURCES_JSON: '{"orders": 900}' }, 'LIFEBOAT_SOURCES_JSON: expected a non-empty array'],
  ])('fails at load: %s', (_name, overrides, message) => {
    expect(() => load(overrides)).toThrow(message);
  });

  test('writes one EMF document per source with only the source dimension, and a heartbeat', async () => {
    const handler = load({ LIFEBOAT_BUCKET: BUCKET, LIFEBOAT_SOURCES_JSON: JSON.stringify([{ name: 'stale', rpoSeconds: 900 }, { name: 'failing', rpoSeconds: 900 }]) });
    const lines: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      return true;
    });
    let result: { ages: SourceAge[] };
    try {
      result = await handler({}, context);
    } finally {
      spy.mockRestore();
    }
    expect(result.ages.map((age) => age.state)).toEqual(['stale', 'never']);
    const emf = lines.map((line) => JSON.parse(line) as Record<string, unknown> & { _aws?: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] } })
      .filter((doc) => doc._aws);
    expect(emf).toHaveLength(3);
    const [stale, failing, heartbeat] = emf;
    expect(stale._aws?.CloudWatchMetrics).toEqual([{
      Namespace: 'Lifeboat',
      Dimensions: [['source']],
      Metrics: [{ Name: 'SecondsSinceVerifiedBackup', Unit: 'Seconds' }, { Name: 'SecondsSinceOffsiteBackup', Unit: 'Seconds' }],
    }]);
    expect(stale).toMatchObject({ source: 'stale', state: 'stale' });
    expect(stale).not.toHaveProperty('service');
    expect(stale.SecondsSinceVerifiedBackup).toBeGreaterThanOrEqual(7200);
    expect(failing._aws?.CloudWatchMetrics[0]).toMatchObject({ Dimensions: [['source']], Metrics: [{ Name: 'NeverBackedUp', Unit: 'Count' }] });
    expect(failing).toMatchObject({ source: 'failing', NeverBackedUp: 1 });
    expect(failing).not.toHaveProperty('SecondsSinceVerifiedBackup');
    expect(heartbeat).toMatchObject({ WatchdogHeartbeat: 1 });
    expect(heartbeat._aws?.CloudWatchMetrics[0].Dimensions).toEqual([]);
  });

  test('a PITR source: ArchiveAgeSeconds, ArchiveGaps and RestorableWindowSeconds with only the source dimension, the window in the metadata', async () => {
    const handler = load({ LIFEBOAT_BUCKET: BUCKET, LIFEBOAT_SOURCES_JSON: JSON.stringify([{ name: 'ledger', rpoSeconds: 900, methods: ['pitr'], stanza: 'main' }]) });
    const lines: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      return true;
    });
    try {
      await handler({}, context);
    } finally {
      spy.mockRestore();
    }
    const [ledger] = lines.map((line) => JSON.parse(line) as Record<string, unknown> & { _aws?: { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] } })
      .filter((doc) => doc._aws && doc.source === 'ledger');
    expect(ledger._aws?.CloudWatchMetrics).toEqual([expect.objectContaining({
      Dimensions: [['source']],
      Metrics: [{ Name: 'ArchiveAgeSeconds', Unit: 'Seconds' }, { Name: 'ArchiveGaps', Unit: 'Count' }, { Name: 'RestorableWindowSeconds', Unit: 'Seconds' }],
    })]);
    expect(ledger).toMatchObject({ ArchiveGaps: 0, archiveState: 'fresh', archiveNewestSegment: segmentName(1, 6), restorableFrom: expect.any(String), restorableTo: expect.any(String) });
    expect(ledger).not.toHaveProperty('SecondsSinceVerifiedBackup');
    expect(ledger).not.toHaveProperty('NeverBackedUp');
  });
});
