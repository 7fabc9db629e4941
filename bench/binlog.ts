/**
 * npm run bench:binlog — MySQL/MariaDB point-in-time recovery (issue 15) on this machine's
 * MariaDB 10.11 and the local S3 server (Object Lock bucket), all in one process, measured
 * against baselines run in the same script; prints ratios and the bounds this machine allows,
 * not absolute targets.
 *
 *   archive lag   a writer at a fixed rate of small transactions while the archiver
 *                 (worker/binlog-archive-main.ts, one bounded run) runs every K seconds: after
 *                 each run, the newest write committed before the run started minus what the
 *                 run's state says it holds (newestEventAt: the binary log's timestamps are whole
 *                 seconds; completeAsOf: the run held all the server had written at its start),
 *                 and the archive's age just before each run (the RPO achieved: the cadence plus
 *                 a run's duration, against the cadence as target)
 *   replay        binary logs replayed by Lifeboat from the bucket (lib/binlog/replay.ts:
 *                 download, SHA-256 checked, then mariadb-binlog | mariadb) into a fresh server,
 *                 against `mariadb-binlog FILES | mariadb --binary-mode` run by hand on the same
 *                 local files into a fresh server; both checked equal to the source (row counts,
 *                 CHECKSUM TABLE), alternately, each going first in turn. Lifeboat downloads
 *                 every file before it replays: its download share is timed apart in each pair
 *                 (the same files, downloadBinlogs), and bounds the ratio at
 *                 by hand / (download + by hand) when its replay runs as fast as by hand
 *   physical      a table of M rows, a physical full through the synthesized SSM document
 *                 (local/ssm.ts runs its own script: mariadb-backup streamed into the bucket),
 *                 verified (prepare of the chain) and committed; 1% of the rows changed in one
 *                 contiguous id range, an incremental; then 1% scattered (every 100th row: every
 *                 page touched), another incremental; then one with nothing changed (the floor
 *                 this machine allows: every page read, the tool's and the AWS CLI's fixed costs).
 *                 Each one's stream bytes, host seconds, what the stream holds, and the ratios
 *                 incremental / full. Before each backup the checkpoint is let catch up (a
 *                 throwaway server just loaded would make every backup copy the load's redo)
 *
 * Sizes (environment; LIFEBOAT_BENCH_SCALE multiplies the data sizes, 0.1 for a quick check):
 *   LIFEBOAT_BENCH_BINLOG_SECONDS    write load for the archive lag, seconds (default 60)
 *   LIFEBOAT_BENCH_BINLOG_RATE       the writer's transactions per second (default 200)
 *   LIFEBOAT_BENCH_BINLOG_EVERY      the archiver's cadence K, seconds (default 5)
 *   LIFEBOAT_BENCH_BINLOG_REPLAY_MB  binary log to replay, MB (default 200: with the other
 *                                    defaults the whole bench takes about four minutes on
 *                                    this 2-core machine)
 *   LIFEBOAT_BENCH_BINLOG_ROWS       rows of the physical table (default 1 000 000, ~150 MB)
 *   LIFEBOAT_BENCH_REPEAT            replay pairs, by hand and Lifeboat alternately (default 3)
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as mysql from 'mysql2/promise';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, userInfo } from 'node:os';
import * as path from 'node:path';
import { binlogChain, readBinlogArchive } from '../lib/binlog/archive-read';
import type { BinlogState } from '../lib/binlog/documents';
import { nextPhysicalBackup, physicalObjectKey, type PhysicalType } from '../lib/binlog/physical';
import { extractStream, readPhysicalRuns } from '../lib/binlog/physical-verify';
import { downloadBinlogs, filesToReplay, replayArchivedBinlogs, replaySqlArgs, type ReplayResult } from '../lib/binlog/replay';
import { formatSize } from '../lib/config';
import { BinlogPhysicalDocument, binlogPhysicalDocumentName } from '../lib/constructs/binlog-physical-document';
import { pitrCatalogName, runPrefix } from '../lib/domain/layout';
import { formatRunId } from '../lib/domain/run-id';
import { commit } from '../lib/steps/commit';
import { LocalSsm, type LocalDocument } from '../local/ssm';
import { startMariaDb, type MariaDbServer } from '../test/harness/mariadb';
import { delay } from '../test/harness/processes';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../test/harness/s3';
import { runBinlogArchiveJob, type BinlogArchiveJob } from '../worker/binlog-archive-main';
import { BINLOG_PHYSICAL_VERIFY_ENV, physicalVerifyJobFromEnv, runPhysicalVerifyJob } from '../worker/binlog-physical-verify-main';
import { median, REPEAT, SCALE, timed } from './timing';

const envNumber = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const LOAD_SECONDS = Math.max(10, envNumber('LIFEBOAT_BENCH_BINLOG_SECONDS', 60));
const WRITE_RATE = Math.max(1, envNumber('LIFEBOAT_BENCH_BINLOG_RATE', 200));
const ARCHIVE_EVERY_SECONDS = Math.max(2, envNumber('LIFEBOAT_BENCH_BINLOG_EVERY', 5));
const REPLAY_BYTES = Math.max(4, envNumber('LIFEBOAT_BENCH_BINLOG_REPLAY_MB', 200) * SCALE) * 1e6;
const PHYSICAL_ROWS = Math.max(10_000, Math.round(envNumber('LIFEBOAT_BENCH_BINLOG_ROWS', 1_000_000) * SCALE));

const BUCKET = 'bench-binlog';
const SOURCE = 'bench';
const PHYSICAL_SOURCE = 'bench-physical';
const INSTANCE = 'i-0b1e2c3d4e5f60718';
const KEY_ARN = 'arn:aws:kms:us-east-1:111111111111:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';

const row = (label: string, value: string) => console.log(`  ${label.padEnd(70)} ${value}`);
const rate = (bytes: number, seconds: number) => `${formatSize(bytes / seconds)}/s`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const mbps = (bytes: number, seconds: number) => `${(bytes / 1e6 / seconds).toFixed(2)} MB/s`;
const s = (seconds: number) => `${seconds.toFixed(2)} s`;

async function seconds<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = process.hrtime.bigint();
  const value = await work();
  return { value, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function binlogBytes(server: MariaDbServer): Promise<number> {
  return (await server.sql('SHOW BINARY LOGS;')).split('\n').filter(Boolean).reduce((sum, line) => sum + Number(line.split('\t')[1]), 0);
}

function archiveJob(server: MariaDbServer): BinlogArchiveJob {
  return {
    source: SOURCE, engine: 'mariadb', binlogClient: 'mariadb-binlog',
    connection: { host: server.host, port: server.port, username: 'root', tls: { mode: 'disable' } },
    bucket: BUCKET, region: 'us-east-1', objectLock: { mode: 'GOVERNANCE', retentionSeconds: 86_400 }, minServerRetentionSeconds: 60,
  };
}

let lastRunStart = 0;
/** One archiver run; runs are named after the second they start, so they start at least a second apart. */
async function archiveOnce(server: MariaDbServer, client: S3Client): Promise<{ state: BinlogState; startedAt: number; seconds: number }> {
  const wait = lastRunStart + 1_000 - Date.now();
  if (wait > 0) await delay(wait);
  const startedAt = Date.now();
  lastRunStart = startedAt;
  const outcome = await runBinlogArchiveJob(archiveJob(server), { s3: client, log: () => undefined });
  if (outcome.code !== 0 || !outcome.result) throw new Error(`archiver run failed: ${outcome.error?.name}: ${outcome.error?.message}`);
  return { state: outcome.result.state, startedAt, seconds: (Date.now() - startedAt) / 1000 };
}

