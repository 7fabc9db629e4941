/**
 * pruneSource against a real S3-compatible server. The server does not emulate Object Lock, so
 * locks are exercised through the computed retain-until and through a client whose DeleteObjects
 * answers AccessDenied for one run, the way a locked object does on S3.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { listRuns } from '../../lib/catalog/catalog';
import { policyForTier, type RetentionPolicy } from '../../lib/retention/policy';
import { pruneSource, renderDecisionTable, retainUntil, type DecisionRow } from '../../lib/retention/prune';
import { buildRun, put, writeRun } from '../fixtures/runs';
import { startS3, type S3Server } from '../harness/s3';

const DAY = 86_400;
const NOW = new Date('2026-11-26T04:00:00Z');
const SOURCE = 'orders';
/** tier3 (daily, 7 days), with smaller counts so a short history has something to remove. */
const POLICY: RetentionPolicy = { ...policyForTier({ scheduleSeconds: DAY, retentionSeconds: 7 * DAY }), daily: 7, weekly: 0 };
/** Object Lock as if it had expired for every run (the server has none). */
const UNLOCKED = (): Date => new Date(0);

let server: S3Server;
let s3: S3Client;
let bucketCount = 0;

beforeAll(async () => {
  server = await startS3();
  s3 = server.client();
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

async function newBucket(): Promise<string> {
  const name = `prune-${++bucketCount}`;
  await server.createBucket(name);
  return name;
}

type Kind = 'ok' | 'failed' | 'interrupted';

/** Daily runs at 03:00 UTC, `daysAgo` → kind. */
async function writeHistory(bucket: string, history: Record<number, Kind>): Promise<void> {
  await Promise.all(Object.entries(history).map(async ([daysAgo, kind]) => {
    const slot = new Date(Date.UTC(2026, 10, 26 - Number(daysAgo), 3));
    const runId = slot.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
    const run = buildRun(SOURCE, runId);
    if (kind === 'interrupted') await put(s3, bucket, [...run.objects.keys()][0], 'partial');
    else await writeRun(s3, bucket, run, { verification: kind, offsite: kind === 'ok' });
  }));
}

async function keys(bucket: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (listed.Contents ?? []).map((object) => object.Key as string).sort();
}

const runIdsOf = (all: string[]) => [...new Set(all.map((key) => key.split('/')[2]))].sort();
const byAction = (rows: DecisionRow[], action: DecisionRow['action']) => rows.filter((row) => row.action === action).map((row) => row.runId).sort();

// 0–2 days: young; 3–4: failed/interrupted past the grace; 5–12 verified; 13: failed.
const HISTORY: Record<number, Kind> = {
  0: 'interrupted', 1: 'failed', 2: 'ok', 3: 'failed', 4: 'interrupted',
  5: 'ok', 6: 'ok', 7: 'ok', 8: 'ok', 9: 'ok', 10: 'ok', 11: 'ok', 12: 'ok', 13: 'failed',
};

test('dry-run deletes nothing and returns the decision table', async () => {
  const bucket = await newBucket();
  await writeHistory(bucket, HISTORY);
  const before = await keys(bucket);
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: true, lockedUntil: UNLOCKED });
  expect(await keys(bucket)).toEqual(before);
  const table = renderDecisionTable(rows);
  process.stdout.write(`${table}\n`);
  expect(table.split('\n')).toHaveLength(2 + 14);
  expect(table).toContain('20261123T030000Z  failed      remove  failed, past the 2d grace');
  expect(table).toContain('20261126T030000Z  unverified  keep    unverified but younger than the 2d grace');
  expect(byAction(rows, 'remove')).toEqual(['20261113T030000Z', '20261114T030000Z', '20261115T030000Z', '20261122T030000Z', '20261123T030000Z']);
});

