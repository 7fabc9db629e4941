/**
 * npm run bench:dump — the dump worker against its ceiling and against the common script,
 * measured in one run on this machine; prints ratios, not absolute targets.
 *
 *   ceiling   pg_dump with Lifeboat's default settings (-Fc, gzip:1) to /dev/null
 *   lifeboat  the worker, bundled and run as in its container, into the local S3 server
 *             (SHA-256 and multipart upload in the stream, exact row counts in the same snapshot)
 *   common    pg_dump -Fc -Z9 -f file, then upload the file
 *   streaming pg_dump as the worker runs it, piped into a process that only hashes: the most a
 *             streaming consumer can reach against the ceiling on this machine
 * and the worker's peak RSS for a ~200 MB and a ~1 GB database.
 *
 * The ceiling and the worker run alternately LIFEBOAT_BENCH_REPEAT times (default 3); the
 * median ratio is the figure, and every pair's ratio is printed.
 * LIFEBOAT_BENCH_SCALE=0.1 runs it on a tenth of the data (a quick check, not the figures).
 */
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { Upload } from '@aws-sdk/lib-storage';
import { defaultPgBinDir, startPostgres, type PgServer } from '../test/harness/postgres';
import { CLIENT_PIPE_BUFFER_BYTES, withStdioBuffers } from '../lib/process/stdio-buffers';
import { startS3, TEST_CREDENTIALS } from '../test/harness/s3';
import { formatSize } from '../lib/config';
import { BUCKET, median, REPEAT, ROOT, SCALE, processCpuSeconds, timed, type Timed } from './timing';

async function seed(server: PgServer, database: string, targetBytes: number): Promise<number> {
  await server.createDatabase(database);
  // ~120 bytes a row on disk; md5 text compresses about 2:1, like typical application data.
  const rows = Math.round(targetBytes / 120);
  await server.psql(`CREATE TABLE events (id bigserial PRIMARY KEY, account int NOT NULL, kind text NOT NULL,
      payload text NOT NULL, created_at timestamptz NOT NULL);
    INSERT INTO events (account, kind, payload, created_at)
      SELECT g % 5000, (ARRAY['order','refund','login','logout'])[1 + g % 4], md5(g::text) || md5((g % 977)::text),
             timestamptz '2026-01-01' + (g || ' seconds')::interval
      FROM generate_series(1, ${rows}) g;
    VACUUM ANALYZE events;`, database);
  return Number(await server.psql('SELECT pg_database_size(current_database())', database));
}