/** Bytes a run uploaded: the completed files it stored and its partial of the active file. */
function runBytes(state: BinlogState): number {
  const stored = state.stored.reduce((sum, file) => sum + (state.serverFiles.find((entry) => entry.file === file)?.bytes ?? 0), 0);
  return stored + (state.partial?.facts.bytes ?? 0);
}

// ---------------------------------------------------------------------------------------------
// 1. Archive lag under a steady write load

async function archiveLag(server: MariaDbServer, client: S3Client): Promise<void> {
  await server.sql(`CREATE DATABASE bench;
    CREATE TABLE bench.ticks (id BIGINT PRIMARY KEY, account INT NOT NULL, amount DECIMAL(12,2) NOT NULL, note VARCHAR(80) NOT NULL, at DATETIME(6) NOT NULL) ENGINE=InnoDB;`);
  // The archive's first run, before the load: every later run resumes from it.
  const first = await archiveOnce(server, client);
  const connection = await mysql.createConnection({ host: server.host, port: server.port, user: 'root' });
  const bytesBefore = await binlogBytes(server);
  let lastCommitted = 0;
  let transactions = 0;
  let writing = true;
  const loadStarted = Date.now();
  const writer = (async () => {
    const interval = 1000 / WRITE_RATE;
    for (let i = 0; writing; i++) {
      const due = loadStarted + i * interval;
      if (due > Date.now()) await delay(due - Date.now());
      await connection.query('INSERT INTO bench.ticks VALUES (?, ?, ?, ?, NOW(6))', [i + 1, i % 997, ((i * 7919) % 100_000) / 100, `tick ${i} of the steady load`]);
      lastCommitted = Date.now();
      transactions += 1;
    }
  })();
  const runs: { startedAt: number; seconds: number; newestWrite: number; state: BinlogState }[] = [];
  let previousComplete = Date.parse(first.state.completeAsOf ?? first.state.newestEventAt ?? new Date(first.startedAt).toISOString());
  const ages: number[] = [];
  for (let tick = 1; Date.now() < loadStarted + LOAD_SECONDS * 1000; tick++) {
    const due = loadStarted + tick * ARCHIVE_EVERY_SECONDS * 1000;
    if (due > Date.now()) await delay(due - Date.now());
    const newestWrite = lastCommitted;
    // The archive's age just before the run: what the previous run held, against now.
    ages.push((Date.now() - previousComplete) / 1000);
    const result = await archiveOnce(server, client);
    runs.push({ startedAt: result.startedAt, seconds: result.seconds, newestWrite, state: result.state });
    previousComplete = Date.parse(result.state.completeAsOf ?? result.state.newestEventAt ?? new Date(0).toISOString());
  }
  writing = false;
  await writer;
  const loadSeconds = (Date.now() - loadStarted) / 1000;
  await connection.end();
  const written = (await binlogBytes(server)) - bytesBefore;

  const newestEventLag = runs.map((run) => Math.max(0, (run.newestWrite - Date.parse(run.state.newestEventAt ?? new Date(0).toISOString())) / 1000));
  const completeLag = runs.map((run) => (run.state.completeAsOf ? Math.max(0, (run.newestWrite - Date.parse(run.state.completeAsOf)) / 1000) : Number.NaN));
  const complete = completeLag.filter((lag) => !Number.isNaN(lag));
  const durations = runs.map((run) => run.seconds);
  const uploaded = runs.reduce((sum, run) => sum + runBytes(run.state), 0);
  const files = new Set(runs.flatMap((run) => run.state.stored));
  console.log(`archive lag under a steady write load (${transactions} transactions in ${s(loadSeconds)}: ${(transactions / loadSeconds).toFixed(0)} tx/s of ${WRITE_RATE} asked, ` +
    `${formatSize(written)} of binary log, ${files.size} files completed; archiver every ${ARCHIVE_EVERY_SECONDS} s, ${runs.length} runs):`);
  row('lag after a run, by newestEventAt (whole seconds): p50, max', `${s(median(newestEventLag))}, ${s(Math.max(...newestEventLag))}`);
  row(`lag after a run, by completeAsOf (${complete.length} of ${runs.length} runs caught up): p50, max`, complete.length ? `${s(median(complete))}, ${s(Math.max(...complete))}` : '(none)');
  row('archive age just before a run (the RPO achieved): p50, p95, max', `${s(median(ages))}, ${s(percentile(ages, 95))}, ${s(Math.max(...ages))}`);
  row('archiver run duration: p50, max', `${s(median(durations))}, ${s(Math.max(...durations))}`);
  row('each run, seconds', durations.map((d) => d.toFixed(2)).join(' '));
  row('target RPO: the cadence', `${ARCHIVE_EVERY_SECONDS} s`);
  row('bound here: the cadence plus a run (p50)', s(ARCHIVE_EVERY_SECONDS + median(durations)));
  row('binary log written per second / uploaded per second (partials re-stored)', `${rate(written, loadSeconds)} / ${rate(uploaded, loadSeconds)}`);
  console.log(`  summary: archive lag p50 ${s(median(newestEventLag))} (max ${s(Math.max(...newestEventLag))}), RPO achieved p50 ${s(median(ages))} ` +
    `(max ${s(Math.max(...ages))}) at a ${ARCHIVE_EVERY_SECONDS} s cadence, runs ${s(median(durations))} p50`);
}

