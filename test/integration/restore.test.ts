/**
 * lifeboat restore end to end: throwaway source and target servers, artifacts made by the real
 * worker into the local S3 server and judged by the real verifier, an offsite copy made by the
 * local replicator; then the CLI restores and the target's tables are compared with the
 * source's at dump time.
 */
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { dumpCommand } from '../../cli/dump';
import { restoreCommand } from '../../cli/restore';
import { artifactKey, manifestKey, verificationKey } from '../../lib/domain/layout';
import { parseManifest } from '../../lib/domain/manifest';
import { serializeVerification } from '../../lib/domain/verification';
import { chooseRun } from '../../lib/restore/choose-run';
import { restoreRun, type RestoreProgress } from '../../lib/restore/restore';
import { storageNames } from '../../lib/stacks/naming';
import { verifyRun } from '../../lib/verify/verify-run';
import { LocalReplicator } from '../../local/replicator';
import { testConfig } from '../fixtures/config';
import { buildRun, writeRun } from '../fixtures/runs';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startPostgres, type PgServer } from '../harness/postgres';
import { startS3, tamperStoredObject, type S3Server } from '../harness/s3';
import { mariaDbTableDigests, pgTableDigests } from '../harness/digests';
import { getBytes } from '../harness/s3-objects';

const PRIMARY = 'primary';
const OFFSITE = storageNames(testConfig).offsiteBucketName;
const PG_SEED = readFileSync(path.join(__dirname, '../fixtures/seed-postgres.sql'), 'utf8');
const MARIADB_SEED = readFileSync(path.join(__dirname, '../fixtures/seed-mariadb.sql'), 'utf8');
const MARIADB_DATABASES = ['shop', 'crm'];

let s3: S3Server;
let pgSource: PgServer;
let pgTarget: PgServer;
let mySource: MariaDbServer;
let myTarget: MariaDbServer;

beforeAll(async () => {
  [s3, pgSource, pgTarget, mySource, myTarget] = await Promise.all([startS3(), startPostgres(), startPostgres(), startMariaDb(), startMariaDb()]);
  // As the stacks make them: versioned, with Object Lock (the runs here are written unlocked).
  await Promise.all([s3.createBucket(PRIMARY, { objectLock: true }), s3.createBucket(OFFSITE, { objectLock: true })]);
  await pgSource.createDatabase('shop');
  await pgSource.psql(PG_SEED, 'shop');
  await mySource.sql(MARIADB_SEED);
}, 120_000);

afterAll(async () => {
  await Promise.all([s3?.stop(), pgSource?.stop(), pgTarget?.stop(), mySource?.stop(), myTarget?.stop()]);
});

/** A run made by the real worker and judged by the real verifier, committed as the Commit step would. */
async function verifiedRun(source: string, runId: string, sourceArgs: string[]): Promise<void> {
  const lines: string[] = [];
  const code = await dumpCommand([...sourceArgs, '--source', source, '--bucket', PRIMARY, '--run-id', runId, '--retention', 'none'], {},
    { s3: s3.client(), log: (line) => lines.push(line) });
  expect(lines.join('\n')).toContain(`committed ${source}/${runId}`);
  expect(code).toBe(0);
  const verification = await verifyRun({ s3: s3.client(), bucket: PRIMARY, source, runId, verifiedBy: 'lambda' });
  expect(verification.verdict).toBe('ok');
  await s3.client().send(new PutObjectCommand({ Bucket: PRIMARY, Key: verificationKey(source, runId), Body: serializeVerification(verification) }));
}

async function restore(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  let err = '';
  const code = await restoreCommand(args, env, {
    s3: s3.client(),
    log: (line) => out.push(line),
    stderr: { write: (text: string) => (err += text) },
    loadConfig: () => testConfig,
  });
  return { code, out: out.join('\n'), err };
}

