/**
 * The binary-log archiver against a real MariaDB 10.11 (binary logging on, small rotation size)
 * and the local S3 server (Object Lock bucket): completed files stored once with their index
 * entry, the active file as a partial per run, resume after a run, continuity, the preflight's
 * refusals, a purge before archiving (BinlogGap), a kill mid-read, and S3 failing mid-upload.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBinlogArchive, binlogChain, newestBinlogStateKey } from '../../lib/binlog/archive-read';
import { binlogCoverage, readBinlogListing } from '../../lib/binlog/watch';
import { binlogPartialKey, binlogPrefix, binlogStateKey, binlogStatePrefix } from '../../lib/domain/layout';
import { runBinlogArchiveJob, type BinlogArchiveJob } from '../../worker/binlog-archive-main';
import { startFaultyS3Proxy } from '../harness/faulty-s3-proxy';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { makeTempDir, removeTempDir } from '../harness/processes';
import { startS3, type S3Server } from '../harness/s3';

jest.setTimeout(120_000);

let s3: S3Server;
let client: S3Client;
let buckets = 0;

beforeAll(async () => {
  s3 = await startS3();
  client = s3.client();
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

async function lockedBucket(): Promise<string> {
  const name = `binlog-${++buckets}`;
  await s3.createBucket(name, { objectLock: true });
  return name;
}

function jobFor(server: MariaDbServer, bucket: string, source = 'shop', overrides: Partial<BinlogArchiveJob> = {}): BinlogArchiveJob {
  return {
    source,
    engine: 'mariadb',
    binlogClient: 'mariadb-binlog',
    connection: { host: server.host, port: server.port, username: 'root', tls: { mode: 'disable' } },
    bucket,
    region: 'us-east-1',
    objectLock: { mode: 'GOVERNANCE', retentionSeconds: 86_400 },
    minServerRetentionSeconds: 1200,
    ...overrides,
  };
}

/** Distinct run ids: the archiver names its run after the second it starts. */
function clock(): () => Date {
  let at = Date.now();
  return () => new Date((at += 1000));
}

async function writeRows(server: MariaDbServer, count: number, from = 0): Promise<void> {
  const values = Array.from({ length: count }, (_, i) => `(${from + i}, REPEAT('r', 200))`).join(',');
  await server.sql(`INSERT INTO shop.orders (id, note) VALUES ${values};`);
}

async function getBytes(bucket: string, key: string, versionId?: string): Promise<Buffer> {
  const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  return Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

async function keys(bucket: string, prefix: string): Promise<string[]> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((object) => object.Key as string).sort();
}

/**
 * PURGE BINARY LOGS TO `file`, retried: MariaDB keeps a file until InnoDB has made its
 * transactions durable (the binlog checkpoint; the throwaway server flushes once a second).
 */
async function purgeTo(server: MariaDbServer, file: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    await server.sql(`PURGE BINARY LOGS TO '${file}';`);
    if ((await server.sql('SHOW BINARY LOGS;')).startsWith(`${file}\t`)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the server kept binary logs before ${file}: ${await server.sql('SHOW BINARY LOGS;')}`);
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('the newest state is found among the last day\'s states, and among older ones when the archiver stopped a while ago', async () => {
  const bucket = await lockedBucket();
  const put = (runId: string) => client.send(new PutObjectCommand({ Bucket: bucket, Key: binlogStateKey('shop', runId), Body: '{}' }));
  const now = new Date('2026-12-04T12:00:00Z');
  for (const runId of ['20261101T000000Z', '20261120T000000Z', '20261203T000000Z']) await put(runId);
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${binlogStatePrefix('shop')}notes.txt`, Body: 'x' }));
  expect(await newestBinlogStateKey({ s3: client, bucket, source: 'shop' }, now)).toBe(binlogStateKey('shop', '20261203T000000Z'));
  await put('20261204T115500Z');
  await put('20261204T110000Z');
  expect(await newestBinlogStateKey({ s3: client, bucket, source: 'shop' }, now)).toBe(binlogStateKey('shop', '20261204T115500Z'));
  expect(await newestBinlogStateKey({ s3: client, bucket, source: 'ledger' }, now)).toBeUndefined();
});

