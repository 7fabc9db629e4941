/**
 * pruneSource against the local S3 server with Object Lock buckets, as the pruner meets them in
 * AWS: every object of a run is written at its slot with the run's lock (COMPLIANCE, retain-until =
 * slot + the tier's retention), and the server refuses to delete a locked version by its own
 * clock. That clock is the test's: S3 (and the server) take no retain-until date in the past, so
 * runs whose locks have run out by NOW could not otherwise carry their real locks. The server is
 * started with Date moved (a preload through NODE_OPTIONS reading an offset from a file); each
 * run is written with the clock at its slot, and the prune happens with the clock at NOW.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  ListObjectVersionsCommand,
  PutObjectLegalHoldCommand,
  type DeleteObjectsCommandInput,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { listRuns } from '../../lib/catalog/catalog';
import { formatRunId, runIdToDate } from '../../lib/domain/run-id';
import { decide, policyForTier, type RetentionPolicy } from '../../lib/retention/policy';
import { pruneSource, pruneSources, renderDecisionTable, type DecisionRow } from '../../lib/retention/prune';
import { buildRun, put, writeRun } from '../fixtures/runs';
import { startS3 } from '../harness/s3';

const DAY = 86_400;
const DAY_MS = DAY * 1000;
const NOW = new Date('2026-11-26T04:00:00Z');
const SOURCE = 'orders';
const TIER3 = { scheduleSeconds: DAY, retentionSeconds: 7 * DAY };
const TIER1 = { scheduleSeconds: 900, retentionSeconds: 90 * DAY };
/** tier3 (daily, 7 days), with smaller counts so a short history has something to remove. */
const POLICY: RetentionPolicy = { ...policyForTier(TIER3), daily: 7, weekly: 0 };
/** The same without calendar counts: the newest 3 verified runs and the 7-day window only. */
const NO_CALENDAR: RetentionPolicy = { ...POLICY, daily: 0 };

/** Moves the server's clock to `at` (it runs on from there). */
const setServerClock = (at: number) => server.setClock(at);

let server: Awaited<ReturnType<typeof startS3>>;
let s3: S3Client;
let bucketCount = 0;

beforeAll(async () => {
  server = await startS3({ clock: NOW.getTime() });
  s3 = server.client();
});

beforeEach(() => setServerClock(NOW.getTime()));

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

async function newBucket(options: { objectLock?: boolean } = { objectLock: true }): Promise<string> {
  const name = `prune-${++bucketCount}`;
  await server.createBucket(name, options);
  return name;
}

/** Daily at 03:00 UTC, `daysAgo` days before NOW's. */
const slot = (daysAgo: number) => new Date(Date.UTC(2026, 10, 26 - daysAgo, 3));
const runIdOf = (daysAgo: number) => formatRunId(slot(daysAgo));
const iso = (ms: number) => new Date(ms).toISOString();

/** The lock a run's objects get: mode and retain-until, by run id and key. */
interface LockPlan {
  readonly mode?: 'COMPLIANCE' | 'GOVERNANCE';
  readonly until: (runId: string, key: string) => number;
}

/** A client whose PutObject carries the plan's lock, as the worker and Commit write a run. */
function lockingClient(plan: LockPlan): S3Client {
  const client = server.client();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'PutObjectCommand') {
        const input = args.input as PutObjectCommandInput;
        const key = input.Key as string;
        Object.assign(input, { ObjectLockMode: plan.mode ?? 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(plan.until(key.split('/')[2], key)) });
      }
      return next(args);
    },
    { step: 'initialize', name: 'runObjectLock' },
  );
  return client;
}

/** The run's lock: its slot plus the tier's retention. */
const tierLock = (retentionSeconds: number): LockPlan => ({
  until: (runId) => (runIdToDate(runId) as Date).getTime() + retentionSeconds * 1000,
});

type Kind = 'ok' | 'failed' | 'interrupted';

/**
 * Daily runs, `daysAgo` → kind, each written at its slot (the server's clock) with `plan`'s locks;
 * `bases`: `daysAgo` → the day whose run that run's manifest depends on.
 */
async function writeHistory(bucket: string, history: Record<number, Kind>, plan: LockPlan = tierLock(TIER3.retentionSeconds), bases: Record<number, number> = {}): Promise<void> {
  const client = lockingClient(plan);
  try {
    for (const [daysAgo, kind] of Object.entries(history).sort(([a], [b]) => Number(b) - Number(a))) {
      const base = bases[Number(daysAgo)];
      const run = buildRun(SOURCE, runIdOf(Number(daysAgo)), base === undefined ? {} : { dependsOn: [runIdOf(base)] });
      setServerClock(slot(Number(daysAgo)).getTime() + 10 * 60_000);
      if (kind === 'interrupted') await put(client, bucket, [...run.objects.keys()][0], 'partial');
      else await writeRun(client, bucket, run, { verification: kind, offsite: kind === 'ok' });
    }
  } finally {
    client.destroy();
    setServerClock(NOW.getTime());
  }
}

