/**
 * npm run bench:pitr — PostgreSQL point-in-time recovery with pgBackRest (lib/pitr), measured
 * in one run on this machine against baselines run in the same script; prints ratios and the
 * bounds this machine allows, not absolute targets.
 *
 *   full backup   pgBackRest full (zst, process-max 2) against pg_basebackup -Ft of the same
 *                 cluster to a local file, uncompressed and zstd:3: database bytes per second
 *   incremental   after 1% of the rows of the largest table changed (one contiguous range): its
 *                 size and time against the full's (pgBackRest 2.45 copies a changed file whole;
 *                 block-level incrementals came in 2.46)
 *   archive lag   under pgbench: the age of the newest archived WAL segment, sampled every 100 ms
 *                 (what the watchdog's archive age measures: the RPO achieved), against the
 *                 bound archive_timeout sets for an idle server
 *   restore       to a time during the load (the incremental plus the WAL replayed up to it)
 *                 against the full set alone (immediate): both restored, started and out of
 *                 recovery
 *
 * The repository is the local S3 server behind a loopback TLS front (pgBackRest speaks HTTPS
 * only): the figures measure pgBackRest, PostgreSQL and this machine's disks and CPUs, not S3.
 * LIFEBOAT_BENCH_SCALE=0.1 runs it on a tenth of the data (a quick check, not the figures).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { formatSize } from '../lib/config';
import type { BackupSet } from '../lib/pitr/pgbackrest';
import { defaultPgBinDir } from '../test/harness/postgres';
import { startPitrStack, type PitrStack } from '../test/harness/pitr';
import { delay, run } from '../test/harness/processes';
import { median, SCALE } from './timing';

/** pgbench's scale: 100 000 accounts (about 15 MB) per unit. */
const PGBENCH_SCALE = Math.max(1, Math.round(30 * SCALE));
const LOAD_SECONDS = Math.max(5, Math.round(20 * SCALE));
const ARCHIVE_TIMEOUT_SECONDS = 10;
const DATABASE = 'bench';

const row = (label: string, value: string) => console.log(`  ${label.padEnd(66)} ${value}`);
const rate = (bytes: number, seconds: number) => `${formatSize(bytes / seconds)}/s`;

async function seconds<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = process.hrtime.bigint();
  const value = await work();
  return { value, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

function treeBytes(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + statSync(path.join(entry.parentPath, entry.name)).size, 0);
}