async function main(): Promise<void> {
  const [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  const work = mkdtempSync(path.join(tmpdir(), 'lifeboat-bench-'));
  try {
    await s3.createBucket(BUCKET);
    const sizes = { small: 200e6 * SCALE, large: 1e9 * SCALE };
    const actual: Record<string, number> = {};
    for (const [name, bytes] of Object.entries(sizes)) {
      actual[name] = await seed(pg, `bench_${name}`, bytes);
      console.log(`seeded bench_${name}: ${formatSize(actual[name])}`);
    }
    const pgEnv = { ...process.env, ...pg.env };
    // The worker as it runs in its container: worker/main.ts bundled by esbuild, plain node,
    // the job in the environment (worker/Dockerfile does the same bundle).
    const bundle = path.join(work, 'worker.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('esbuild') as typeof import('esbuild')).buildSync({
      entryPoints: [path.join(ROOT, 'worker/main.ts')], bundle: true, platform: 'node', target: 'node22', external: ['pg-native'], outfile: bundle, logLevel: 'error',
    });
    const lifeboat = (database: string, runId: string) => timed(process.execPath, [bundle], {
      PATH: process.env.PATH, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1', LIFEBOAT_SOURCE: database.replace('_', '-'), LIFEBOAT_ENGINE: 'postgres', LIFEBOAT_TIER: 'tier3',
      LIFEBOAT_RUN_ID: runId, LIFEBOAT_DB_HOST: pg.host, LIFEBOAT_DB_PORT: String(pg.port), LIFEBOAT_DB_NAMES: database,
      LIFEBOAT_DB_USER: pg.user, LIFEBOAT_BUCKET: BUCKET, LIFEBOAT_S3_ENDPOINT: s3.endpoint, LIFEBOAT_SIZE_HINT_BYTES: String(actual.large),
      // LIFEBOAT_EXACT_COUNT_MAX_BYTES=0 measures the worker with estimated row counts (no count(*) scans).
      ...(process.env.LIFEBOAT_EXACT_COUNT_MAX_BYTES ? { LIFEBOAT_EXACT_COUNT_MAX_BYTES: process.env.LIFEBOAT_EXACT_COUNT_MAX_BYTES } : {}),
    });

    // Warm the page cache so the first measurement is not penalized.
    await timed('pg_dump', ['-Fc', '-Z1', '--no-sync', '-f', '/dev/null', '-d', 'bench_large'], pgEnv);

    // Ceiling and worker alternate, REPEAT times: a 2-core VM's speed drifts between minutes,
    // so each ratio compares neighbours, and the median ratio is the figure.
    // The least any streaming destination costs: pg_dump (with the worker's stdout buffer) piped
    // into a process that only hashes what it reads. Lifeboat does that, uploads, and here shares
    // the two cores with the S3 server it uploads to.
    const hashStdin = path.join(work, 'hash-stdin.js');
    writeFileSync(hashStdin, "const h = require('crypto').createHash('sha256'); process.stdin.on('data', (c) => h.update(c)).on('end', () => h.digest());\n");
    const [dumpCommand, dumpArgs] = withStdioBuffers(path.join(defaultPgBinDir(), 'pg_dump'), ['-Fc', '-Z1', '--no-sync', '-d', 'bench_large'], { output: CLIENT_PIPE_BUFFER_BYTES });
    const streamingFloor = () => timed('sh', ['-c', `${[dumpCommand, ...dumpArgs].join(' ')} | ${process.execPath} ${hashStdin}`], pgEnv);
    const streamingRatios: number[] = [];

    const pairs: { ceiling: Timed; ours: Timed; s3Cpu: number; ceilingDbCpu: number; oursDbCpu: number }[] = [];
    const dbCpu = () => processCpuSeconds(pg.pid, { children: true });
    for (let i = 0; i < REPEAT; i++) {
      const dbBefore = dbCpu();
      const ceiling = await timed('pg_dump', ['-Fc', '-Z1', '--no-sync', '-f', '/dev/null', '-d', 'bench_large'], pgEnv);
      const dbBetween = dbCpu();
      const s3CpuBefore = processCpuSeconds(s3.pid);
      const ours = await lifeboat('bench_large', `20261126T01${String(i).padStart(2, '0')}00Z`);
      pairs.push({ ceiling, ours, s3Cpu: processCpuSeconds(s3.pid) - s3CpuBefore, ceilingDbCpu: dbBetween - dbBefore, oursDbCpu: dbCpu() - dbBetween });
      streamingRatios.push(ceiling.seconds / (await streamingFloor()).seconds);
    }
    const ratios = pairs.map((pair) => pair.ceiling.seconds / pair.ours.seconds);
    const { ceiling, ours, s3Cpu, ceilingDbCpu, oursDbCpu } = pairs[ratios.indexOf(median(ratios))]!;
    const oursBytes = Number(/"bytes":(\d+)/.exec(ours.output)?.[1]);

    const file = path.join(work, 'common.pgdump');
    const commonDump = await timed('pg_dump', ['-Fc', '-Z9', '-f', file, '-d', 'bench_large'], pgEnv);
    const uploadStarted = process.hrtime.bigint();
    await new Upload({ client: s3.client(), params: { Bucket: BUCKET, Key: 'common/bench_large.pgdump', Body: createReadStream(file) } }).done();
    const commonSeconds = commonDump.seconds + Number(process.hrtime.bigint() - uploadStarted) / 1e9;
    const commonBytes = statSync(file).size;

    const small = await lifeboat('bench_small', '20261126T020000Z');

    const row = (label: string, value: string) => console.log(`  ${label.padEnd(58)} ${value}`);
    console.log(`\nDump benchmark (database ${formatSize(actual.large)}, one run, ${new Date().toISOString()})`);
    row('pg_dump -Fc -Z1 to /dev/null (ceiling; the median pair)', `${ceiling.seconds.toFixed(2)} s`);
    row('lifeboat worker (gzip:1, sha256, multipart to local S3)', `${ours.seconds.toFixed(2)} s, ${formatSize(oursBytes)}`);
    row('common script: pg_dump -Fc -Z9 -f file, then upload', `${commonSeconds.toFixed(2)} s (${commonDump.seconds.toFixed(2)} s dump), ${formatSize(commonBytes)}`);
    console.log('ratios:');
    row(`lifeboat throughput / ceiling (target >= 0.9), median of ${REPEAT}`, `${median(ratios).toFixed(2)} (each: ${ratios.map((r) => r.toFixed(2)).join(', ')})`);
    row(`ceiling of that ratio here: pg_dump | sha256 only, median of ${REPEAT}`, `${median(streamingRatios).toFixed(2)} (each: ${streamingRatios.map((r) => r.toFixed(2)).join(', ')})`);
    row('lifeboat speed-up over the common script (target >= 3)', `${(commonSeconds / ours.seconds).toFixed(2)}x`);
    row('lifeboat artifact size / common artifact size (target <= 1.10)', (oursBytes / commonBytes).toFixed(3));
    console.log(`CPU seconds on this ${cpus().length}-core machine (where they went):`);
    row('pg_dump ceiling run (pg_dump itself)', `${ceiling.cpuSeconds?.toFixed(1)} s`);
    row('pg_dump ceiling run: the PostgreSQL server (its backends)', `${ceilingDbCpu.toFixed(1)} s`);
    row('lifeboat run: worker process tree (node + pg_dump + pg_dumpall)', `${ours.cpuSeconds?.toFixed(1)} s`);
    row('lifeboat run: the PostgreSQL server (COPY, row counts)', `${oursDbCpu.toFixed(1)} s`);
    row('lifeboat run: the local S3 server receiving the upload', `${s3Cpu.toFixed(1)} s`);
    console.log('peak RSS of the worker (flat target, under 200 MB):');
    row(`database ${formatSize(actual.small)}`, `${((small.maxRssKiB ?? 0) / 1024).toFixed(0)} MiB`);
    row(`database ${formatSize(actual.large)}`, `${((ours.maxRssKiB ?? 0) / 1024).toFixed(0)} MiB`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await Promise.all([pg.stop(), s3.stop()]);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
