/**
 * The WAL archive through an S3 outage, on real components (test/harness/pitr.ts): while the
 * host cannot reach S3, archive-push fails and PostgreSQL keeps the WAL in pg_wal, retrying;
 * the archive's age, read from the bucket alone as the watchdog reads it, grows past the
 * threshold (the RPO alarm's measure); when S3 answers again the backlog is pushed in order,
 * the age falls back, and no gap ever appears in the archive.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { archiveState, listArchivedSegments, restorableWindow } from '../../lib/pitr/archive-state';
import type { BackupSet } from '../../lib/pitr/pgbackrest';
import { walContinuity } from '../../lib/pitr/wal';
import { startPitrStack, type PitrStack } from '../harness/pitr';
import { delay } from '../harness/processes';

/** The threshold a tier would alarm at; small, so the test waits seconds. */
const ALARM_SECONDS = 4;

let stack: PitrStack;
let s3: S3Client;
let full: BackupSet;

const location = () => ({ s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza });
const archiver = async () => {
  const [failed, last] = (await stack.source.psql('SELECT failed_count, coalesce(last_archived_wal, \'\') FROM pg_stat_archiver')).trim().split('|');
  return { failed: Number(failed), last };
};

/** A few committed writes, each closing its segment, so there is WAL to archive. */
async function writeSegments(count: number): Promise<string> {
  let name = '';
  for (let i = 0; i < count; i++) {
    await stack.source.psql(`INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 2000) g;`, 'shop');
    name = (await stack.source.psql('SELECT pg_walfile_name(pg_switch_wal())')).trim();
  }
  return name;
}

beforeAll(async () => {
  // archive_timeout keeps an idle server archiving; S3 is read directly (s3.client()), never through the host's path.
  stack = await startPitrStack({ settings: { archive_timeout: '60' } });
  s3 = stack.s3.client();
  await stack.seed('CREATE TABLE orders (id int, item text);');
  full = await stack.runner.backup({ type: 'full' });
}, 180_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
});

test('an S3 outage: the archive ages past the alarm, the WAL waits on the host, and afterwards the archive catches up without a gap', async () => {
  const before = await archiveState(location(), new Date());
  expect(before.gaps).toEqual([]);
  expect(before.ageSeconds).toBeLessThan(ALARM_SECONDS);

  stack.front.outage(true);
  const failedBefore = (await archiver()).failed;
  const lastDuringOutage = await writeSegments(3);
  // The watchdog's measure, from the bucket: nothing new arrives while the host cannot push.
  let during = await archiveState(location(), new Date());
  const outageStarted = Date.now();
  while ((during.ageSeconds ?? 0) <= ALARM_SECONDS) {
    if (Date.now() - outageStarted > 30_000) throw new Error(`the archive's age stayed at ${during.ageSeconds} s during the outage`);
    await delay(250);
    during = await archiveState(location(), new Date());
  }
  expect(during.newest?.name).toBe(before.newest?.name);
  // PostgreSQL tried, failed (once archive-push gives up: pgBackRest's io-timeout), and keeps
  // the segments (archive_status .ready) to retry.
  while ((await archiver()).failed <= failedBefore) {
    if (Date.now() - outageStarted > 60_000) throw new Error('archive-push never failed during the outage');
    await delay(250);
  }
  const ready = (await stack.source.psql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")).trim();
  expect(Number(ready)).toBeGreaterThanOrEqual(3);

  stack.front.outage(false);
  // PostgreSQL retries on its own (every few seconds); the backlog goes in order.
  const deadline = Date.now() + 60_000;
  while ((await archiver()).last !== lastDuringOutage) {
    if (Date.now() > deadline) throw new Error(`the archive never caught up to ${lastDuringOutage} (archiver: ${JSON.stringify(await archiver())})`);
    await delay(250);
  }
  const after = await archiveState(location(), new Date());
  expect(after.gaps).toEqual([]);
  expect(after.newest?.name).toBe(lastDuringOutage);
  expect(after.ageSeconds).toBeLessThan(ALARM_SECONDS);
  const segments = await listArchivedSegments(location());
  expect(walContinuity(segments.map((segment) => segment.name), full.walStart, lastDuringOutage).complete).toBe(true);
  // The window: from the full's end to the newest segment, which arrived after the outage.
  const window = restorableWindow([full], segments);
  expect(window.earliest).toEqual(full.stopTime);
  expect(window.latest!.getTime()).toBeGreaterThan(outageStarted);
  expect(window.unrestorable).toEqual([]);
}, 120_000);
