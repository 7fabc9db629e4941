/**
 * Point-in-time recovery of MariaDB end to end, with the real components: a MariaDB 10.11
 * source writing its binary log (small rotation size), the real worker's dump (which records
 * each database's binlog coordinates) judged by the real verifier, the archiver running every
 * few seconds while the source takes inserts, updates and deletes for a few minutes, then
 * `lifeboat restore SOURCE --at …` into fresh servers to five targets: right after the dump, a
 * random second, the end of a rotated file, latest, and before the window (refused). Each
 * restore equals a snapshot of the source taken at that target (counts and ordered digests
 * per table).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { verificationKey } from '../../lib/domain/layout';
import { serializeVerification } from '../../lib/domain/verification';
import { verifyRun } from '../../lib/verify/verify-run';
import { restoreCommand } from '../../cli/restore';
import { runBinlogArchiveJob, type BinlogArchiveJob } from '../../worker/binlog-archive-main';
import { runBackup } from '../../worker/run-backup';
import { mariaDbTableDigests } from '../harness/digests';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startS3, type S3Server } from '../harness/s3';
import { prng } from '../fixtures/prng';

const BUCKET = 'binlog-e2e';
const SOURCE = 'shop';
const DATABASES = ['shop', 'ledger'];
/** How long the source takes writes with the archiver running. */
const WRITE_SECONDS = Number(process.env.LIFEBOAT_BINLOG_E2E_SECONDS ?? 150);
const ARCHIVE_EVERY_MS = 5_000;

jest.setTimeout((WRITE_SECONDS + 300) * 1000);

let s3: S3Server;
let client: S3Client;
let source: MariaDbServer;
const random = prng(Number(process.env.LIFEBOAT_TEST_SEED ?? 15));

beforeAll(async () => {
  [s3, source] = await Promise.all([startS3(), startMariaDb({ binlog: { maxSize: 64 * 1024 } })]);
  client = s3.client();
  await s3.createBucket(BUCKET, { objectLock: true });
  await source.sql(`
    CREATE DATABASE shop; CREATE DATABASE ledger;
    CREATE TABLE shop.orders (id INT PRIMARY KEY, status VARCHAR(20), total DECIMAL(12,2), note TEXT) ENGINE=InnoDB;
    CREATE TABLE shop.customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100), visits INT) ENGINE=InnoDB;
    CREATE TABLE ledger.entries (id BIGINT AUTO_INCREMENT PRIMARY KEY, account INT, amount DECIMAL(12,2), at DATETIME(6)) ENGINE=InnoDB;
  `);
  await writeBatch(200);
}, 120_000);

afterAll(async () => {
  client?.destroy();
  await Promise.all([s3?.stop(), source?.stop()]);
});

let nextOrder = 1;

/** Inserts, updates and deletes across both databases, in one transaction per table. */
async function writeBatch(rows: number): Promise<void> {
  const orders = Array.from({ length: rows }, () => `(${nextOrder++}, 'new', ${(random() * 1000).toFixed(2)}, REPEAT('o', ${Math.floor(random() * 300)}))`);
  const customers = Array.from({ length: Math.ceil(rows / 4) }, (_, i) => `('customer ${nextOrder}-${i}', 0)`);
  const entries = Array.from({ length: rows }, () => `(${Math.floor(random() * 50)}, ${(random() * 200 - 100).toFixed(2)}, NOW(6))`);
  const victim = Math.max(1, Math.floor(random() * nextOrder));
  await source.sql(`
    INSERT INTO shop.orders VALUES ${orders.join(',')};
    INSERT INTO shop.customers (name, visits) VALUES ${customers.join(',')};
    UPDATE shop.orders SET status = 'paid', total = total + 1 WHERE id % 7 = ${Math.floor(random() * 7)} AND status = 'new';
    UPDATE shop.customers SET visits = visits + 1 WHERE id % 5 = ${Math.floor(random() * 5)};
    DELETE FROM shop.orders WHERE id BETWEEN ${victim} AND ${victim + 2};
    INSERT INTO ledger.entries (account, amount, at) VALUES ${entries.join(',')};
    DELETE FROM ledger.entries WHERE account = ${Math.floor(random() * 50)} AND amount < -90;
  `);
}