test('a real prune removes exactly the removed runs\' objects', async () => {
  const bucket = await newBucket();
  await writeHistory(bucket, HISTORY);
  const before = await keys(bucket);
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false, lockedUntil: UNLOCKED });
  const removed = byAction(rows, 'remove');
  expect(removed).toHaveLength(5);
  const after = await keys(bucket);
  expect(after).toEqual(before.filter((key) => !removed.includes(key.split('/')[2])));
  expect(runIdsOf(after)).toEqual(byAction(rows, 'keep'));
  // Idempotent: nothing more to remove.
  const again = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false, lockedUntil: UNLOCKED });
  expect(byAction(again, 'remove')).toEqual([]);
});

test('when every verified run is older than the retention, the newest verified runs are kept', async () => {
  const bucket = await newBucket();
  // Verified 30–40 days ago, then only failures.
  const history: Record<number, Kind> = {};
  for (let day = 3; day < 30; day++) history[day] = day % 2 ? 'failed' : 'interrupted';
  for (let day = 30; day <= 40; day++) history[day] = 'ok';
  await writeHistory(bucket, history);
  const policy = { ...POLICY, keepLast: 0, daily: 0 };
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy, now: NOW, dryRun: false, lockedUntil: UNLOCKED });
  expect(byAction(rows, 'keep')).toEqual(['20261025T030000Z', '20261026T030000Z', '20261027T030000Z']);
  expect(runIdsOf(await keys(bucket))).toEqual(['20261025T030000Z', '20261026T030000Z', '20261027T030000Z']);
});

test('runs still under Object Lock are skipped and reported; the others are removed', async () => {
  const bucket = await newBucket();
  await writeHistory(bucket, HISTORY);
  const before = await keys(bucket);
  // The default lock: the run's start (or its objects' write time, just now) + the 7-day retention.
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false });
  expect(byAction(rows, 'remove')).toEqual([]);
  expect(byAction(rows, 'skip-locked')).toHaveLength(5);
  expect(rows.find((row) => row.runId === '20261123T030000Z')?.reason).toMatch(/^failed, past the 2d grace; locked until \d{4}-/);
  expect(await keys(bucket)).toEqual(before);
});

test('AccessDenied from S3 on delete is "locked, skipped", not a failed prune', async () => {
  const bucket = await newBucket();
  await writeHistory(bucket, HISTORY);
  const client = server.client();
  const lockedRun = '20261114T030000Z';
  client.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { Delete?: { Objects?: { Key?: string }[] } };
      if (input.Delete?.Objects?.some((object) => object.Key?.includes(`/${lockedRun}/`))) {
        throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
      }
      return next(args);
    },
    { step: 'initialize', name: 'denyLockedRun' },
  );
  try {
    const rows = await pruneSource({ s3: client, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false, lockedUntil: UNLOCKED });
    expect(byAction(rows, 'skip-locked')).toEqual([lockedRun]);
    expect(rows.find((row) => row.runId === lockedRun)?.reason).toContain('S3 denied the delete');
    expect(byAction(rows, 'remove')).toHaveLength(4);
    expect(runIdsOf(await keys(bucket))).toContain(lockedRun);
  } finally {
    client.destroy();
  }
});

test('retain-until is the latest of the run start and its objects\' write times, plus the lock period', async () => {
  const bucket = await newBucket();
  await writeHistory(bucket, { 20: 'ok' });
  const [run] = await listRuns(s3, bucket, SOURCE);
  const written = Math.max(...run.objects.map((object) => (object.lastModified as Date).getTime()));
  expect(written).toBeGreaterThan(Date.parse(run.manifest?.startedAt ?? ''));
  expect(retainUntil(run, DAY).getTime()).toBe(written + DAY * 1000);
  expect(retainUntil({ ...run, objects: [] }, DAY).toISOString()).toBe('2026-11-07T03:00:01.000Z');
  expect(retainUntil({ ...run, manifest: undefined, objects: [] }, DAY).toISOString()).toBe('2026-11-07T03:00:00.000Z');
});