async function pgDatabaseExists(server: PgServer, database: string): Promise<boolean> {
  return (await server.psql(`SELECT count(*) FROM pg_database WHERE datname = '${database}'`)).trim() === '1';
}

/** Per table: row count and an ordered digest; and the routines. */
async function myDigests(server: MariaDbServer): Promise<Record<string, string>> {
  const schemas = MARIADB_DATABASES.map((name) => `'${name}'`).join(',');
  return {
    ...await mariaDbTableDigests(server, MARIADB_DATABASES),
    '(routines)': (await server.sql(`SELECT GROUP_CONCAT(CONCAT(routine_schema, '.', routine_name) ORDER BY 1)
      FROM information_schema.routines WHERE routine_schema IN (${schemas})`)).trim(),
  };
}

describe('PostgreSQL', () => {
  const RUN1 = '20261126T100000Z';
  const RUN2 = '20261126T110000Z';
  const RUN3 = '20261126T120000Z';
  let atRun1: Record<string, string>;
  let atRun2: Record<string, string>;
  const pgSourceArgs = () => ['--source-url', `postgres://${pgSource.user}@${pgSource.host}:${pgSource.port}/shop`, '--tier', 'tier1'];
  const targetUrl = (database?: string) => `postgres://${pgTarget.user}@${pgTarget.host}:${pgTarget.port}${database ? `/${database}` : ''}`;

  beforeAll(async () => {
    atRun1 = await pgTableDigests(pgSource, 'shop');
    await verifiedRun('shop', RUN1, pgSourceArgs());
    const [first] = Object.keys(atRun1);
    await pgSource.psql(`DELETE FROM ${first} WHERE ctid IN (SELECT ctid FROM ${first} LIMIT 1)`, 'shop');
    atRun2 = await pgTableDigests(pgSource, 'shop');
    expect(atRun2).not.toEqual(atRun1);
    await verifiedRun('shop', RUN2, pgSourceArgs());
  }, 120_000);

  test('latest verified run from the primary, with globals: every table equals the source at dump time; run, targets and timings printed', async () => {
    const { code, out, err } = await restore(['shop', '--target-url', targetUrl(), '--bucket', PRIMARY, '--globals', '--jobs', '2']);
    expect(err).not.toContain('restore failed');
    expect(code).toBe(0);
    expect(out).toContain(`run shop/${RUN2}`);
    expect(out).toMatch(/shop \(.*\) → database shop on postgres 127\.0\.0\.1:\d+/);
    expect(out).toMatch(/restored shop\/20261126T110000Z into shop .* download [\d.]+ s .* verify [\d.]+ s, globals [\d.]+ s, restore [\d.]+ s/);
    // Each phase's last line once (a log, not a TTY), and the real key of the run.
    for (const phase of ['download', 'restore']) expect(err.match(new RegExp(`^${phase} .*100%`, 'gm'))).toHaveLength(1);
    expect(out).toMatch(new RegExp(`downloading 2 object\\(s\\), \\d+ bytes, from s3://${PRIMARY}/runs/shop/${RUN2}/ into `));
    expect(await pgTableDigests(pgTarget, 'shop')).toEqual(atRun2);
  }, 60_000);

  test('a non-empty target database is refused without --clean (target unchanged) and replaced with --clean', async () => {
    const [first] = Object.keys(atRun2);
    await pgTarget.psql(`DELETE FROM ${first}`, 'shop');
    const changed = await pgTableDigests(pgTarget, 'shop');

    const refused = await restore(['shop', '--target-url', targetUrl(), '--bucket', PRIMARY, '--no-owner']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/TargetNotEmpty: database shop on 127\.0\.0\.1:\d+ has 1\d table\(s\) \(.*public\.customers, .*…\) that the restore would drop or collide with; nothing was restored/);
    expect(refused.err).toContain('--clean');
    expect(await pgTableDigests(pgTarget, 'shop')).toEqual(changed);

    const cleaned = await restore(['shop', '--target-url', targetUrl(), '--bucket', PRIMARY, '--clean']);
    expect(cleaned.err).not.toContain('restore failed');
    expect(cleaned.code).toBe(0);
    expect(await pgTableDigests(pgTarget, 'shop')).toEqual(atRun2);
  }, 60_000);

  test('by run id into another database name', async () => {
    const { code, out, err } = await restore(['shop', '--target-url', targetUrl('shop_run1'), '--run', RUN1, '--bucket', PRIMARY]);
    expect(err).not.toContain('restore failed');
    expect(code).toBe(0);
    expect(out).toContain(`run shop/${RUN1}`);
    expect(await pgTableDigests(pgTarget, 'shop_run1')).toEqual(atRun1);
  }, 60_000);

  test('by time from the offsite bucket, named by the config alone (the offsite copy made by the local replicator)', async () => {
    const replicator = new LocalReplicator({ source: s3.client(), sourceBucket: PRIMARY, destination: s3.client(), destinationBucket: OFFSITE });
    expect((await replicator.copyNew()).length).toBeGreaterThan(0);
    const { code, out, err } = await restore(['shop', '--target-url', targetUrl('shop_offsite'), '--from', 'offsite', '--at', '2026-11-26T10:30:00Z']);
    expect(err).not.toContain('restore failed');
    expect(code).toBe(0);
    expect(out).toContain(`run shop/${RUN1}`);
    expect(out).toContain(`from s3://${OFFSITE} (offsite, eu-central-1)`);
    expect(await pgTableDigests(pgTarget, 'shop_offsite')).toEqual(atRun1);
  }, 60_000);

  test('an offsite run whose artifact is not there: not restorable, named by bucket and key; a restore of it touches nothing', async () => {
    const RUN5 = '20261126T140000Z';
    await verifiedRun('shop', RUN5, pgSourceArgs());
    const replicator = new LocalReplicator({ source: s3.client(), sourceBucket: PRIMARY, destination: s3.client(), destinationBucket: OFFSITE });
    await replicator.copyNew();
    const key = artifactKey('shop', RUN5, 'shop', '.pgdump');
    const primaryRun = await chooseRun(s3.client(), PRIMARY, 'shop', { runId: RUN5 });
    const { versionId } = primaryRun.manifest!.artifacts[0];
    // The replica's documents are there, its artifact is not (CRR copies each object on its own).
    await s3.client().send(new DeleteObjectCommand({ Bucket: OFFSITE, Key: key, VersionId: versionId }));

    const refused = await restore(['shop', '--target-url', targetUrl('shop_partial'), '--from', 'offsite', '--run', RUN5]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`RunNotVerified: run shop/${RUN5} in s3://${OFFSITE}/ is unverified, not verified: not restorable from s3://${OFFSITE}/: ${key} is not in the bucket`);
    // Chosen while it was there, gone by the download: the object is named, nothing is written.
    await expect(restoreRun({
      s3: s3.client(), bucket: OFFSITE, run: primaryRun,
      target: { engine: 'postgres', host: pgTarget.host, port: pgTarget.port, username: pgTarget.user }, databases: { shop: 'shop_partial' },
    })).rejects.toMatchObject({ name: 'ArtifactMissing', message: expect.stringContaining(`s3://${OFFSITE}/${key} (version ${versionId}) is not in the bucket`) });
    expect(await pgDatabaseExists(pgTarget, 'shop_partial')).toBe(false);
  }, 60_000);

  test('a restore reads the version that was verified, even after a newer version of the artifact was written', async () => {
    const RUN4 = '20261126T130000Z';
    await verifiedRun('shop', RUN4, pgSourceArgs());
    const key = artifactKey('shop', RUN4, 'shop', '.pgdump');
    // What the bucket policy refuses in AWS (a write without If-None-Match), done here anyway:
    // the current version of the artifact is now garbage.
    await s3.client().send(new PutObjectCommand({ Bucket: PRIMARY, Key: key, Body: Buffer.from('not a dump at all') }));
    expect((await getBytes(s3.client(), PRIMARY, key)).toString()).toBe('not a dump at all');
    const { code, out, err } = await restore(['shop', '--target-url', targetUrl('shop_overwritten'), '--run', RUN4, '--bucket', PRIMARY]);
    expect(err).not.toContain('restore failed');
    expect(code).toBe(0);
    expect(out).toContain(`run shop/${RUN4}`);
    expect(await pgTableDigests(pgTarget, 'shop_overwritten')).toEqual(await pgTableDigests(pgSource, 'shop'));
  }, 60_000);

  test('an artifact whose SHA-256 does not match the manifest is refused before the target is touched', async () => {
    await verifiedRun('shop', RUN3, pgSourceArgs());
    const manifest = parseManifest((await getBytes(s3.client(), PRIMARY, manifestKey('shop', RUN3))).toString('utf8'));
    const { key, versionId } = manifest.artifacts[0];
    const stored = await getBytes(s3.client(), PRIMARY, key);
    stored[stored.length - 100] ^= 1;
    // The version the manifest names, damaged in place (storage corruption): a new version would be ignored.
    await tamperStoredObject(s3.endpoint, { bucket: PRIMARY, key, versionId }, stored);

    const { code, err } = await restore(['shop', '--target-url', targetUrl('shop_tampered'), '--run', RUN3, '--bucket', PRIMARY]);
    expect(code).toBe(1);
    expect(err).toContain(`ChecksumMismatch: s3://${PRIMARY}/${key}: expected`);
    expect(err).toMatch(/found \d+ bytes with sha256 [0-9a-f]{64}/);
    expect(await pgDatabaseExists(pgTarget, 'shop_tampered')).toBe(false);
  }, 60_000);

  test('restoreRun reports download and restore progress up to the total, and the phase timings', async () => {
    const client = s3.client();
    const run = await chooseRun(client, PRIMARY, 'shop', { runId: RUN2 });
    const progress: RestoreProgress[] = [];
    const result = await restoreRun({
      s3: client, bucket: PRIMARY, run, databases: { shop: 'shop_api' }, noOwner: true, jobs: 1,
      target: { engine: 'postgres', host: pgTarget.host, port: pgTarget.port, username: pgTarget.user },
      onProgress: (p) => progress.push({ ...p }),
    });
    expect(result.databases).toEqual(['shop_api']);
    expect(result.bytes).toBe(run.manifest!.artifacts[0].bytes);
    for (const phase of ['download', 'restore'] as const) {
      const seen = progress.filter((p) => p.phase === phase);
      expect(seen.at(-1)).toMatchObject({ bytes: result.bytes, totalBytes: result.bytes });
    }
    expect(result.downloadMs).toBeGreaterThanOrEqual(0);
    expect(result.restoreMs).toBeGreaterThan(0);
    expect(await pgTableDigests(pgTarget, 'shop_api')).toEqual(atRun2);
  }, 60_000);
});

