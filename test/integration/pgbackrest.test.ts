/**
 * PostgreSQL point-in-time recovery with pgBackRest, on real components: PostgreSQL 15 archiving
 * its WAL with `pgbackrest archive-push`, pgBackRest 2.45 (lib/pitr/pgbackrest.ts) writing full,
 * incremental and differential backups to the local S3 server through a TLS front (pgBackRest
 * speaks HTTPS only), into a bucket created with Object Lock (hence versioned) and a default
 * GOVERNANCE retention, as Lifeboat's buckets are.
 *
 * Object Lock: S3 refuses a PutObject to such a bucket without Content-MD5 (or an x-amz-checksum-*
 * header). pgBackRest 2.45 sends Content-MD5 on every request with a body (storageS3RequestAsync
 * hashes the content), so it can write there; 2.55.0 dropped it and broke archive-push on such
 * buckets (pgbackrest/pgbackrest issue #2613), 2.55.1 reverted that (pull request #2615). The local
 * server does not enforce the rule (local/servers/s3-server.mjs: "Not emulated"), so the test
 * reads what pgBackRest sent through the front: every PUT carries Content-MD5.
 *
 * History: seed, full; rows, snapshot A; incremental; rows, snapshot B; differential; rows,
 * snapshot C. Restores to A's time (from the full), to B's (from the incremental: full + incr +
 * WAL) and to the latest WAL (from the differential), each into its own empty directory, started
 * and compared table by table with its snapshot; a time before the first backup is refused.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listArchivedSegments } from '../../lib/pitr/archive-state';
import { pgBackRest, type BackupSet } from '../../lib/pitr/pgbackrest';
import { planPitrRestore } from '../../lib/pitr/restore-plan';
import { pgTableDigests } from '../harness/digests';
import { delay, freePort } from '../harness/processes';
import { TEST_CREDENTIALS } from '../harness/s3';
import { startPitrStack, type PitrStack } from '../harness/pitr';

/**
 * The target the server's log says recovery started towards, as a time. PostgreSQL prints it
 * without trailing zeros (`15:56:48.5+00` for .500), so it is compared as a time, not as text.
 */