async function pgBasebackup(stack: PitrStack, compress: string | undefined): Promise<{ seconds: number; bytes: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-bench-basebackup-'));
  try {
    const args = ['-D', path.join(dir, 'out'), '-Ft', '-X', 'none', '-c', 'fast', '--no-sync', '--no-manifest', ...(compress ? [`--compress=${compress}`] : [])];
    const timed = await seconds(() => run(path.join(defaultPgBinDir(), 'pg_basebackup'), args, { env: { ...process.env, ...stack.source.env } }));
    if (timed.value.code !== 0) throw new Error(`pg_basebackup failed: ${timed.value.stderr}`);
    return { seconds: timed.seconds, bytes: treeBytes(path.join(dir, 'out')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function psqlValue(stack: PitrStack, sql: string, database = DATABASE): Promise<string> {
  return (await stack.source.psql(sql, database)).trim();
}

/** pgbench for `loadSeconds`, sampling the archive's age every 100 ms; a time in the middle of it. */
async function loadAndSample(stack: PitrStack, loadSeconds: number): Promise<{ ages: number[]; transactions: number; midTarget: Date; walBytes: number }> {
  const walBefore = await psqlValue(stack, 'SELECT pg_current_wal_lsn()');
  const load = run(path.join(defaultPgBinDir(), 'pgbench'), ['-c', '4', '-j', '2', '-T', String(loadSeconds), '-N', DATABASE], { env: { ...process.env, ...stack.source.env } });
  const ages: number[] = [];
  let midTarget: Date | undefined;
  let finished = false;
  void load.finally(() => (finished = true));
  const started = Date.now();
  while (!finished) {
    const age = Number(await psqlValue(stack, 'SELECT coalesce(extract(epoch FROM clock_timestamp() - last_archived_time), -1) FROM pg_stat_archiver'));
    if (age >= 0) ages.push(age);
    if (!midTarget && Date.now() - started > (loadSeconds * 1000) / 2) {
      midTarget = new Date(Math.ceil(Number(await psqlValue(stack, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"))));
    }
    await delay(100);
  }
  const result = await load;
  if (result.code !== 0) throw new Error(`pgbench failed: ${result.stderr}`);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(result.stdout)?.[1] ?? 0);
  const walBytes = Number(await psqlValue(stack, `SELECT pg_current_wal_lsn() - '${walBefore}'::pg_lsn`));
  return { ages, transactions, midTarget: midTarget as Date, walBytes };
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function main(): Promise<void> {
  const stack = await startPitrStack({
    bucket: 'bench-pitr',
    processMax: 2,
    settings: { archive_timeout: String(ARCHIVE_TIMEOUT_SECONDS), max_wal_size: '2GB', checkpoint_timeout: '30min', synchronous_commit: 'on' },
  });
  try {
    await stack.source.createDatabase(DATABASE);
    const init = await run(path.join(defaultPgBinDir(), 'pgbench'), ['-i', '-q', '-s', String(PGBENCH_SCALE), DATABASE], { env: { ...process.env, ...stack.source.env } });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    await stack.runner.stanzaCreate();
    await stack.runner.check();
    const clusterBytes = Number(await psqlValue(stack, 'SELECT sum(pg_database_size(datname)) FROM pg_database'));
    console.log(`\nPITR benchmark (one run, ${new Date().toISOString()}): PostgreSQL ${stack.source.version}, ${(await stack.runner.version()).text}, ` +
      `${cpus().length} CPUs, pgbench scale ${PGBENCH_SCALE} (${formatSize(clusterBytes)} cluster)`);

    // Baselines and the full, alternately, so a drifting machine affects both alike.
    const plain: number[] = [];
    const zstd: number[] = [];
    const full: number[] = [];
    let fullSet: BackupSet | undefined;
    for (let round = 0; round < 2; round++) {
      plain.push((await pgBasebackup(stack, undefined)).seconds);
      zstd.push((await pgBasebackup(stack, 'client-zstd:3')).seconds);
      const backup = await seconds(() => stack.runner.backup({ type: 'full' }));
      full.push(backup.seconds);
      fullSet = backup.value;
    }
    const fullSeconds = median(full);
    const set = fullSet as BackupSet;
    console.log('full backup:');
    row('pg_basebackup -Ft -X none, uncompressed, to a local file', `${median(plain).toFixed(2)} s, ${rate(clusterBytes, median(plain))}`);
    row('pg_basebackup -Ft -X none --compress=client-zstd:3, to a local file', `${median(zstd).toFixed(2)} s, ${rate(clusterBytes, median(zstd))}`);
    row('pgBackRest full, zst, process-max 2, into S3 (repository size)', `${fullSeconds.toFixed(2)} s, ${rate(set.size, fullSeconds)} (${formatSize(set.repoSize)} stored)`);
    row('throughput ratio pgBackRest / pg_basebackup uncompressed', (median(plain) / fullSeconds).toFixed(2));
    row('throughput ratio pgBackRest / pg_basebackup zstd:3', (median(zstd) / fullSeconds).toFixed(2));

    // 1% of the accounts, one contiguous range: the pages of one end of the table.
    const accounts = Number(await psqlValue(stack, 'SELECT count(*) FROM pgbench_accounts'));
    await stack.source.psql(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${Math.ceil(accounts / 100)}`, DATABASE);
    const incr = await seconds(() => stack.runner.backup({ type: 'incr' }));
    console.log(`incremental after 1% of ${accounts} pgbench_accounts rows changed:`);
    row('pgBackRest incr: time, bytes copied (stored)', `${incr.seconds.toFixed(2)} s, ${formatSize(incr.value.delta)} (${formatSize(incr.value.repoDelta)} stored)`);
    row('incremental / full: time, stored bytes', `${(incr.seconds / fullSeconds).toFixed(2)}, ${(incr.value.repoDelta / set.repoSize).toFixed(3)}`);

    const load = await loadAndSample(stack, LOAD_SECONDS);
    await stack.runner.check();
    console.log(`archive lag under pgbench (-c 4 -N, ${LOAD_SECONDS} s, ${load.transactions} transactions, ${formatSize(load.walBytes)} of WAL, ${load.ages.length} samples):`);
    row('age of the newest archived segment: median, p95, max', `${median(load.ages).toFixed(2)} s, ${percentile(load.ages, 95).toFixed(2)} s, ${Math.max(...load.ages).toFixed(2)} s`);
    row('bound on an idle server: archive_timeout (plus one archive-push)', `${ARCHIVE_TIMEOUT_SECONDS} s`);
    row('WAL written per second under this load (a 16 MiB segment fills in)', `${rate(load.walBytes, LOAD_SECONDS)} (${(16 * 1024 ** 2 / (load.walBytes / LOAD_SECONDS)).toFixed(1)} s)`);

    const toTime = await seconds(() => stack.restoreAndStart('to-time', { time: load.midTarget }));
    const immediate = await seconds(() => stack.restoreAndStart('full', 'immediate', set.label));
    const replayed = /redo done at .* elapsed: ([\d.]+) s/.exec(toTime.value.log)?.[1];
    console.log(`restore (restored, started, out of recovery; to ${load.midTarget.toISOString()} from ${toTime.value.set}):`);
    row('full set alone (immediate)', `${immediate.seconds.toFixed(2)} s`);
    row('to a time in the load: incremental chain + WAL replay', `${toTime.seconds.toFixed(2)} s${replayed ? ` (redo ${replayed} s)` : ''}`);
    row('restore-to-time / full restore', (toTime.seconds / immediate.seconds).toFixed(2));
  } finally {
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
