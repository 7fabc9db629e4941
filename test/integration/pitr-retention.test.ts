/**
 * Lifeboat's retention applied to a real pgBackRest repository (lib/pitr/retention.ts, the
 * runner's expire), on real components (test/harness/pitr.ts): two chains (a full and an
 * incremental each); a policy keeping the newest two sets keeps the second chain and expires
 * the first — the incremental before its full — and the WAL only the first needed; the kept
 * incremental still verifies and restores to the latest WAL.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { listArchivedSegments } from '../../lib/pitr/archive-state';
import type { BackupSet } from '../../lib/pitr/pgbackrest';
import { decidePitrRetention } from '../../lib/pitr/retention';
import { verifySet } from '../../lib/pitr/verify-set';
import { parseSegment } from '../../lib/pitr/wal';
import type { RetentionPolicy } from '../../lib/retention/policy';
import { pgTableDigests } from '../harness/digests';
import { delay } from '../harness/processes';
import { startPitrStack, type PitrStack } from '../harness/pitr';

const POLICY: RetentionPolicy = { keepWithinSeconds: 0, keepLast: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0, minVerified: 1, failedGraceSeconds: 0 };

let stack: PitrStack;
let s3: S3Client;
const sets: BackupSet[] = [];

async function write(from: number): Promise<void> {
  await stack.source.psql(`INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(${from}, ${from + 999}) g; SELECT pg_switch_wal();`, 'shop');
}

beforeAll(async () => {
  stack = await startPitrStack();
  s3 = stack.s3.client();
  await stack.seed('CREATE TABLE orders (id int, item text);');
  for (const [index, type] of (['full', 'incr', 'full', 'incr'] as const).entries()) {
    await write(index * 1000);
    sets.push(await stack.runner.backup({ type }));
    // Sets are runs at their start second: one second apart at least.
    await delay(1100);
  }
  await write(10_000);
  await stack.runner.check();
}, 240_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
});

test('the first chain expires, incremental first; the second chain and its WAL stay, verify and restore', async () => {
  const [full1, incr1, full2, incr2] = sets;
  const listed = (await stack.runner.info()).sets;
  const location = { s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza };
  // Each set's verdict, as the PITR Verify step gives it.
  const statuses = Object.fromEntries(await Promise.all(listed.map(async (set) =>
    [set.label, (await verifySet({ ...location, runner: stack.runner, set })).verdict === 'ok' ? 'verified' as const : 'failed' as const])));
  expect(Object.values(statuses)).toEqual(['verified', 'verified', 'verified', 'verified']);
  const decision = decidePitrRetention(listed, statuses, POLICY, new Date());
  expect(decision.keep.map((entry) => entry.set)).toEqual([incr2.label, full2.label]);
  expect(decision.expire).toEqual({ sets: [incr1.label, full1.label], archiveFulls: 1 });

  const oldestBefore = (await listArchivedSegments(location))[0].name;
  await stack.runner.expire(decision.expire);

  expect((await stack.runner.info()).sets.map((set) => set.label)).toEqual([full2.label, incr2.label]);
  const oldestAfter = (await listArchivedSegments(location))[0].name;
  expect(parseSegment(oldestAfter).number).toBeGreaterThan(parseSegment(oldestBefore).number);
  expect(parseSegment(oldestAfter).number).toBeLessThanOrEqual(parseSegment(full2.walStart).number);

  const verdict = await verifySet({ ...location, runner: stack.runner, set: incr2 });
  expect(verdict).toMatchObject({ verdict: 'ok', findings: [] });
  const atEnd = await pgTableDigests(stack.source, 'shop');
  const { server } = await stack.restoreAndStart('latest', 'latest');
  expect(await pgTableDigests(server, 'shop')).toEqual(atEnd);
}, 180_000);

test('an expire of something that is not a set label is refused before pgBackRest runs', async () => {
  await expect(stack.runner.expire({ sets: ['--repo1-retention-full=1'] })).rejects.toMatchObject({ name: 'InvalidInput' });
  await expect(stack.runner.expire({ sets: [], archiveFulls: 0 })).rejects.toMatchObject({ name: 'InvalidInput' });
});
