/**
 * Retention over a generated 100-day history of a tier3 source (7-day retention, daily at 03:00
 * UTC): 40 days of verified runs, then a 60-day outage in which every run that leaves anything
 * behind fails (a failed verdict, or an interrupted upload; on some days the dump fails before
 * writing anything). It reproduces the scenario class of "the held-out history of 43 runs over
 * 100 days" from issue 10 (defect 7): the offsite bucket's lifecycle expired the source's last
 * good copy 14 days into such an outage while the primary still kept it.
 *
 * The history is written into a primary and an offsite bucket (the same objects; replication is
 * not under test), every object under its run's Object Lock (COMPLIANCE, retain-until = slot +
 * 7 days), and the real pruneSource runs on each bucket every simulated day at 04:00 with that
 * day as its `now`. After every day, in both buckets: the newest 3 verified runs are there and
 * still verified in the catalog; failed and unverified runs count toward no keep; nothing still
 * locked on that day is deleted; every run is there whole or gone completely (no version, no
 * delete marker); both buckets decide alike.
 *
 * The server's clock follows the simulated day. S3, and the local server, take no retain-until
 * date in the past and refuse deletes by their own clock: written at the real time, a run's lock
 * (slot + 7 days) could not be written for any but the last week of the history. So the server
 * is started with Date moved to the simulated time (a preload through NODE_OPTIONS, read from a
 * file the test writes): each run is written at its slot with its real lock, and the server
 * refuses a delete exactly while that lock holds on the simulated day, as the pruner's `now` says.
 */
import { ListObjectVersionsCommand, type PutObjectCommandInput, type S3Client } from '@aws-sdk/client-s3';
import { readRun } from '../../lib/catalog/catalog';
import { formatRunId } from '../../lib/domain/run-id';
import { decide, policyForTier } from '../../lib/retention/policy';
import { pruneSource, type DecisionRow } from '../../lib/retention/prune';
import { buildRun, put, writeRun } from '../fixtures/runs';
import { startS3 } from '../harness/s3';
import { prng } from '../fixtures/prng';

const DAY_MS = 86_400_000;
const SOURCE = 'logs';
const TIER3 = { scheduleSeconds: 86_400, retentionSeconds: 7 * 86_400 };
const POLICY = policyForTier(TIER3);
const LOCK_MS = TIER3.retentionSeconds * 1000;
/** Day 0's slot; day 99 is 2026-11-26. */
const START = Date.UTC(2026, 7, 19, 3);
const DAYS = 100;
const OUTAGE_FROM = 40;
const BUCKETS = ['primary', 'offsite'] as const;

type Kind = 'verified' | 'failed' | 'interrupted';
interface PlannedRun {
  readonly day: number;
  readonly runId: string;
  readonly kind: Kind;
  readonly lockEnd: number;
}


function generateHistory(seed: number): PlannedRun[] {
  const random = prng(seed);
  const runs: PlannedRun[] = [];
  for (let day = 0; day < DAYS; day++) {
    let kind: Kind | undefined = 'verified';
    if (day >= OUTAGE_FROM) {
      const roll = random();
      kind = roll < 0.55 ? 'failed' : roll < 0.75 ? 'interrupted' : undefined;
    }
    if (kind) runs.push({ day, runId: formatRunId(new Date(START + day * DAY_MS)), kind, lockEnd: START + day * DAY_MS + LOCK_MS });
  }
  return runs;
}

const HISTORY = generateHistory(43);
const byRunId = new Map(HISTORY.map((run) => [run.runId, run]));


/** Moves the server's clock to `at` (it runs on from there). */
const setServerClock = (at: number) => server.setClock(at);

let server: Awaited<ReturnType<typeof startS3>>;
let s3: S3Client;
/** Writes with each run's lock, as the worker and Commit do. */
let writer: S3Client;

beforeAll(async () => {
  server = await startS3({ clock: START });
  s3 = server.client();
  writer = server.client();
  writer.middlewareStack.add((next, context) => async (args) => {
    if (context.commandName === 'PutObjectCommand') {
      const input = args.input as PutObjectCommandInput;
      const run = byRunId.get((input.Key as string).split('/')[2]) as PlannedRun;
      Object.assign(input, { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(run.lockEnd) });
    }
    return next(args);
  }, { step: 'initialize', name: 'runObjectLock' });
  for (const bucket of BUCKETS) await server.createBucket(bucket, { objectLock: true });
});

afterAll(async () => {
  s3?.destroy();
  writer?.destroy();
  await server?.stop();
});

/** The run as the worker and Commit leave it, the same bytes in both buckets; returns its keys. */
async function writePlannedRun(bucket: string, run: PlannedRun): Promise<void> {
  const files = buildRun(SOURCE, run.runId);
  if (run.kind === 'interrupted') await put(writer, bucket, [...files.objects.keys()][0], 'partial');
  else await writeRun(writer, bucket, files, { verification: run.kind === 'verified' ? 'ok' : 'failed', offsite: run.kind === 'verified' });
}

interface Version { key: string; versionId: string; deleteMarker: boolean }

async function versions(bucket: string): Promise<Version[]> {
  const all: Version[] = [];
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'runs/', KeyMarker, VersionIdMarker }));
    all.push(...(page.Versions ?? []).map((v) => ({ key: v.Key as string, versionId: v.VersionId as string, deleteMarker: false })));
    all.push(...(page.DeleteMarkers ?? []).map((m) => ({ key: m.Key as string, versionId: m.VersionId as string, deleteMarker: true })));
    if (!page.IsTruncated) return all;
    [KeyMarker, VersionIdMarker] = [page.NextKeyMarker, page.NextVersionIdMarker];
  }
}