function archiveJob(): BinlogArchiveJob {
  return {
    source: SOURCE, engine: 'mariadb', binlogClient: 'mariadb-binlog',
    connection: { host: source.host, port: source.port, username: 'root', tls: { mode: 'disable' } },
    bucket: BUCKET, region: 'us-east-1', objectLock: { mode: 'GOVERNANCE', retentionSeconds: 86_400 }, minServerRetentionSeconds: 60,
  };
}

let archiveRuns = 0;
async function archiveOnce(): Promise<void> {
  // The archiver names its run after the second it starts: runs are at least a second apart.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const outcome = await runBinlogArchiveJob(archiveJob(), { s3: client, log: () => undefined });
  if (outcome.code !== 0) throw new Error(`archiver run failed: ${outcome.error?.name}: ${outcome.error?.message}`);
  archiveRuns += 1;
}

interface Snapshot {
  readonly label: string;
  /** The whole second after the last write before the snapshot, when no write happened until after the snapshot. */
  readonly at: Date;
  readonly digests: Record<string, string>;
}

/**
 * With writes paused: waits for the next whole second (every event so far has an earlier
 * timestamp), reads the digests; writes resume only after this, so every later event is at or
 * after `at` (the binary log's resolution is a second).
 */
async function snapshot(label: string, before?: () => Promise<void>): Promise<Snapshot> {
  if (before) await before();
  const at = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
  await new Promise((resolve) => setTimeout(resolve, at.getTime() - Date.now() + 50));
  return { label, at, digests: await mariaDbTableDigests(source, DATABASES) };
}

async function restoreTo(at: string): Promise<{ code: number; out: string; err: string; digests?: Record<string, string> }> {
  const target = await startMariaDb();
  try {
    const out: string[] = [];
    let err = '';
    const code = await restoreCommand(
      [SOURCE, '--target-url', `mariadb://root@127.0.0.1:${target.port}?sslmode=disable`, '--at', at, '--bucket', BUCKET],
      {},
      { s3: client, log: (line) => out.push(line), stderr: { write: (text: string) => (err += text) } },
    );
    return { code, out: out.join('\n'), err, ...(code === 0 ? { digests: await mariaDbTableDigests(target, DATABASES) } : {}) };
  } finally {
    await target.stop();
  }
}