// ---------------------------------------------------------------------------------------------
// 2. Replay throughput

/** Inserts, updates and deletes in transactions of about 1 000 rows until the binary log holds `bytes` more. */
async function writeBinlog(server: MariaDbServer, bytes: number): Promise<void> {
  await server.sql(`SET GLOBAL max_binlog_size = ${32 * 1024 * 1024};
    CREATE TABLE bench.bulk (id BIGINT PRIMARY KEY, account INT NOT NULL, kind VARCHAR(20) NOT NULL, payload VARCHAR(255) NOT NULL, at DATETIME(6) NOT NULL) ENGINE=InnoDB;`);
  const goal = (await binlogBytes(server)) + bytes;
  let next = 0;
  while ((await binlogBytes(server)) < goal) {
    const statements: string[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const from = next;
      next += 1000;
      statements.push(`INSERT INTO bench.bulk SELECT seq, seq % 5000, ELT(1 + seq % 4, 'order', 'refund', 'login', 'logout'), CONCAT(MD5(seq), MD5(seq % 977), REPEAT('p', seq % 150)), NOW(6) FROM seq_${from + 1}_to_${from + 1000};`);
      if (batch % 4 === 3) statements.push(`UPDATE bench.bulk SET kind = 'paid', at = NOW(6) WHERE id > ${from - 2000} AND id <= ${from} AND id % 3 = 0;`);
      if (batch % 10 === 9) statements.push(`DELETE FROM bench.bulk WHERE id > ${from - 5000} AND id <= ${from} AND id % 17 = 0;`);
    }
    await server.sql(statements.join('\n'), 'bench');
  }
}

