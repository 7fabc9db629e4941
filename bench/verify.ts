/**
 * npm run bench:verify — the verifier against its floor, measured in one run on this machine;
 * prints ratios, not absolute targets.
 *
 *   floor     a plain read of the artifact from the local S3 server through SHA-256
 *   tool      the stock tool's full read of the same artifact from a local file
 *             (pg_restore --file=/dev/null, zstd -t): the engine check alone, no network
 *   lifeboat  worker/verify-main.ts (no task token) on the same run: one read through
 *             SHA-256, pg_restore --list and pg_restore --file=/dev/null (PostgreSQL), or
 *             zstd decompression + SQL scan (MariaDB)
 * and the verifier's peak RSS (GNU time: the largest process of its tree) for a ~100 MB and a
 * ~500 MB PostgreSQL artifact.
 *
 * The floor and the verifier run alternately LIFEBOAT_BENCH_REPEAT times (default 3) per
 * artifact; the median ratio is the figure, and every pair's ratio is printed.
 * LIFEBOAT_BENCH_SCALE=0.1 runs it on a tenth of the data (a quick check, not the figures).
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { dumpCommand } from '../cli/dump';
import { formatSize } from '../lib/config';
import { manifestKey } from '../lib/domain/layout';
import { engineOf } from '../lib/engines/registry';
import { parseManifest } from '../lib/domain/manifest';
import { startMariaDb, type MariaDbServer } from '../test/harness/mariadb';
import { startPostgres, type PgServer } from '../test/harness/postgres';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../test/harness/s3';
import { BUCKET, median, REPEAT, ROOT, SCALE, timed, type Timed } from './timing';

/** ~`artifactBytes` of pg_dump custom format at gzip:1: two md5 hex strings a row compress about 1.8:1. */
async function seedPostgres(pg: PgServer, database: string, artifactBytes: number): Promise<void> {
  await pg.createDatabase(database);
  const rows = Math.round(artifactBytes / 48);
  await pg.psql(`CREATE TABLE events (id bigint NOT NULL, account int NOT NULL, payload text NOT NULL);
    INSERT INTO events SELECT g, g % 5000, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, ${rows}) g;
    CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);
    INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 5000) g;`, database);
}

/** ~`artifactBytes` of zstd:3 SQL. */
async function seedMariaDb(mariadb: MariaDbServer, database: string, artifactBytes: number): Promise<void> {
  const rows = Math.round(artifactBytes / 40);
  await mariadb.sql(`CREATE DATABASE ${database};
    USE ${database};
    CREATE TABLE events (id bigint NOT NULL PRIMARY KEY, account int NOT NULL, payload varchar(64) NOT NULL) ENGINE=InnoDB;
    INSERT INTO events SELECT seq, seq % 5000, CONCAT(MD5(seq), MD5(seq * 7)) FROM seq_1_to_${rows};`);
}

/** The floor: one plain read of the object through SHA-256, in this process. */
async function plainRead(s3: S3Client, key: string, keep?: Buffer[]): Promise<{ seconds: number; bytes: number }> {
  const started = process.hrtime.bigint();
  const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of object.Body as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.length;
    keep?.push(Buffer.from(chunk));
  }
  hash.digest();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, bytes };
}

interface Measured {
  label: string;
  artifactBytes: number;
  floorSeconds: number;
  toolSeconds: number;
  tool: string;
  verifySeconds: number;
  processSeconds: number;
  maxRssKiB: number;
  /** floor / verify of every pair. */
  ratios: number[];
}

async function measure(s3: S3Server, work: string, label: string, source: string, runId: string): Promise<Measured> {
  const client = s3.client();
  const manifest = parseManifest(await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifestKey(source, runId) })))
    .Body!.transformToString());
  const key = manifest.artifacts[0]!.key;
  const copy: Buffer[] = [];
  await plainRead(client, key, copy); // also warms the server's page cache for both readers alike
  const file = path.join(work, path.basename(key));
  writeFileSync(file, Buffer.concat(copy));
  // The ceiling of a reader of this artifact format: pg_restore reads a custom archive, zstd -t a compressed script.
  const tool = engineOf(manifest.engine).verify.stockReadCommand(manifest.artifacts[0]!, file);
  const ceiling = await timed(tool[0]!, tool.slice(1), process.env);
  rmSync(file);
  // Floor and verifier alternate, REPEAT times: each ratio compares neighbours on a VM whose
  // speed drifts; the median pair gives the figures.
  const pairs: { floor: { seconds: number; bytes: number }; verifier: Timed; verifySeconds: number }[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const floor = await plainRead(client, key);
    const verifier = await timed(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'worker/verify-main.ts')], {
      PATH: process.env.PATH, LIFEBOAT_BUCKET: BUCKET, LIFEBOAT_SOURCE: source, LIFEBOAT_RUN_ID: runId, LIFEBOAT_S3_ENDPOINT: s3.endpoint,
      AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    });
    const result = JSON.parse(verifier.output.split('\n').find((line) => line.startsWith('{"schemaVersion"')) ?? '{}') as { verdict?: string; durationMs?: number };
    if (result.verdict !== 'ok') throw new Error(`verification of ${source}/${runId} did not pass:\n${verifier.output.slice(-2000)}`);
    pairs.push({ floor, verifier, verifySeconds: (result.durationMs ?? 0) / 1000 });
  }
  client.destroy();
  const ratios = pairs.map((pair) => pair.floor.seconds / pair.verifySeconds);
  const { floor, verifier, verifySeconds } = pairs[ratios.indexOf(median(ratios))]!;
  return {
    label,
    artifactBytes: floor.bytes,
    floorSeconds: floor.seconds,
    toolSeconds: ceiling.seconds,
    tool: tool.slice(0, -1).join(' '),
    verifySeconds,
    processSeconds: verifier.seconds,
    maxRssKiB: Math.max(...pairs.map((pair) => pair.verifier.maxRssKiB ?? 0)),
    ratios,
  };
}