interface Version { key: string; versionId: string; deleteMarker: boolean }

/** Every version and delete marker in the bucket, paged by hand (the SDK has no paginator for it). */
async function versions(bucket: string, prefix = 'runs/'): Promise<Version[]> {
  const all: Version[] = [];
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, VersionIdMarker, MaxKeys: 50 }));
    all.push(...(page.Versions ?? []).map((v) => ({ key: v.Key as string, versionId: v.VersionId as string, deleteMarker: false })));
    all.push(...(page.DeleteMarkers ?? []).map((m) => ({ key: m.Key as string, versionId: m.VersionId as string, deleteMarker: true })));
    if (!page.IsTruncated) break;
    [KeyMarker, VersionIdMarker] = [page.NextKeyMarker, page.NextVersionIdMarker];
  }
  return all.sort((a, b) => `${a.key} ${a.versionId}`.localeCompare(`${b.key} ${b.versionId}`));
}

const runOf = (key: string) => key.split('/')[2];
const byAction = (rows: DecisionRow[], action: DecisionRow['action']) => rows.filter((row) => row.action === action).map((row) => row.runId).sort();
const reasonOf = (rows: DecisionRow[], runId: string) => rows.find((row) => row.runId === runId)?.reason;
const remaining = (ms: number) => {
  const s = Math.floor(ms / 1000);
  return Math.floor(s / DAY) > 0 ? `${Math.floor(s / DAY)}d${Math.floor((s % DAY) / 3600) > 0 ? ` ${Math.floor((s % DAY) / 3600)}h` : ''}` : undefined;
};

/** Records the pruner's DeleteObjects requests. */
function recordingClient(): { client: S3Client; deletes: DeleteObjectsCommandInput[] } {
  const client = server.client();
  const deletes: DeleteObjectsCommandInput[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'DeleteObjectsCommand') deletes.push(structuredClone(args.input as DeleteObjectsCommandInput));
      return next(args);
    },
    { step: 'initialize', name: 'recordDeletes' },
  );
  return { client, deletes };
}

// 0–2 days: young; 3–4: failed/interrupted past the grace but locked; 5–12 verified; 13: failed.
const HISTORY: Record<number, Kind> = {
  0: 'interrupted', 1: 'failed', 2: 'ok', 3: 'failed', 4: 'interrupted',
  5: 'ok', 6: 'ok', 7: 'ok', 8: 'ok', 9: 'ok', 10: 'ok', 11: 'ok', 12: 'ok', 13: 'failed',
};

test('dry-run deletes nothing and returns the decision table, locks read from the objects', async () => {
  const bucket = await newBucket();
  await writeHistory(bucket, HISTORY);
  const before = await versions(bucket);
  const now = NOW;
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now, dryRun: true });
  expect(await versions(bucket)).toEqual(before);
  const table = renderDecisionTable(rows);
  process.stdout.write(`${table}\n`);
  expect(table.split('\n')).toHaveLength(2 + 14);
  expect(byAction(rows, 'remove')).toEqual([13, 12, 11].map(runIdOf));
  expect(reasonOf(rows, runIdOf(13))).toBe('failed, past the 2d grace');
  expect(reasonOf(rows, runIdOf(0))).toBe('unverified but younger than the 2d grace');
  // Failed and interrupted, past the grace: the policy removes them, their 7-day lock keeps them.
  expect(byAction(rows, 'skip-locked')).toEqual([4, 3].map(runIdOf));
  expect(reasonOf(rows, '20261123T030000Z')).toBe('failed, past the 2d grace; kept: locked until 2026-11-30T03:00:00.000Z (3d 23h left)');
  expect(reasonOf(rows, '20261122T030000Z')).toBe('unverified, past the 2d grace; kept: locked until 2026-11-29T03:00:00.000Z (2d 23h left)');
});