const runOf = (key: string) => key.split('/')[2];
const iso = (ms: number) => new Date(ms).toISOString();

test('100 days, 60 of them an outage: both buckets keep the newest verified runs, delete nothing locked, and leave nothing of what they remove', async () => {
  /** Per bucket and run: the keys written (one version each). */
  const written = new Map(BUCKETS.map((bucket) => [bucket, new Map<string, string[]>()]));
  const removedEver = new Map(BUCKETS.map((bucket) => [bucket, new Set<string>()]));
  let lockedKept = 0;

  for (let day = 0; day < DAYS; day++) {
    const slot = START + day * DAY_MS;
    const run = HISTORY.find((candidate) => candidate.day === day);
    if (run) {
      setServerClock(slot + 10 * 60_000);
      await Promise.all(BUCKETS.map(async (bucket) => {
        await writePlannedRun(bucket, run);
        written.get(bucket)?.set(run.runId, (await versions(bucket)).filter((version) => runOf(version.key) === run.runId).map((version) => version.key).sort());
      }));
    }
    const now = new Date(slot + 3_600_000);
    setServerClock(now.getTime());
    const planned = HISTORY.filter((candidate) => candidate.day <= day);
    const verified = planned.filter((candidate) => candidate.kind === 'verified');

    const decided: Record<string, DecisionRow[]> = {};
    // The two buckets one beside the other, as their two pruners run.
    await Promise.all(BUCKETS.map(async (bucket) => {
      const where = `day ${day} (${iso(now.getTime())}), ${bucket}`;
      const rows = await pruneSource({ s3, bucket, source: SOURCE, policy: POLICY, now, dryRun: false });
      decided[bucket] = rows;
      const left = await versions(bucket);

      // The newest verified runs (the policy's minVerified) are there, and still verified in the catalog.
      for (const kept of verified.slice(-POLICY.minVerified)) {
        expect([where, kept.runId, (await readRun(s3, bucket, SOURCE, kept.runId)).status]).toEqual([where, kept.runId, 'verified']);
      }

      // Failed and unverified runs count toward no keep: kept only by their grace, and the verified
      // runs kept are exactly those the policy keeps when they are alone.
      for (const row of rows.filter((candidate) => candidate.status !== 'verified' && candidate.action === 'keep')) {
        expect([where, row.runId, row.reason]).toEqual([where, row.runId, `${row.status} but younger than the 2d grace`]);
      }
      const verifiedRows = rows.filter((row) => row.status === 'verified');
      const alone = decide(verifiedRows.map(({ runId }) => ({ runId, status: 'verified' as const })), POLICY, now);
      expect([where, verifiedRows.filter((row) => row.action === 'keep').map((row) => row.runId)]).toEqual([where, alone.keep.map((d) => d.runId)]);

      // Nothing locked on this day is deleted; a run the policy removes while locked says until when.
      for (const row of rows) {
        const lockEnd = byRunId.get(row.runId)?.lockEnd as number;
        if (row.action === 'remove') expect([where, row.runId, lockEnd <= now.getTime()]).toEqual([where, row.runId, true]);
        if (row.action === 'skip-locked') {
          lockedKept++;
          expect([where, row.runId, lockEnd > now.getTime(), row.reason]).toEqual([where, row.runId, true, expect.stringContaining(`; kept: locked until ${iso(lockEnd)} (`)]);
        }
        if (row.action === 'remove') removedEver.get(bucket)?.add(row.runId);
      }

      // Every run written is there whole (each key once, nothing deleted) or gone completely.
      expect([where, left.filter((version) => version.deleteMarker)]).toEqual([where, []]);
      for (const [runId, keys] of written.get(bucket) ?? []) {
        const present = left.filter((version) => runOf(version.key) === runId).map((version) => version.key).sort();
        const removed = removedEver.get(bucket)?.has(runId);
        expect([where, runId, present]).toEqual([where, runId, removed ? [] : keys]);
        // What is locked today is there.
        if ((byRunId.get(runId)?.lockEnd as number) > now.getTime()) expect([where, runId, present.length]).toEqual([where, runId, keys.length]);
      }
    }));
    // The offsite copy is pruned by the same policy from its own catalog: the same decisions.
    expect([day, decided.offsite]).toEqual([day, decided.primary]);
  }

  // After 60 days of outage: the verified runs of the last 7 days that had one (days 33–39, the
  // newest 3 among them) in both buckets, and the failures still locked (days 93–99).
  const expected = HISTORY.filter((run) => (run.kind === 'verified' && run.day >= 33) || (run.kind !== 'verified' && run.day >= 93)).map((run) => run.runId);
  for (const bucket of BUCKETS) {
    expect([bucket, [...new Set((await versions(bucket)).map((version) => runOf(version.key)))].sort()]).toEqual([bucket, expected.sort()]);
    expect([bucket, removedEver.get(bucket)?.size]).toEqual([bucket, HISTORY.length - expected.length]);
  }
  // The history exercised what it is about: runs the policy removed while still locked.
  expect(lockedKept).toBeGreaterThan(50);
  expect(HISTORY.filter((run) => run.kind !== 'verified').length).toBeGreaterThan(30);
  // 100 simulated days against a real S3 server, each pruning two buckets: 58.6 s in a full
  // suite here (two workers), over jest's 60 s in CI under the same suite's load. The time is the
  // server round trips of the history, not waiting; 180 s leaves it room without hiding a hang.
}, 180_000);