function recoveryTarget(log: string): Date | undefined {
  const match = /starting point-in-time recovery to (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\+00/.exec(log);
  return match ? new Date(`${match[1].replace(' ', 'T')}Z`) : undefined;
}

const DATABASE = 'shop';

interface Snapshot {
  readonly time: Date;
  readonly digests: Record<string, string>;
}

let stack: PitrStack;
/** Everything pgBackRest and the runner printed, and every error message: no key may be in it. */
const captured: string[] = [];
const sets: Record<'full' | 'incr' | 'diff', BackupSet> = {} as never;
const snapshots: Record<'F' | 'A' | 'B' | 'C', Snapshot> = {} as never;

let batch = 0;
/** A batch of rows in both tables, committed. */
async function insertRows(count: number): Promise<void> {
  batch++;
  await stack.source.psql(`INSERT INTO orders (batch, item, amount) SELECT ${batch}, 'item-' || g, g * ${batch} FROM generate_series(1, ${count}) g;
    INSERT INTO events (batch, payload) SELECT ${batch}, md5(g::text || '${batch}') FROM generate_series(1, ${Math.ceil(count / 2)}) g;`, DATABASE);
}

/**
 * The digests now, and a time just after every commit so far: the server's clock after a WAL
 * switch, rounded up to the millisecond; returns once the server's clock is past it, so the next
 * commit is later than the target and recovery to it stops right here.
 */
async function snapshot(): Promise<Snapshot> {
  const digests = await pgTableDigests(stack.source, DATABASE);
  await stack.source.psql('SELECT pg_switch_wal();');
  const micros = Number((await stack.source.psql("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")).trim());
  const time = new Date(Math.ceil(micros / 1000));
  while ((await stack.source.psql(`SELECT clock_timestamp() > to_timestamp(${time.getTime()} / 1000.0)`)).trim() !== 't') await delay(5);
  return { time, digests };
}

beforeAll(async () => {
  stack = await startPitrStack({ recordRequests: true, onLog: (line) => captured.push(line) });
  await stack.source.createDatabase(DATABASE);
  await stack.source.psql(`CREATE TABLE orders (id bigserial PRIMARY KEY, batch int NOT NULL, item text NOT NULL, amount numeric(12, 2) NOT NULL);
    CREATE TABLE events (id bigserial PRIMARY KEY, batch int NOT NULL, payload text);`, DATABASE);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

test('version() parses pgBackRest 2.45', async () => {
  expect(await stack.runner.version()).toEqual({ major: 2, minor: 45, text: 'pgBackRest 2.45' });
});

test('stanza-create, check, then full, incremental and differential backups between batches of rows', async () => {
  await stack.runner.stanzaCreate();
  await stack.runner.check();
  await insertRows(2000);
  snapshots.F = await snapshot();
  sets.full = await stack.runner.backup({ type: 'full' });
  await insertRows(300);
  snapshots.A = await snapshot();
  sets.incr = await stack.runner.backup({ type: 'incr' });
  await insertRows(300);
  snapshots.B = await snapshot();
  sets.diff = await stack.runner.backup({ type: 'diff' });
  await insertRows(300);
  snapshots.C = await snapshot();
  // The WAL after the differential reaches the stack.repository (check switches and waits for it).
  await stack.runner.check();

  expect(Object.values(snapshots.C.digests)).toHaveLength(2);
  expect(snapshots.A.digests).not.toEqual(snapshots.B.digests);
  expect(snapshots.B.digests).not.toEqual(snapshots.C.digests);
}, 180_000);

test('info() lists the three sets with their types, priors, times, LSNs, WAL and sizes, and the archive range', async () => {
  const info = await stack.runner.info();
  expect(info.status.code).toBe(0);
  expect(info.sets.map((s) => [s.label, s.type])).toEqual([[sets.full.label, 'full'], [sets.incr.label, 'incr'], [sets.diff.label, 'diff']]);
  const [full, incr, diff] = info.sets;
  expect(full.prior).toBeUndefined();
  expect(incr.prior).toBe(full.label);
  expect(diff.prior).toBe(full.label);
  expect(incr.references).toEqual([full.label]);
  expect(full.label).toMatch(/^\d{8}-\d{6}F$/);
  expect(incr.label).toMatch(new RegExp(`^${full.label}_\\d{8}-\\d{6}I$`));
  expect(diff.label).toMatch(new RegExp(`^${full.label}_\\d{8}-\\d{6}D$`));
  for (const set of info.sets) {
    expect(set.startTime.getTime()).toBeLessThanOrEqual(set.stopTime.getTime());
    expect(set.startLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(set.stopLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(set.walStart).toMatch(/^[0-9A-F]{24}$/);
    expect(set.walStop >= set.walStart).toBe(true);
    expect(set.size).toBeGreaterThan(0);
    expect(set.repoSize).toBeGreaterThan(0);
    expect(set.pgVersion).toBe('15');
    expect(set.checksumErrors).toBe(false);
  }
  // Sets are in time order; an incremental or differential copies a fraction of the full.
  expect(full.stopTime.getTime()).toBeLessThanOrEqual(snapshots.A.time.getTime());
  expect(incr.stopTime.getTime()).toBeLessThanOrEqual(snapshots.B.time.getTime());
  expect(incr.walStart > full.walStop).toBe(true);
  expect(incr.delta).toBeLessThan(full.delta);
  expect(diff.delta).toBeLessThan(full.delta);
  expect(info.archive).toHaveLength(1);
  expect(info.archive[0]).toMatchObject({ id: '15-1', pgVersion: '15' });
  expect(info.archive[0].min! <= full.walStart).toBe(true);
  expect(info.archive[0].max! >= diff.walStop).toBe(true);
  expect(info.systemId).toMatch(/^\d{10,20}$/);
});

test('restore to a time right after the full: the full set and its WAL give back snapshot A', async () => {
  const { server, set, log } = await stack.restoreAndStart('a', { time: snapshots.A.time });
  expect(set).toBe(sets.full.label);
  // Recovery stopped at the target (the next commit is later), not at the end of the WAL, and promoted.
  expect(recoveryTarget(log)).toEqual(snapshots.A.time);
  expect(log).toMatch(/recovery stopping before commit of transaction \d+/);
  expect(log).toContain('selected new timeline ID: 2');
  expect(await pgTableDigests(server, DATABASE)).toEqual(snapshots.A.digests);
}, 120_000);

test('restore to a time between the incremental and the differential: full + incremental + WAL give back snapshot B', async () => {
  const { server, set, log } = await stack.restoreAndStart('b', { time: snapshots.B.time });
  expect(set).toBe(sets.incr.label);
  expect(log).toMatch(/recovery stopping before commit of transaction \d+/);
  expect(await pgTableDigests(server, DATABASE)).toEqual(snapshots.B.digests);
}, 120_000);

test('restore of the full set alone (immediate: its consistent point, no WAL after it) gives back what it copied', async () => {
  const { server, set } = await stack.restoreAndStart('f', 'immediate', sets.full.label);
  expect(set).toBe(sets.full.label);
  expect(await pgTableDigests(server, DATABASE)).toEqual(snapshots.F.digests);
  expect(snapshots.F.digests).not.toEqual(snapshots.A.digests);
}, 120_000);

test('the plan of a restore to a point names the set the restore used, and refuses a target past the newest archived WAL, naming the window', async () => {
  const client = stack.s3.client();
  try {
    const segments = await listArchivedSegments({ s3: client, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza });
    const { sets: all } = await stack.runner.info();
    expect(planPitrRestore(all, segments, { time: snapshots.A.time }).plan?.set.label).toBe(sets.full.label);
    expect(planPitrRestore(all, segments, { time: snapshots.B.time }).plan?.set.label).toBe(sets.incr.label);
    const latest = planPitrRestore(all, segments, 'latest').plan;
    expect(latest).toMatchObject({ set: { label: sets.diff.label }, wal: { from: sets.diff.walStart } });
    expect(latest!.wal.segments).toBeGreaterThanOrEqual(1);
    const future = new Date(Date.now() + 3_600_000);
    expect(planPitrRestore(all, segments, { time: future }).problem).toMatch(
      new RegExp(`^target ${future.toISOString().replace(/\./g, '\\.')} is after the newest archived WAL \\(.+\\): a restore would stop there, short of the target \\(the window is ${sets.full.stopTime.toISOString().replace(/\./g, '\\.')} to `));
  } finally {
    client.destroy();
  }
}, 60_000);

test('restore to the latest WAL: the differential and every WAL after it give back snapshot C', async () => {
  const { server } = await stack.restoreAndStart('c', 'latest');
  expect(await pgTableDigests(server, DATABASE)).toEqual(snapshots.C.digests);
  // The copy was restored with archive_mode=off: it pushes nothing into the stack.source's stack.repository.
  expect((await server.psql('SHOW archive_mode')).trim()).toBe('off');
}, 120_000);

test('a target before the first backup is refused before anything is written', async () => {
  const dataDir = join(stack.work, 'restore-d');
  const before = new Date(sets.full.startTime.getTime() - 60_000);
  const error = await stack.runner.restore({ dataDir, target: { time: before } }).catch((err: Error) => err);
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).name).toBe('InvalidInput');
  expect((error as Error).message).toMatch(new RegExp(`is before the first backup: the earliest set \\(${sets.full.label}\\) stopped at`));
  captured.push((error as Error).message);
  // A named set that stopped after the target is refused too.
  const named = await stack.runner.restore({ dataDir, target: { time: before }, set: sets.full.label }).catch((err: Error) => err);
  expect((named as Error).name).toBe('InvalidInput');
  captured.push((named as Error).message);
  expect(() => readdirSync(dataDir)).toThrow(/ENOENT/);
});

test('an unreachable repository is HostUnreachable, and a missing client ClientNotFound', async () => {
  const closedPort = await freePort();
  const unreachable = pgBackRest(stack.options({
    repository: { ...stack.repository, port: closedPort },
    workDir: join(stack.work, 'pgbackrest-unreachable'),
    timeouts: { io: 1, db: 1, protocol: 2 },
  }));
  const error = await unreachable.info().catch((err: Error) => err);
  expect((error as Error).name).toBe('HostUnreachable');
  expect((error as Error).message).toMatch(/HostConnectError.*Connection refused/);
  captured.push((error as Error).message);

  const missing = pgBackRest(stack.options({ command: join(stack.work, 'no-such-pgbackrest'), workDir: join(stack.work, 'pgbackrest-missing') }));
  await expect(missing.version()).rejects.toMatchObject({ name: 'ClientNotFound' });
}, 60_000);

test('pgBackRest sent Content-MD5 with every PUT (what S3 requires with Object Lock)', () => {
  const puts = stack.front.requests.filter((r) => r.method === 'PUT');
  expect(stack.front.unparsed).toBe(0);
  expect(puts.length).toBeGreaterThan(100);
  expect(puts.filter((r) => !r.headers['content-md5'])).toEqual([]);
  // The repository's objects went where the options said: /<bucket>/pitr/<stanza>/…
  expect(puts.every((r) => r.path.startsWith(`/${stack.bucket}/pitr/${stack.stanza}/`))).toBe(true);
});

test('the S3 keys appear in no output, config, log or server setting', async () => {
  // The runner's own output is redacted besides (a second line of defence); the servers' logs,
  // where archive-push and archive-get print, and their settings are read raw.
  const texts = [
    ...captured,
    readFileSync(stack.runner.configFile, 'utf8'),
    readFileSync(stack.source.logPath, 'utf8'),
    ...stack.restored.map((server) => readFileSync(server.logPath, 'utf8')),
    ...stack.restored.map((server) => readFileSync(join(server.dataDir, 'postgresql.auto.conf'), 'utf8')),
    await stack.source.psql('SHOW archive_command'),
    ...(await Promise.all(stack.restored.map((server) => server.psql('SHOW restore_command')))),
  ];
  expect(captured.length).toBeGreaterThan(20);
  expect(stack.restored).toHaveLength(4);
  for (const text of texts) {
    expect(text).not.toContain(TEST_CREDENTIALS.accessKeyId);
    expect(text).not.toContain(TEST_CREDENTIALS.secretAccessKey);
  }
});