/** Row counts and CHECKSUM TABLE of bench's tables. */
async function contentOf(server: MariaDbServer): Promise<string> {
  return (await server.sql('SELECT COUNT(*) FROM bench.ticks; SELECT COUNT(*) FROM bench.bulk; CHECKSUM TABLE bench.ticks, bench.bulk;')).trim();
}

async function replay(server: MariaDbServer, client: S3Client, work: string): Promise<void> {
  const written = await seconds(() => writeBinlog(server, REPLAY_BYTES));
  await server.sql('FLUSH BINARY LOGS;');
  const catchUp = await archiveOnce(server, client);
  const source = await contentOf(server);
  const archive = await readBinlogArchive({ s3: client, bucket: BUCKET, source: SOURCE });
  const firstFile = archive.entries[0]?.file as string;
  const files = filesToReplay(binlogChain(archive, firstFile).files, 'latest');
  const bytes = files.reduce((sum, file) => sum + file.facts.bytes, 0);
  const catchUpBytes = runBytes(catchUp.state);

  // The same files, downloaded once: the local files the replay by hand reads.
  const local = await downloadBinlogs(client, BUCKET, files, path.join(work, 'local-binlogs'));
  const byHand = async (): Promise<number> => {
    const target = await startMariaDb();
    try {
      const pipe = `mariadb-binlog --no-defaults ${local.join(' ')} | mariadb ${replaySqlArgs({ host: target.host, port: target.port, user: 'root' }).join(' ')}`;
      const result = await timed('sh', ['-c', pipe], { ...process.env, TZ: 'UTC' });
      const content = await contentOf(target);
      if (content !== source) throw new Error(`the replay by hand differs from the source:\n${content}\nagainst\n${source}`);
      return result.seconds;
    } finally {
      await target.stop();
    }
  };
  const lifeboat = async (): Promise<{ seconds: number; result: ReplayResult }> => {
    const target = await startMariaDb();
    const scratch = mkdtempSync(path.join(work, 'lifeboat-replay-'));
    try {
      const result = await seconds(() => replayArchivedBinlogs({
        s3: client, bucket: BUCKET, source: SOURCE, binlogClient: 'mariadb-binlog', sqlClient: 'mariadb', from: { file: firstFile, position: 4 },
        stopAt: 'latest', target: { host: target.host, port: target.port, user: 'root' }, scratchDir: scratch,
      }));
      const content = await contentOf(target);
      if (content !== source) throw new Error(`Lifeboat's replay differs from the source:\n${content}\nagainst\n${source}`);
      return { seconds: result.seconds, result: result.value };
    } finally {
      rmSync(scratch, { recursive: true, force: true });
      await target.stop();
    }
  };
  // By hand and Lifeboat alternate, each going first in turn; each pair also times the download
  // alone (what Lifeboat spends before its replay starts), so every figure compares neighbours.
  const pairs: { hand: number; ours: number; download: number }[] = [];
  let replayedFiles = 0;
  for (let i = 0; i < REPEAT; i++) {
    const again = mkdtempSync(path.join(work, 'download-'));
    const downloaded = await seconds(() => downloadBinlogs(client, BUCKET, files, again));
    rmSync(again, { recursive: true, force: true });
    let hand = 0;
    if (i % 2 === 0) hand = await byHand();
    const ours = await lifeboat();
    if (i % 2 === 1) hand = await byHand();
    replayedFiles = ours.result.files.length;
    pairs.push({ hand, ours: ours.seconds, download: downloaded.seconds });
  }
  const ratios = pairs.map((pair) => pair.hand / pair.ours);
  const expected = pairs.map((pair) => pair.hand / (pair.hand + pair.download));
  const { hand, ours, download: downloadSeconds } = pairs[ratios.indexOf(median(ratios))] as { hand: number; ours: number; download: number };
  const downloadShare = downloadSeconds / ours;
  console.log(`replay of ${mb(bytes)} of binary log (${replayedFiles} files; ~1 000-row transactions: inserts, updates, deletes; ` +
    `written in ${s(written.seconds)}), into a fresh server, median of ${REPEAT} pairs:`);
  row('archiver run catching up on it (read, scan, upload)', `${s(catchUp.seconds)}, ${mbps(catchUpBytes, catchUp.seconds)}`);
  row('by hand: mariadb-binlog FILES | mariadb --binary-mode, local files', `${s(hand)}, ${mbps(bytes, hand)}`);
  row('Lifeboat: replayArchivedBinlogs from the bucket (download, SHA-256, replay)', `${s(ours)}, ${mbps(bytes, ours)}`);
  row('Lifeboat download of the same files from the local S3 server (its share)', `${s(downloadSeconds)}, ${mbps(bytes, downloadSeconds)} (${(downloadShare * 100).toFixed(0)}% of Lifeboat's time)`);
  row(`throughput ratio Lifeboat / by hand (target 1.0), median of ${REPEAT}`, `${median(ratios).toFixed(2)} (each: ${ratios.map((r) => r.toFixed(2)).join(', ')})`);
  row('bound here: by hand / (download + by hand), the download not overlapped', `${median(expected).toFixed(2)} (each: ${expected.map((r) => r.toFixed(2)).join(', ')})`);
  row('both replays equal to the source (row counts, CHECKSUM TABLE)', 'yes');
  console.log(`  summary: replay ${mbps(bytes, ours)} Lifeboat against ${mbps(bytes, hand)} by hand, ratio ${median(ratios).toFixed(2)} ` +
    `(bound ${median(expected).toFixed(2)}), download ${(downloadShare * 100).toFixed(0)}% of Lifeboat's time`);
}

