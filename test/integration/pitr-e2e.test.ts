/**
 * Point-in-time recovery end to end under load (issue 13, acceptance 1), on real components:
 * PostgreSQL 15, pgBackRest 2.45 and the local S3 server (test/harness/pitr.ts). A full, then
 * pgbench appending rows from four clients while an incremental and a differential are taken,
 * then more load; then restores to five targets: right after the full, between the incremental
 * and the differential, a random second of the load, the latest WAL, and a time before the
 * window (refused, naming it).
 *
 * What the source held at a target under load is known exactly: with track_commit_timestamp,
 * the rows committed at or before it (pg_xact_commit_timestamp(xmin) <= target), which is what
 * recovery to that time replays (recovery_target_inclusive). The other tables are not written
 * during the load.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listArchivedSegments } from '../../lib/pitr/archive-state';
import type { BackupSet } from '../../lib/pitr/pgbackrest';
import { planPitrRestore } from '../../lib/pitr/restore-plan';
import { pgTableDigests } from '../harness/digests';
import { defaultPgBinDir } from '../harness/postgres';
import { delay, run } from '../harness/processes';
import { startPitrStack, type PitrStack } from '../harness/pitr';
import { prng } from '../fixtures/prng';

const DATABASE = 'shop';
const EVENTS = 'public.events';

let stack: PitrStack;
let full: BackupSet;
let incr: BackupSet;
let diff: BackupSet;
/** The digests right after the full (nothing written between), and at the end of the load. */
let afterFull: Record<string, string>;
let atEnd: Record<string, string>;
let loadStarted: Date;
let loadEnded: Date;

/** The events table's digest as of `time`: the rows committed at or before it. */
async function eventsAt(time: Date): Promise<string> {
  return (await stack.source.psql(`SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))
    FROM ONLY ${EVENTS} t WHERE pg_xact_commit_timestamp(t.xmin) <= '${time.toISOString()}'::timestamptz`, DATABASE)).trim();
}

/** pgbench appending events from 4 clients for `seconds`. */
function load(seconds: number) {
  const script = join(stack.work, 'append.sql');
  writeFileSync(script, "INSERT INTO events (client, payload) VALUES (:client_id, md5(random()::text));\n");
  return run(join(defaultPgBinDir(), 'pgbench'), ['-n', '-c', '4', '-j', '2', '-T', String(seconds), '-f', script, DATABASE], { env: { ...process.env, ...stack.source.env } })
    .then((result) => {
      if (result.code !== 0) throw new Error(`pgbench failed: ${result.stderr}`);
      return result;
    });
}

const serverNow = async () => new Date(Number((await stack.source.psql("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")).trim()));

beforeAll(async () => {
  stack = await startPitrStack({ settings: { track_commit_timestamp: 'on', archive_timeout: '60' } });
  await stack.source.createDatabase(DATABASE);
  const init = await run(join(defaultPgBinDir(), 'pgbench'), ['-i', '-q', '-s', '2', DATABASE], { env: { ...process.env, ...stack.source.env } });
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  await stack.source.psql('CREATE TABLE events (id bigserial PRIMARY KEY, client int NOT NULL, payload text NOT NULL);', DATABASE);
  await stack.runner.stanzaCreate();
  await stack.runner.check();

  full = await stack.runner.backup({ type: 'full' });
  afterFull = await pgTableDigests(stack.source, DATABASE);
  // The load starts a little after the full, so "right after the full" is a time before any of its commits.
  await delay(1500);
  loadStarted = await serverNow();
  const running = load(14);
  await delay(3000);
  incr = await stack.runner.backup({ type: 'incr' });
  await delay(3000);
  diff = await stack.runner.backup({ type: 'diff' });
  await running;
  loadEnded = await serverNow();
  await stack.source.psql('SELECT pg_switch_wal();');
  await stack.runner.check();
  atEnd = await pgTableDigests(stack.source, DATABASE);
}, 240_000);

afterAll(async () => {
  await stack?.stop();
});

/** Restores to `target` and compares every table with what the source held then. */
async function restoredEquals(name: string, target: { time: Date } | 'latest', expected: Record<string, string>) {
  const { server } = await stack.restoreAndStart(name, target);
  expect(await pgTableDigests(server, DATABASE)).toEqual(expected);
  await server.stop();
}

test('the history: a full, then an incremental and a differential under load, each on the full', () => {
  expect([full.type, incr.type, diff.type]).toEqual(['full', 'incr', 'diff']);
  expect(incr.prior).toBe(full.label);
  expect(diff.prior).toBe(full.label);
  expect(Number(atEnd[EVENTS].split(' ')[0])).toBeGreaterThan(1000);
});

test('restore to right after the full: nothing of the load', async () => {
  const target = new Date(full.stopTime.getTime() + 1000);
  expect(target.getTime()).toBeLessThan(loadStarted.getTime());
  expect(afterFull[EVENTS]).toBe('0 d41d8cd98f00b204e9800998ecf8427e');
  await restoredEquals('after-full', { time: target }, afterFull);
}, 120_000);

test('restore to a time between the incremental and the differential: the rows committed by then', async () => {
  const target = new Date((incr.stopTime.getTime() + diff.startTime.getTime()) / 2);
  const expected = { ...atEnd, [EVENTS]: await eventsAt(target) };
  expect(expected[EVENTS]).not.toBe(atEnd[EVENTS]);
  await restoredEquals('between', { time: target }, expected);
}, 120_000);

/** The random second's seed: printed in the test's name, set with LIFEBOAT_TEST_SEED to replay a run. */
const SEED = Number(process.env.LIFEBOAT_TEST_SEED ?? Date.now() % 100_000);

test(`restore to a random second of the load (seed ${SEED}): the rows committed by then`, async () => {
  const random = prng(SEED);
  // Clear of each set's stop second: a set's stop time is kept to the second.
  const candidates = Array.from({ length: 200 }, () => new Date(loadStarted.getTime() + 500 + random() * (loadEnded.getTime() - loadStarted.getTime() - 1000)))
    .filter((time) => [incr, diff].every((set) => Math.abs(time.getTime() - set.stopTime.getTime()) > 1500));
  const target = candidates[0];
  const expected = { ...atEnd, [EVENTS]: await eventsAt(target) };
  const rows = Number(expected[EVENTS].split(' ')[0]);
  expect(rows).toBeGreaterThan(0);
  expect(rows).toBeLessThan(Number(atEnd[EVENTS].split(' ')[0]));
  await restoredEquals('random', { time: target }, expected);
}, 120_000);

test('restore to the latest WAL: everything', async () => {
  await restoredEquals('latest', 'latest', atEnd);
}, 120_000);

test('a time before the window is refused by the plan and by the restore, naming the window', async () => {
  const before = new Date(full.startTime.getTime() - 60_000);
  const client = stack.s3.client();
  try {
    const segments = await listArchivedSegments({ s3: client, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza });
    const { sets } = await stack.runner.info();
    expect(planPitrRestore(sets, segments, { time: before }).problem).toContain(`is before the restorable window (the window is ${full.stopTime.toISOString()} to `);
  } finally {
    client.destroy();
  }
  await expect(stack.runner.restore({ dataDir: join(stack.work, 'restore-before'), target: { time: before } })).rejects.toMatchObject({ name: 'InvalidInput' });
}, 60_000);