describe('MariaDB', () => {
  const RUN = '20261126T100000Z';
  let atRun: Record<string, string>;
  const targetUrl = () => `mariadb://${myTarget.user}@${myTarget.host}:${myTarget.port}`;

  beforeAll(async () => {
    atRun = await myDigests(mySource);
    await verifiedRun('catalogue', RUN, [
      '--source-url', `mariadb://${mySource.user}@${mySource.host}:${mySource.port}/`, '--databases', MARIADB_DATABASES.join(','), '--tier', 'tier2',
    ]);
  }, 120_000);

  test('latest from the primary: every table equals the source; refused when non-empty, replaced with --clean; by run id from the offsite bucket', async () => {
    const first = await restore(['catalogue', '--target-url', targetUrl(), '--bucket', PRIMARY]);
    expect(first.err).not.toContain('restore failed');
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/crm \(.*\) → database crm on mariadb/);
    expect(await myDigests(myTarget)).toEqual(atRun);

    await myTarget.sql('DELETE FROM shop.`Kunden Ümlaut` WHERE id = 1;');
    const changed = await myDigests(myTarget);
    const refused = await restore(['catalogue', '--target-url', targetUrl(), '--bucket', PRIMARY]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/TargetNotEmpty: database shop on 127\.0\.0\.1:\d+ has \d+ table\(s\) \(shop\.\S+.*\) that the restore would drop/);
    expect(await myDigests(myTarget)).toEqual(changed);

    const replicator = new LocalReplicator({ source: s3.client(), sourceBucket: PRIMARY, destination: s3.client(), destinationBucket: OFFSITE });
    await replicator.copyNew();
    const cleaned = await restore(['catalogue', '--target-url', targetUrl(), '--from', 'offsite', '--run', RUN, '--clean']);
    expect(cleaned.err).not.toContain('restore failed');
    expect(cleaned.code).toBe(0);
    expect(cleaned.out).toContain(`from s3://${OFFSITE} (offsite`);
    expect(await myDigests(myTarget)).toEqual(atRun);
  }, 90_000);
});