// ---------------------------------------------------------------------------------------------
// 3. Physical incremental against full

/** The document as the CDK app synthesizes it (as test/integration/binlog-physical.test.ts does). */
function synthesizedDocument(): LocalDocument {
  const app = new App();
  const stack = new Stack(app, 'Physical', { env: { account: '111111111111', region: 'us-east-1' } });
  new BinlogPhysicalDocument(stack, 'BinlogPhysical', {
    appName: 'lifeboat',
    bucket: s3.Bucket.fromBucketName(stack, 'Bucket', BUCKET),
    bucketKey: kms.Key.fromKeyArn(stack, 'Key', KEY_ARN),
  });
  const resources = Template.fromStack(stack).findResources('AWS::SSM::Document');
  const [resource] = Object.values(resources) as { Properties: { Name: string; Content: LocalDocument['content'] } }[];
  return { name: resource.Properties.Name, content: resource.Properties.Content };
}

interface PhysicalMeasure {
  readonly type: PhysicalType;
  readonly bytes: number;
  readonly seconds: number;
  readonly verifySeconds: number;
  /** The unpacked stream's bytes: the redo log copied, InnoDB pages (.ibd / .delta), the rest (Aria/MyISAM system tables copied whole, metadata). */
  readonly parts: { readonly redo: number; readonly pages: number; readonly other: number };
  /** Innodb_checkpoint_age when the backup started. */
  readonly checkpointAge: number;
}