test('a real prune removes the removed runs version by version, verification.json\'s versions first, and leaves no delete marker', async () => {
  const bucket = await newBucket();
  await writeHistory(bucket, HISTORY);
  const before = await versions(bucket);
  const { client, deletes } = recordingClient();
  try {
    const rows = await pruneSource({ s3: client, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false });
    const removed = byAction(rows, 'remove');
    expect(removed).toEqual([13, 12, 11].map(runIdOf));
    const after = await versions(bucket);
    expect(after).toEqual(before.filter((version) => !removed.includes(runOf(version.key))));
    expect(after.filter((version) => version.deleteMarker)).toEqual([]);
    // Exact versions, never a bypass; per run, the first request is its verification.json alone.
    expect(deletes.flatMap((input) => input.Delete?.Objects ?? []).every((object) => typeof object.VersionId === 'string')).toBe(true);
    expect(deletes.some((input) => input.BypassGovernanceRetention !== undefined)).toBe(false);
    for (const runId of removed) {
      const requests = deletes.filter((input) => input.Delete?.Objects?.some((object) => runOf(object.Key as string) === runId));
      expect(requests.map((input) => input.Delete?.Objects?.map((object) => object.Key?.split('/')[3]).sort())).toEqual([
        ['verification.json'],
        ['globals.sql', 'manifest.json', 'orders.pgdump', ...(runId === runIdOf(13) ? [] : ['offsite.json'])].sort(),
      ]);
      expect(requests.flatMap((input) => input.Delete?.Objects ?? []).map((object) => object.VersionId).sort())
        .toEqual(before.filter((version) => runOf(version.key) === runId).map((version) => version.versionId).sort());
    }
    // Idempotent: nothing more to remove, the locked runs still kept.
    const again = await pruneSource({ s3: client, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false });
    expect(byAction(again, 'remove')).toEqual([]);
    expect(byAction(again, 'skip-locked')).toEqual([4, 3].map(runIdOf));
  } finally {
    client.destroy();
  }
});

test('after a tier\'s retention is shortened (tier1 → tier3), nothing still locked is deleted: every version stays, no delete marker, each run kept until its date', async () => {
  const bucket = await newBucket();
  const history: Record<number, Kind> = {};
  for (let day = 3; day <= 20; day++) history[day] = day % 4 === 0 ? 'failed' : 'ok';
  history[15] = 'interrupted';
  // Written while the source was tier1: each run locked for 90 days from its slot.
  await writeHistory(bucket, history, tierLock(TIER1.retentionSeconds));
  const before = await versions(bucket);
  const now = NOW;
  const tier3 = policyForTier(TIER3);
  const policyRemoves = decide((await listRuns(s3, bucket, SOURCE)), tier3, now).remove.map((d) => d.runId).sort();
  expect(policyRemoves.length).toBeGreaterThan(5);

  const [result] = await pruneSources({ s3, bucket, sources: [{ name: SOURCE, tier: TIER3 }], now, dryRun: false });
  expect(result.removed).toBe(0);
  expect(result.skippedLocked).toBe(policyRemoves.length);
  expect(byAction(result.rows, 'skip-locked')).toEqual(policyRemoves);
  for (const runId of policyRemoves) {
    const daysAgo = Object.keys(history).map(Number).find((day) => runIdOf(day) === runId) as number;
    const lockEnd = slot(daysAgo).getTime() + 90 * DAY_MS;
    expect(reasonOf(result.rows, runId)).toMatch(/^(verified, older than 7d and outside every keep count|failed, past the 2d grace|unverified, past the 2d grace); kept: /);
    expect(reasonOf(result.rows, runId)).toContain(`; kept: locked until ${iso(lockEnd)} (${remaining(lockEnd - now.getTime())} left)`);
  }
  expect(await versions(bucket)).toEqual(before);
  expect(before.filter((version) => version.deleteMarker)).toEqual([]);
  expect((await listRuns(s3, bucket, SOURCE)).map((run) => run.runId).sort()).toEqual(Object.keys(history).map((day) => runIdOf(Number(day))).sort());
});