describe('binary-log archiver on MariaDB', () => {
  let server: MariaDbServer;

  beforeEach(async () => {
    server = await startMariaDb({ binlog: { maxSize: 4096 } });
    await server.sql('CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, note TEXT) ENGINE=InnoDB;');
  });

  afterEach(async () => {
    await server?.stop();
  });

  test('stores completed files once, the active one as a partial per run, and resumes where it left off; every stored byte equals the server\'s file', async () => {
    const bucket = await lockedBucket();
    const now = clock();
    for (let i = 0; i < 10; i++) await writeRows(server, 5, i * 5);
    const first = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now, log: () => undefined });
    expect(first.error).toBeUndefined();
    expect(first.code).toBe(0);
    const state1 = first.result?.state;
    expect(state1?.stored.length).toBeGreaterThan(1);
    expect(state1?.partial?.file).toBe(state1?.serverFiles.at(-1)?.file);
    expect(state1?.completeAsOf).toBeDefined();

    await writeRows(server, 40, 100);
    const second = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now, log: () => undefined });
    expect(second.code).toBe(0);
    const state2 = second.result?.state;
    // Nothing stored twice: the second run begins with the file the first left partial.
    expect(state2?.stored.filter((file) => state1?.stored.includes(file))).toEqual([]);
    expect(state2?.stored[0]).toBe(state1?.partial?.file);

    // Each completed file equals the server's own, byte for byte; the chain is unbroken.
    await server.sql('FLUSH BINARY LOGS;');
    const archive = await readBinlogArchive({ s3: client, bucket, source: 'shop' });
    const chain = binlogChain(archive, archive.entries[0]?.file as string);
    expect(chain.missing).toBeUndefined();
    for (const entry of archive.entries) {
      const stored = await getBytes(bucket, entry.key, entry.versionId);
      expect(sha(stored)).toBe(entry.facts.sha256);
      expect(stored.equals(readFileSync(join(server.dataDir, entry.file)))).toBe(true);
      expect(entry.facts.ends).toBe('rotate');
    }
    // Both runs' partials are their own objects.
    const partials = await keys(bucket, `${binlogPrefix('shop')}partial/`);
    expect(partials).toEqual(expect.arrayContaining([
      binlogPartialKey('shop', state1?.partial?.file as string, state1?.runId as string),
      binlogPartialKey('shop', state2?.partial?.file as string, state2?.runId as string),
    ]));
  });

  test('the scratch space holds one binary log at a time, however many the run archives', async () => {
    const bucket = await lockedBucket();
    for (let i = 0; i < 12; i++) await writeRows(server, 5, i * 5);
    const scratch = makeTempDir('binlog-count');
    const wrapper = join(scratch, 'counting-binlog');
    const counts = join(scratch, 'counts');
    writeFileSync(wrapper, [
      '#!/bin/sh',
      'for arg in "$@"; do case "$arg" in --result-file=*) dir="${arg#--result-file=}";; esac; done',
      'mariadb-binlog "$@"; code=$?',
      `ls "$dir" | wc -l >> ${counts}`,
      'exit $code',
      '',
    ].join('\n'), { mode: 0o755 });
    try {
      const run = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now: clock(), log: () => undefined, binlogClient: wrapper });
      expect(run.code).toBe(0);
      const perCall = readFileSync(counts, 'utf8').trim().split('\n').map(Number);
      expect(perCall.length).toBe((run.result?.state.stored.length ?? 0) + 1);
      expect(perCall.length).toBeGreaterThan(2);
      expect(new Set(perCall)).toEqual(new Set([1]));
    } finally {
      removeTempDir(scratch);
    }
  });

  test('a server that purged a file the archive lacks fails BinlogGap naming it, after archiving what it still has', async () => {
    const bucket = await lockedBucket();
    const now = clock();
    await writeRows(server, 5);
    const first = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now, log: () => undefined });
    expect(first.code).toBe(0);
    const active = first.result?.state.partial?.file as string;
    for (let i = 0; i < 12; i++) await writeRows(server, 5, 100 + i * 5);
    const files = (await server.sql('SHOW BINARY LOGS;')).trim().split('\n').map((line) => line.split('\t')[0] as string);
    const keep = files.at(-2) as string;
    await purgeTo(server, keep);

    const second = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now, log: () => undefined });
    expect(second.code).toBe(1);
    expect(second.error?.name).toBe('BinlogGap');
    expect(second.error?.message).toContain(active);
    expect(second.error?.message).toContain(keep);
    const archive = await readBinlogArchive({ s3: client, bucket, source: 'shop' });
    expect(archive.newestState?.outcome).toBe('BinlogGap');
    expect(archive.newestState?.gap?.missing[0]).toBe(active);
    expect(binlogChain(archive, active).missing).toBe(active);
    // What the server still had is archived: the chain from the oldest file it kept is whole.
    expect(archive.entries.map((entry) => entry.file)).toContain(keep);
    // The watchdog's reading of the same bucket: a gap (the gap alarm's metric), the window broken, naming the file.
    const coverage = binlogCoverage(await readBinlogListing({ s3: client, bucket, source: 'shop', latestVerified: null }), new Date());
    expect(coverage).toMatchObject({ gaps: 1, restorableWindowSeconds: 0, outcome: 'BinlogGap' });
    expect(coverage.missing[0]).toBe(active);
  });

  test('binlog_format=STATEMENT is refused with the reason, before anything is stored', async () => {
    await server.stop();
    server = await startMariaDb({ binlog: { format: 'STATEMENT' } });
    const bucket = await lockedBucket();
    const outcome = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now: clock(), log: () => undefined });
    expect(outcome.code).toBe(1);
    expect(outcome.error?.name).toBe('BinlogFormatNotRow');
    expect(outcome.error?.message).toMatch(/binlog_format is STATEMENT.*NOW\(\).*binlog_format=ROW/s);
    expect(await keys(bucket, binlogPrefix('shop'))).toEqual([]);
  });

  test('a binlog retention shorter than four archiver intervals is refused, naming the setting', async () => {
    await server.sql('SET GLOBAL binlog_expire_logs_seconds = 600;');
    const bucket = await lockedBucket();
    const outcome = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now: clock(), log: () => undefined });
    expect(outcome.error?.name).toBe('BinlogRetentionTooShort');
    expect(outcome.error?.message).toContain('binlog_expire_logs_seconds = 1200');
  });

  test('a user without REPLICATION SLAVE is refused naming the GRANT; the password appears nowhere', async () => {
    const password = 'S3cret-archiver-pw';
    await server.sql(`CREATE USER 'arch'@'%' IDENTIFIED BY '${password}'; GRANT BINLOG MONITOR ON *.* TO 'arch'@'%';`);
    const bucket = await lockedBucket();
    const lines: string[] = [];
    const outcome = await runBinlogArchiveJob(
      jobFor(server, bucket, 'shop', { connection: { host: server.host, port: server.port, username: 'arch', password, tls: { mode: 'disable' } } }),
      { s3: client, now: clock(), log: (line) => lines.push(line) },
    );
    expect(outcome.error?.name).toBe('InsufficientPrivileges');
    expect(outcome.error?.message).toContain('GRANT REPLICATION SLAVE ON *.*');
    expect(JSON.stringify([outcome, lines])).not.toContain(password);
  });

  test('a run killed mid-file stores the cut file as a partial of whole events only; the next run resumes and the chain holds every byte once', async () => {
    const bucket = await lockedBucket();
    const now = clock();
    for (let i = 0; i < 30; i++) await writeRows(server, 5, i * 5);
    // The real client, file by file; on the second file, what a kill while it wrote leaves: the
    // file cut in the middle of an event, exit 143.
    const scratch = makeTempDir('binlog-kill');
    const wrapper = join(scratch, 'killed-binlog');
    const calls = join(scratch, 'calls');
    writeFileSync(wrapper, [
      '#!/bin/sh',
      'mariadb-binlog "$@" || exit $?',
      `echo x >> ${calls}; [ "$(wc -l < ${calls})" -eq 2 ] || exit 0`,
      'for arg in "$@"; do case "$arg" in --result-file=*) dir="${arg#--result-file=}";; esac; done',
      'file="$dir/$(ls "$dir")"',
      'size=$(stat -c %s "$file"); truncate -s $((size / 2 + 7)) "$file"',
      'exit 143',
      '',
    ].join('\n'), { mode: 0o755 });
    try {
      const killed = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now, log: () => undefined, binlogClient: wrapper });
      expect(killed.code).toBe(0);
      const cut = killed.result?.state.partial;
      expect(killed.result?.state.stored).toEqual(['binlog.000001']);
      expect(cut?.file).toBe('binlog.000002');
      // Whole events only: a prefix of the server's file that ends on an event boundary.
      const serverCopy = readFileSync(join(server.dataDir, 'binlog.000002'));
      const partialBytes = await getBytes(bucket, cut?.key as string, cut?.versionId);
      expect(partialBytes.length).toBe(cut?.facts.endPosition);
      expect(partialBytes.length).toBeLessThan(serverCopy.length);
      expect(serverCopy.subarray(0, partialBytes.length).equals(partialBytes)).toBe(true);
      expect(killed.result?.state.completeAsOf).toBeUndefined();
    } finally {
      removeTempDir(scratch);
    }

    const again = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now, log: () => undefined });
    expect(again.code).toBe(0);
    expect(again.result?.state.stored[0]).toBe('binlog.000002');
    const archive = await readBinlogArchive({ s3: client, bucket, source: 'shop' });
    const archived = archive.entries.map((entry) => entry.file);
    expect(new Set(archived).size).toBe(archived.length);
    for (const entry of archive.entries) {
      expect((await getBytes(bucket, entry.key, entry.versionId)).equals(readFileSync(join(server.dataDir, entry.file)))).toBe(true);
    }
    const serverFiles = readdirSync(server.dataDir).filter((name) => /^binlog\.\d+$/.test(name)).sort();
    expect(archived).toEqual(serverFiles.slice(0, -1));
    expect(binlogChain(archive, 'binlog.000001').missing).toBeUndefined();
  });

  test('S3 failing mid-upload fails the run and leaves no index entry without its file; the next run completes the archive', async () => {
    const bucket = await lockedBucket();
    const now = clock();
    for (let i = 0; i < 10; i++) await writeRows(server, 5, i * 5);
    // The first file goes up; the second file's PUT (or its index entry's) fails.
    const proxy = await startFaultyS3Proxy(s3.endpoint, { failAfterParts: 0, failAfterPuts: 2 });
    try {
      const broken = s3.client({ endpoint: proxy.endpoint, maxAttempts: 1 });
      const failed = await runBinlogArchiveJob(jobFor(server, bucket), { s3: broken, now, log: () => undefined });
      broken.destroy();
      expect(failed.code).toBe(1);
    } finally {
      await proxy.close();
    }
    // No index entry names a file that is not there.
    const listed = await keys(bucket, binlogPrefix('shop'));
    for (const key of listed.filter((k) => k.includes('/index/'))) {
      expect(listed).toContain(key.replace('/index/', '/files/').replace(/\.json$/, ''));
    }
    const retried = await runBinlogArchiveJob(jobFor(server, bucket), { s3: client, now, log: () => undefined });
    expect(retried.code).toBe(0);
    const archive = await readBinlogArchive({ s3: client, bucket, source: 'shop' });
    expect(binlogChain(archive, archive.entries[0]?.file as string).missing).toBeUndefined();
    expect(archive.entries.length).toBeGreaterThan(1);
  });
});