/**
 * Flushes dirty pages until the checkpoint is within 1 MB of the log's end (at most 60 s), as on
 * a server that has been running a while: mariadb-backup copies the redo log from the last
 * checkpoint, and a throwaway server just loaded would make every backup carry the load's redo.
 */
async function settleCheckpoint(server: MariaDbServer): Promise<number> {
  await server.sql('SET GLOBAL innodb_max_dirty_pages_pct_lwm = 0.001, innodb_max_dirty_pages_pct = 0.001;');
  let age = Number.POSITIVE_INFINITY;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    age = Number((await server.sql("SHOW GLOBAL STATUS LIKE 'Innodb_checkpoint_age';")).split('\t')[1]);
    if (age < 1e6) break;
    await delay(250);
  }
  return age;
}

function streamParts(dir: string): PhysicalMeasure['parts'] {
  const parts = { redo: 0, pages: 0, other: 0 };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const bytes = statSync(path.join(entry.parentPath, entry.name)).size;
    if (/^ib_logfile/.test(entry.name)) parts.redo += bytes;
    else if (/\.(ibd|delta)$|^ibdata\d+|^undo\d+/.test(entry.name)) parts.pages += bytes;
    else parts.other += bytes;
  }
  return parts;
}

async function physical(s3server: S3Server, client: S3Client, work: string): Promise<void> {
  const server = await startMariaDb({ binlog: {} });
  try {
    const home = mkdtempSync(path.join(work, 'home-'));
    const scratch = mkdtempSync(path.join(work, 'physical-'));
    const ssm = new LocalSsm([synthesizedDocument()]);
    ssm.register({
      instanceId: INSTANCE, tags: {},
      env: { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, HOME: home, TMPDIR: scratch },
      parameterOverrides: { osUser: userInfo().username, socket: server.socket, dataDirectory: server.dataDir, endpointUrl: s3server.endpoint },
    });
    await server.sql(`CREATE DATABASE shop;
      CREATE TABLE shop.items (id INT PRIMARY KEY, account INT NOT NULL, price DECIMAL(12,2) NOT NULL, name VARCHAR(64) NOT NULL, note VARCHAR(100) NOT NULL) ENGINE=InnoDB;`);
    for (let from = 0; from < PHYSICAL_ROWS; from += 200_000) {
      await server.sql(`INSERT INTO shop.items SELECT seq, seq % 5000, (seq % 100000) / 100, MD5(seq), CONCAT(MD5(seq % 977), REPEAT('n', seq % 60)) FROM seq_${from + 1}_to_${Math.min(PHYSICAL_ROWS, from + 200_000)};`, 'shop');
    }
    await server.sql('ANALYZE TABLE shop.items;');
    const tableBytes = Number((await server.sql("SELECT data_length + index_length FROM information_schema.tables WHERE table_schema = 'shop' AND table_name = 'items';")).trim());
    let run = 0;
    const backup = async (wanted: PhysicalType): Promise<PhysicalMeasure> => {
      const runId = formatRunId(new Date(Date.UTC(2026, 11, 4, 10, run++)));
      const checkpointAge = await settleCheckpoint(server);
      const next = nextPhysicalBackup(await readPhysicalRuns(client, BUCKET, PHYSICAL_SOURCE), wanted);
      if (next.type !== wanted) throw new Error(`a ${wanted} backup was asked, the chain gives ${next.type}`);
      const host = await seconds(async () => {
        const { Command } = ssm.sendCommand({
          DocumentName: binlogPhysicalDocumentName('lifeboat'),
          Targets: [{ Key: 'InstanceIds', Values: [INSTANCE] }],
          Parameters: { runPrefix: [runPrefix(pitrCatalogName(PHYSICAL_SOURCE), runId)], type: [next.type], ...(next.prior ? { incrementalLsn: [next.prior.toLsn] } : {}) },
        });
        await ssm.settle();
        const [invocation] = ssm.listCommandInvocations({ CommandId: String(Command.CommandId), Details: true }).CommandInvocations as { CommandPlugins: { ResponseCode: number; Output: string }[] }[];
        if (invocation?.CommandPlugins[0]?.ResponseCode !== 0) throw new Error(`the host's ${wanted} backup failed: ${invocation?.CommandPlugins[0]?.Output}`);
      });
      const E = BINLOG_PHYSICAL_VERIFY_ENV;
      const verify = await seconds(async () => {
        const job = physicalVerifyJobFromEnv({
          AWS_REGION: 'us-east-1', [E.bucket]: BUCKET, [E.source]: PHYSICAL_SOURCE, [E.engine]: 'mariadb', [E.tier]: 'tier2', [E.runId]: runId, [E.type]: next.type,
          ...(next.prior ? { [E.prior]: next.prior.runId } : {}), [E.scratch]: scratch,
        });
        const outcome = await runPhysicalVerifyJob(job, { s3: client, log: () => undefined });
        if (!outcome.result || outcome.code !== 0) throw new Error(`the verifier failed (${outcome.code}): ${outcome.error?.name}: ${outcome.error?.message}`);
        await commit({ dump: outcome.result.dump, verification: outcome.result.verification }, { s3: client, bucket: BUCKET });
      });
      const key = physicalObjectKey(PHYSICAL_SOURCE, runId, 'backup.xbstream');
      const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      const unpacked = path.join(work, `unpacked-${runId}`);
      await extractStream({ s3: client, bucket: BUCKET, streamTool: 'mbstream' }, { key }, unpacked);
      const parts = streamParts(unpacked);
      rmSync(unpacked, { recursive: true, force: true });
      return { type: next.type, bytes: Number(head.ContentLength), seconds: host.seconds, verifySeconds: verify.seconds, parts, checkpointAge };
    };
    const full = await backup('full');
    const changed = Math.ceil(PHYSICAL_ROWS / 100);
    await server.sql(`UPDATE shop.items SET price = price + 1, note = CONCAT('changed ', note) WHERE id <= ${changed};`);
    const contiguous = await backup('incr');
    await server.sql('UPDATE shop.items SET price = price + 1 WHERE id % 100 = 50;');
    const scattered = await backup('incr');
    const unchanged = await backup('incr');
    await ssm.settle();
    console.log(`physical backups (mariadb-backup through the SSM document, streamed into S3; ${PHYSICAL_ROWS} rows, ${formatSize(tableBytes)} table):`);
    const line = (label: string, m: PhysicalMeasure) => {
      row(label, `${formatSize(m.bytes)}, ${s(m.seconds)} (${rate(m.bytes, m.seconds)})`);
      row('    unpacked: InnoDB pages / redo log copied / other files', `${formatSize(m.parts.pages)} / ${formatSize(m.parts.redo)} / ${formatSize(m.parts.other)}`);
      row('    checkpoint age at its start; verify (prepare of the chain so far)', `${formatSize(m.checkpointAge)}; ${s(m.verifySeconds)}`);
    };
    line('full: stream bytes, host seconds (mariadb-backup + upload)', full);
    line(`incremental after 1% changed (${changed} rows, ids 1..${changed}, one range)`, contiguous);
    line('incremental after 1% changed, scattered (every 100th row: every page)', scattered);
    row('incremental / full, one range: bytes, seconds', `${(contiguous.bytes / full.bytes).toFixed(3)}, ${(contiguous.seconds / full.seconds).toFixed(2)}`);
    row('incremental / full, scattered: bytes, seconds', `${(scattered.bytes / full.bytes).toFixed(3)}, ${(scattered.seconds / full.seconds).toFixed(2)}`);
    line('floor: an incremental with nothing changed (every page read, fixed costs)', unchanged);
    row('bound here on incremental / full: the floor\'s bytes, seconds', `${(unchanged.bytes / full.bytes).toFixed(3)}, ${(unchanged.seconds / full.seconds).toFixed(2)}`);
    console.log(`  summary: physical incremental after 1% changed in one range ${formatSize(contiguous.bytes)} in ${s(contiguous.seconds)} against the full's ` +
      `${formatSize(full.bytes)} in ${s(full.seconds)}: bytes ${(contiguous.bytes / full.bytes).toFixed(3)}, time ${(contiguous.seconds / full.seconds).toFixed(2)} ` +
      `(scattered: bytes ${(scattered.bytes / full.bytes).toFixed(3)}, time ${(scattered.seconds / full.seconds).toFixed(2)}; ` +
      `nothing changed: bytes ${(unchanged.bytes / full.bytes).toFixed(3)}, time ${(unchanged.seconds / full.seconds).toFixed(2)})`);
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'lifeboat-bench-binlog-'));
  const [s3server, server] = await Promise.all([startS3(), startMariaDb({ binlog: { maxSize: 1024 * 1024 } })]);
  const client = s3server.client();
  try {
    await s3server.createBucket(BUCKET, { objectLock: true });
    console.log(`\nbinary-log PITR benchmark (one run, ${new Date().toISOString()}): MariaDB ${server.version}, ${cpus().length} CPUs, ` +
      `load ${LOAD_SECONDS} s at ${WRITE_RATE} tx/s, replay ${mb(REPLAY_BYTES)}, physical ${PHYSICAL_ROWS} rows`);
    await archiveLag(server, client);
    await replay(server, client, work);
    await server.stop();
    await physical(s3server, client, work);
  } finally {
    client.destroy();
    await Promise.all([server.stop(), s3server.stop()]);
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