async function main(): Promise<void> {
  const [pg, mariadb, s3] = await Promise.all([startPostgres(), startMariaDb(), startS3()]);
  const work = mkdtempSync(path.join(tmpdir(), 'lifeboat-bench-verify-'));
  try {
    await s3.createBucket(BUCKET);
    const sizes = { small: 100e6 * SCALE, large: 500e6 * SCALE };
    const dump = async (url: string, source: string, runId: string) => {
      const lines: string[] = [];
      const code = await dumpCommand(['--source-url', url, '--source', source, '--bucket', BUCKET, '--tier', 'tier3', '--run-id', runId,
        '--retention', 'none', '--size-hint', `${Math.round(sizes.large)}B`], {}, { s3: s3.client(), log: (line) => lines.push(line) });
      if (code !== 0) throw new Error(`dump of ${source} failed:\n${lines.join('\n')}`);
    };
    for (const [name, bytes] of Object.entries(sizes)) {
      await seedPostgres(pg, `bench_${name}`, bytes);
      await dump(`postgres://${pg.user}@${pg.host}:${pg.port}/bench_${name}`, `pg-${name}`, '20261126T030000Z');
      console.log(`dumped PostgreSQL bench_${name}`);
    }
    await seedMariaDb(mariadb, 'bench_small', sizes.small);
    await dump(`mariadb://${mariadb.user}@${mariadb.host}:${mariadb.port}/bench_small`, 'mariadb-small', '20261126T030000Z');
    console.log('dumped MariaDB bench_small');

    const results = [
      await measure(s3, work, 'PostgreSQL, pg_dump custom gzip:1', 'pg-small', '20261126T030000Z'),
      await measure(s3, work, 'PostgreSQL, pg_dump custom gzip:1', 'pg-large', '20261126T030000Z'),
      await measure(s3, work, 'MariaDB, SQL zstd:3', 'mariadb-small', '20261126T030000Z'),
    ];

    const row = (label: string, value: string) => console.log(`  ${label.padEnd(62)} ${value}`);
    const rate = (bytes: number, seconds: number) => `${formatSize(Math.round(bytes / seconds))}/s`;
    console.log(`\nVerify benchmark (one run, ${new Date().toISOString()}${SCALE !== 1 ? `, scale ${SCALE}` : ''})`);
    for (const r of results) {
      console.log(`${r.label}, artifact ${formatSize(r.artifactBytes)}:`);
      row('plain read + SHA-256 (floor)', `${r.floorSeconds.toFixed(2)} s, ${rate(r.artifactBytes, r.floorSeconds)}`);
      row('lifeboat verify (durationMs; process incl. start-up)', `${r.verifySeconds.toFixed(2)} s, ${rate(r.artifactBytes, r.verifySeconds)} (${r.processSeconds.toFixed(2)} s)`);
      row(`${r.tool} alone, local file (engine check only)`, `${r.toolSeconds.toFixed(2)} s, ${rate(r.artifactBytes, r.toolSeconds)}`);
      row(`throughput ratio verify / floor (target >= 0.8), median of ${REPEAT}`, `${median(r.ratios).toFixed(2)} (each: ${r.ratios.map((x) => x.toFixed(2)).join(', ')})`);
      row(`throughput ratio verify / ${r.tool.split(' ')[0]} alone`, (r.toolSeconds / r.verifySeconds).toFixed(2));
      // The engine check alone, from a local file, is the most any verifier that reads every
      // byte through it can reach here; the read, the SHA-256 and the S3 server share the cores.
      row(`ceiling of the ratio here: ${r.tool.split(' ')[0]} alone / floor`, (r.floorSeconds / r.toolSeconds).toFixed(2));
      row('peak RSS of the verifier (largest process of its tree, max of the runs)', `${(r.maxRssKiB / 1024).toFixed(0)} MiB`);
    }
    const [small, large] = results as [Measured, Measured];
    console.log(`peak RSS, PostgreSQL ${formatSize(small.artifactBytes)} → ${formatSize(large.artifactBytes)} artifact (flat target): ` +
      `${(small.maxRssKiB / 1024).toFixed(0)} → ${(large.maxRssKiB / 1024).toFixed(0)} MiB`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await Promise.all([pg.stop(), mariadb.stop(), s3.stop()]);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