test('a dump, a few minutes of writes archived every few seconds, restored to five targets: each equals the source at that moment', async () => {
  // 1. The full dump, by the real worker, verified by the real verifier.
  const dumpStartedAt = new Date();
  const runId = '20261204T000000Z';
  const manifest = await runBackup({
    source: SOURCE, engine: 'mariadb', tier: 'tier1', runId, bucket: BUCKET,
    target: { host: source.host, port: source.port, databases: DATABASES, username: 'root', tls: { mode: 'disable' } },
    objectLockMode: 'GOVERNANCE', retentionSeconds: 86_400, excludeTables: [], binlogCoordinates: true,
  }, { s3: client, log: () => undefined });
  for (const artifact of manifest.artifacts) expect(artifact.binlog).toMatchObject({ file: expect.stringMatching(/^binlog\.\d{6}$/), position: expect.any(Number), gtid: expect.stringMatching(/^0-1-\d+$/) });
  const verification = await verifyRun({ s3: client, bucket: BUCKET, source: SOURCE, runId, verifiedBy: 'lambda' });
  expect(verification.verdict).toBe('ok');
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: verificationKey(SOURCE, runId), Body: serializeVerification(verification) }));

  // 2. Writes with the archiver running; snapshots at pauses.
  const snapshots: Snapshot[] = [];
  snapshots.push(await snapshot('right after the dump'));
  let writing = true;
  let paused: Promise<void> = Promise.resolve();
  let resume: () => void = () => undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const writer = (async () => {
    while (writing) {
      await paused;
      if (!writing) break;
      inFlight = writeBatch(20 + Math.floor(random() * 60));
      await inFlight;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const archiver = (async () => {
    while (writing) {
      await new Promise((resolve) => setTimeout(resolve, ARCHIVE_EVERY_MS));
      await archiveOnce();
    }
  })();
  /** Pauses the writer (its batch in flight ends first), runs `during`, resumes. */
  const pausedSnapshot = async (label: string, during?: () => Promise<void>): Promise<Snapshot> => {
    paused = new Promise<void>((resolve) => (resume = resolve));
    // The batch in flight ends; the writer then waits on `paused`.
    await inFlight;
    const taken = await snapshot(label, during);
    resume();
    return taken;
  };
  const deadline = Date.now() + WRITE_SECONDS * 1000;
  const randomPoints = [0.2, 0.45, 0.7].map((fraction) => dumpStartedAt.getTime() + fraction * WRITE_SECONDS * 1000 + random() * 5_000);
  const rotatedAt = dumpStartedAt.getTime() + 0.55 * WRITE_SECONDS * 1000;
  let rotated: Snapshot | undefined;
  let rotatedFile = '';
  while (Date.now() < deadline) {
    const next = randomPoints.find((point) => point > Date.now());
    if (!rotated && Date.now() >= rotatedAt) {
      rotated = await pausedSnapshot('the end of a rotated file', async () => {
        rotatedFile = ((await source.sql('SHOW MASTER STATUS;')).split('\t')[0] as string);
        await source.sql('FLUSH BINARY LOGS;');
      });
      snapshots.push(rotated);
      continue;
    }
    if (next !== undefined && next <= Date.now() + 1000) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
      snapshots.push(await pausedSnapshot('a random second'));
      randomPoints.splice(randomPoints.indexOf(next), 1);
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  writing = false;
  resume();
  await Promise.all([writer, archiver]);
  const latest = await snapshot('latest', () => archiveOnce());
  // The archiver ran while the source took writes, more than once (how often depends on the machine's load, not asserted).
  expect(archiveRuns).toBeGreaterThan(2);

  // 3. Restores: right after the dump, one random second, the rotated file's end, latest.
  const randomSnapshots = snapshots.filter((candidate) => candidate.label === 'a random second');
  expect(randomSnapshots.length).toBeGreaterThan(0);
  const chosen = randomSnapshots[Math.floor(random() * randomSnapshots.length)] as Snapshot;
  const targets: [Snapshot, string][] = [
    [snapshots[0] as Snapshot, (snapshots[0] as Snapshot).at.toISOString()],
    [chosen, chosen.at.toISOString()],
    [rotated as Snapshot, (rotated as Snapshot).at.toISOString()],
    [latest, 'latest'],
  ];
  for (const [expected, at] of targets) {
    const restored = await restoreTo(at);
    expect({ label: expected.label, code: restored.code, err: restored.err }).toEqual({ label: expected.label, code: 0, err: '' });
    expect(restored.out).toMatch(/^plan: restore shop to /m);
    expect(restored.out).toMatch(/^ {2}binlogs {3}binlog\.\d{6}/m);
    expect({ label: expected.label, digests: restored.digests }).toEqual({ label: expected.label, digests: expected.digests });
    if (expected === rotated) expect(restored.out).toContain(rotatedFile);
  }
  // The snapshots differ from each other: the restores are not all the same data.
  expect(new Set(targets.map(([snap]) => JSON.stringify(snap.digests))).size).toBe(targets.length);

  // 4. Before the window: refused, naming it, and nothing is written.
  const before = await restoreTo(new Date(dumpStartedAt.getTime() - 60_000).toISOString());
  expect(before.code).not.toBe(0);
  expect(before.err).toMatch(/outside the restorable window \(\d{4}-\d\d-\d\dT[\d:.]+Z to \d{4}-\d\d-\d\dT[\d:.]+Z\)/);
});