describe('run choice', () => {
  const BUCKET = 'choice';
  beforeAll(async () => {
    await s3.createBucket(BUCKET);
    const client = s3.client();
    await writeRun(client, BUCKET, buildRun('orders', '20261126T010000Z'));
    await writeRun(client, BUCKET, buildRun('orders', '20261126T020000Z'));
    await writeRun(client, BUCKET, buildRun('orders', '20261126T030000Z'), { verification: 'failed' });
    await writeRun(client, BUCKET, buildRun('orders', '20261126T040000Z'), { verification: 'none' });
  });

  test.each([
    [{}, '20261126T020000Z'],
    [{ at: new Date('2026-11-26T01:59:59Z') }, '20261126T010000Z'],
    [{ at: new Date('2026-11-26T02:00:00Z') }, '20261126T020000Z'],
    [{ at: new Date('2026-11-26T23:00:00Z') }, '20261126T020000Z'],
    [{ runId: '20261126T010000Z' }, '20261126T010000Z'],
  ])('%j → %s', async (opts, runId) => {
    const run = await chooseRun(s3.client(), BUCKET, 'orders', opts);
    expect(run).toMatchObject({ runId, status: 'verified' });
    expect(run.manifest?.runId).toBe(runId);
  });

  test.each([
    [{ runId: '20261126T030000Z' }, 'RunNotVerified', /orders\/20261126T030000Z .* is failed, not verified: verification failed/],
    [{ runId: '20261126T040000Z' }, 'RunNotVerified', /is unverified, not verified: not verified: no verification.json/],
    [{ runId: '20261126T050000Z' }, 'RunNotVerified', /does not exist .* 4 run\(s\) exist/],
    [{ at: new Date('2026-11-26T00:30:00Z') }, 'NoVerifiedRun',
      /no verified run of source orders at or before 2026-11-26T00:30:00.000Z in s3:\/\/choice\/: 4 run\(s\) exist: 1 unverified, 1 failed, 2 verified; verified runs from 20261126T010000Z to 20261126T020000Z/],
  ])('%j is refused: %s', async (opts, name, message) => {
    await expect(chooseRun(s3.client(), BUCKET, 'orders', opts)).rejects.toMatchObject({ name, message: expect.stringMatching(message) });
  });

  test('a source without runs names the sources the bucket has', async () => {
    await expect(chooseRun(s3.client(), BUCKET, 'nothing', {})).rejects.toMatchObject({
      name: 'NoVerifiedRun', message: expect.stringMatching(/no run of nothing at all \(sources with runs: orders\)/),
    });
  });
});