test('a run whose locks have expired goes version by version, its old versions and delete markers too; a run with one object still locked, or on legal hold, is kept whole', async () => {
  const bucket = await newBucket();
  const expired = runIdOf(20);
  const oneLocked = runIdOf(21);
  const onHold = runIdOf(22);
  // One artifact of `oneLocked` stays locked for 30 days; every other lock lapses now.
  const lockedArtifactUntil = NOW.getTime() + 30 * DAY_MS;
  await writeHistory(bucket, { 0: 'ok', 1: 'ok', 2: 'ok', 20: 'ok', 21: 'ok', 22: 'failed' }, {
    until: (runId, key) => (runId === oneLocked && key.endsWith('.pgdump') ? lockedArtifactUntil : tierLock(TIER3.retentionSeconds).until(runId, key)),
  });
  // A noncurrent version and a delete marker in the expired run, as a second write and a delete
  // without version id leave them: the run's removal takes them too.
  const writer = lockingClient(tierLock(TIER3.retentionSeconds));
  setServerClock(slot(20).getTime() + 2 * 3_600_000);
  await put(writer, bucket, `runs/${SOURCE}/${expired}/offsite.json`, '{"stale":true}');
  setServerClock(NOW.getTime());
  writer.destroy();
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `runs/${SOURCE}/${expired}/globals.sql` }));
  const held = (await versions(bucket, `runs/${SOURCE}/${onHold}/manifest.json`))[0];
  await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: held.key, VersionId: held.versionId, LegalHold: { Status: 'ON' } }));
  const before = await versions(bucket);
  expect(before.filter((version) => runOf(version.key) === expired && version.deleteMarker)).toHaveLength(1);

  const now = NOW;
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: NO_CALENDAR, now, dryRun: false });
  expect(byAction(rows, 'remove')).toEqual([expired]);
  expect(await versions(bucket, `runs/${SOURCE}/${expired}/`)).toEqual([]);
  expect(reasonOf(rows, oneLocked)).toBe(`verified, older than 7d and outside every keep count; kept: locked until ${iso(lockedArtifactUntil)} (${remaining(lockedArtifactUntil - now.getTime())} left)`);
  expect(reasonOf(rows, onHold)).toBe('failed, past the 2d grace; kept: manifest.json under legal hold');
  expect(await versions(bucket)).toEqual(before.filter((version) => runOf(version.key) !== expired));
  expect((await listRuns(s3, bucket, SOURCE)).find((run) => run.runId === oneLocked)?.status).toBe('verified');
});

test('when every verified run is older than the retention, the newest verified runs are kept', async () => {
  const bucket = await newBucket();
  // Verified 30–40 days ago, then only failures.
  const history: Record<number, Kind> = {};
  for (let day = 3; day < 30; day++) history[day] = day % 2 ? 'failed' : 'interrupted';
  for (let day = 30; day <= 40; day++) history[day] = 'ok';
  await writeHistory(bucket, history);
  const policy = { ...POLICY, keepLast: 0, daily: 0 };
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy, now: NOW, dryRun: false });
  expect(byAction(rows, 'keep')).toEqual([32, 31, 30].map(runIdOf));
  // Failures of the last 7 days are still locked; everything else is gone.
  expect(byAction(rows, 'skip-locked')).toEqual([6, 5, 4, 3].map(runIdOf));
  expect([...new Set((await versions(bucket)).map((version) => runOf(version.key)))].sort()).toEqual([32, 31, 30, 6, 5, 4, 3].map(runIdOf).sort());
});

test('a delete S3 still refuses (the pruner\'s clock ahead of the lock) is kept, never removed, and nothing of the run goes', async () => {
  const bucket = await newBucket();
  const refused = runIdOf(20);
  const lockEnd = NOW.getTime() + 3_600_000;
  await writeHistory(bucket, { 0: 'ok', 1: 'ok', 2: 'ok', 20: 'ok' }, { until: (runId, key) => (runId === refused ? lockEnd : tierLock(TIER3.retentionSeconds).until(runId, key)) });
  const before = await versions(bucket);
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: NO_CALENDAR, now: new Date(lockEnd + 60_000), dryRun: false });
  expect(byAction(rows, 'remove')).toEqual([]);
  expect(byAction(rows, 'skip-locked')).toEqual([refused]);
  expect(reasonOf(rows, refused)).toMatch(
    new RegExp(`^verified, older than 7d and outside every keep count; kept: S3 refused deleting runs/${SOURCE}/${refused}/verification\\.json \\(version \\w+\\): AccessDenied`));
  expect(await versions(bucket)).toEqual(before);
});

test('a run hidden by delete markers (what a delete without version id leaves) is removed completely once unlocked, and kept while locked', async () => {
  const bucket = await newBucket();
  const unlocked = runIdOf(20);
  const locked = runIdOf(21);
  const lockEnd = NOW.getTime() + 20 * DAY_MS;
  await writeHistory(bucket, { 0: 'ok', 1: 'ok', 2: 'ok', 20: 'ok', 21: 'ok' }, { until: (runId, key) => (runId === locked ? lockEnd : tierLock(TIER3.retentionSeconds).until(runId, key)) });
  for (const runId of [unlocked, locked]) {
    const keys = [...new Set((await versions(bucket, `runs/${SOURCE}/${runId}/`)).map((version) => version.key))];
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
  }
  expect((await listRuns(s3, bucket, SOURCE)).map((run) => run.runId)).toEqual([2, 1, 0].map(runIdOf));
  const before = await versions(bucket);

  const now = NOW;
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: NO_CALENDAR, now, dryRun: false });
  expect(reasonOf(rows, unlocked)).toBe('unverified, past the 2d grace; only noncurrent versions and delete markers are left (the catalog no longer lists it)');
  expect(byAction(rows, 'remove')).toEqual([unlocked]);
  expect(await versions(bucket, `runs/${SOURCE}/${unlocked}/`)).toEqual([]);
  expect(byAction(rows, 'skip-locked')).toEqual([locked]);
  expect(reasonOf(rows, locked)).toContain(`; kept: locked until ${iso(lockEnd)}`);
  expect(await versions(bucket)).toEqual(before.filter((version) => runOf(version.key) !== unlocked));
});

test('a lock the pruner cannot read fails the prune (PruneFailed) and deletes nothing', async () => {
  const bucket = await newBucket();
  await writeHistory(bucket, HISTORY);
  const before = await versions(bucket);
  const client = server.client();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetObjectRetentionCommand') throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
      return next(args);
    },
    { step: 'initialize', name: 'denyRetention' },
  );
  try {
    await expect(pruneSource({ s3: client, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false }))
      .rejects.toMatchObject({ name: 'PruneFailed', message: expect.stringMatching(/^reading the retention of s3:\/\/prune-\d+\/runs\/orders\/.* AccessDenied: Access Denied$/) });
    expect(await versions(bucket)).toEqual(before);
  } finally {
    client.destroy();
  }
});

test('a bucket without Object Lock: no version can be locked, the policy alone decides', async () => {
  const bucket = await newBucket({});
  await Promise.all(Object.entries(HISTORY).map(async ([daysAgo, kind]) => {
    const run = buildRun(SOURCE, runIdOf(Number(daysAgo)));
    if (kind === 'interrupted') await put(s3, bucket, [...run.objects.keys()][0], 'partial');
    else await writeRun(s3, bucket, run, { verification: kind, offsite: kind === 'ok' });
  }));
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false });
  expect(byAction(rows, 'remove')).toEqual([13, 12, 11, 4, 3].map(runIdOf).sort());
  expect([...new Set((await versions(bucket)).map((version) => runOf(version.key)))].sort()).toEqual(byAction(rows, 'keep'));
});

test('a run that a kept run depends on (its manifest\'s dependsOn) is kept with it, saying why; the rest is decided as before', async () => {
  const bucket = await newBucket({});
  // Day 10 is kept (daily 7); it needs day 12, which the policy alone removes. Day 11 needs day 13, but day 11 goes itself.
  const bases: Record<number, number> = { 10: 12, 11: 13 };
  await Promise.all(Object.entries(HISTORY).map(async ([daysAgo, kind]) => {
    const base = bases[Number(daysAgo)];
    const run = buildRun(SOURCE, runIdOf(Number(daysAgo)), base === undefined ? {} : { dependsOn: [runIdOf(base)] });
    if (kind === 'interrupted') await put(s3, bucket, [...run.objects.keys()][0], 'partial');
    else await writeRun(s3, bucket, run, { verification: kind, offsite: kind === 'ok' });
  }));
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false });
  expect(byAction(rows, 'remove')).toEqual([13, 11, 4, 3].map(runIdOf).sort());
  expect(reasonOf(rows, runIdOf(12))).toBe(`needed by kept run ${runIdOf(10)}`);
  expect([...new Set((await versions(bucket)).map((version) => runOf(version.key)))].sort()).toEqual(byAction(rows, 'keep'));
});

test('a run the policy removes but its lock keeps keeps what it depends on: the base stays, saying which locked run needs it', async () => {
  const bucket = await newBucket();
  const plan: LockPlan = {
    // Day 11 is locked for another day (a longer retention when it was written); the rest as tier3.
    until: (runId, key) => (runId === runIdOf(11) ? NOW.getTime() + DAY_MS : tierLock(TIER3.retentionSeconds).until(runId, key)),
  };
  await writeHistory(bucket, HISTORY, plan, { 11: 12 });
  const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now: NOW, dryRun: false });
  expect(rows.find((row) => row.runId === runIdOf(11))?.action).toBe('skip-locked');
  expect(rows.find((row) => row.runId === runIdOf(12))).toMatchObject({ action: 'keep', reason: expect.stringContaining(`; kept: needed by locked run ${runIdOf(11)}`) });
  expect(byAction(rows, 'remove')).toEqual([runIdOf(13)]);
  const left = new Set((await versions(bucket)).map((version) => runOf(version.key)));
  expect(left.has(runIdOf(12))).toBe(true);
  expect(left.has(runIdOf(13))).toBe(false);
});
