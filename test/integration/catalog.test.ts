/**
 * The catalog against a real S3-compatible server: status derivation, ordering, pagination,
 * point-in-time lookups, corrupt files, and how many requests it takes.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { latestVerifiedRun, listRuns, listSources, readRun, type RunRecord } from '../../lib/catalog/catalog';
import { serializeManifest } from '../../lib/domain/manifest';
import { serializeVerification } from '../../lib/domain/verification';
import { buildRun, put, verificationFor, writeRun } from '../fixtures/runs';
import { startS3, type S3Server } from '../harness/s3';

let server: S3Server;
let s3: S3Client;
let bucketCount = 0;

beforeAll(async () => {
  server = await startS3();
  s3 = server.client();
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

async function newBucket(): Promise<string> {
  const name = `catalog-${++bucketCount}`;
  await server.createBucket(name);
  return name;
}

/** A client that records the operations it sends: `GetObjectCommand runs/…`. */
function recordingClient(): { client: S3Client; sent: string[] } {
  const client = server.client();
  const sent: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string; Prefix?: string };
      sent.push(`${context.commandName} ${input.Key ?? input.Prefix ?? ''}`);
      return next(args);
    },
    { step: 'initialize', name: 'recordOperations' },
  );
  return { client, sent };
}

const summary = (records: RunRecord[]) => records.map((record) => `${record.runId} ${record.status}`);

test('an empty bucket has no sources, no runs and no verified run', async () => {
  const bucket = await newBucket();
  expect(await listSources(s3, bucket)).toEqual([]);
  expect(await listRuns(s3, bucket, 'orders')).toEqual([]);
  expect(await latestVerifiedRun(s3, bucket, 'orders')).toBeUndefined();
  const missing = await readRun(s3, bucket, 'orders', '20261126T030000Z');
  expect(missing).toMatchObject({ source: 'orders', runId: '20261126T030000Z', status: 'unverified', objects: [] });
  expect(missing.reason).toMatch(/no manifest\.json/);
});

describe('status derivation', () => {
  let bucket: string;
  const runs = {
    verified: buildRun('orders', '20261126T030000Z'),
    failed: buildRun('orders', '20261126T031500Z'),
    interrupted: buildRun('orders', '20261126T033000Z'),
    pending: buildRun('orders', '20261126T034500Z'),
    corruptManifest: buildRun('orders', '20261126T040000Z'),
    corruptVerification: buildRun('orders', '20261126T041500Z'),
    invalidVerification: buildRun('orders', '20261126T043000Z'),
    otherArtifacts: buildRun('orders', '20261126T044500Z'),
    corruptOffsite: buildRun('orders', '20261126T050000Z'),
    offsite: buildRun('orders', '20261126T051500Z'),
    artifactMissing: buildRun('orders', '20261126T053000Z'),
    globalsMissing: buildRun('orders', '20261126T054500Z'),
  };

  beforeAll(async () => {
    bucket = await newBucket();
    const otherBytes = buildRun('orders', '20261126T044500Z', { seed: 'another dump' }).manifest;
    await Promise.all([
      writeRun(s3, bucket, runs.verified),
      writeRun(s3, bucket, runs.failed, { verification: 'failed' }),
      writeRun(s3, bucket, runs.interrupted, { manifest: false, verification: 'none' }),
      writeRun(s3, bucket, runs.pending, { verification: 'none' }),
      writeRun(s3, bucket, runs.corruptManifest, { manifestText: '{"schemaVersion": 1, "sou' }),
      writeRun(s3, bucket, runs.corruptVerification, { verification: { text: 'not json at all' } }),
      writeRun(s3, bucket, runs.invalidVerification, {
        verification: { text: JSON.stringify({ ...verificationFor(runs.invalidVerification.manifest), verdict: 'maybe' }) },
      }),
      writeRun(s3, bucket, runs.otherArtifacts, { verification: { text: serializeVerification(verificationFor(otherBytes)) } }),
      writeRun(s3, bucket, runs.corruptOffsite, { offsite: { text: '{' } }),
      writeRun(s3, bucket, runs.offsite, { offsite: true }),
      writeRun(s3, bucket, runs.artifactMissing, { withoutObjects: [runs.artifactMissing.manifest.artifacts[0].key] }),
      writeRun(s3, bucket, runs.globalsMissing, { withoutObjects: [runs.globalsMissing.manifest.globals?.key as string] }),
    ]);
  });

  test('each run gets the status its files give it, and a reason when it does not count', async () => {
    const records = await listRuns(s3, bucket, 'orders');
    const byRun = new Map(records.map((record) => [record.runId, record]));
    const status = (run: { manifest: { runId: string } }) => byRun.get(run.manifest.runId);

    expect(status(runs.verified)).toMatchObject({ status: 'verified', manifest: runs.verified.manifest });
    expect(status(runs.verified)?.reason).toBeUndefined();
    expect(status(runs.verified)?.verification?.verdict).toBe('ok');
    expect(status(runs.failed)).toMatchObject({ status: 'failed', reason: expect.stringContaining('ChecksumMismatch') });
    expect(status(runs.interrupted)).toMatchObject({ status: 'unverified', reason: expect.stringMatching(/no manifest\.json.*interrupted/) });
    expect(status(runs.interrupted)?.objects.map((object) => object.key).sort()).toEqual([...runs.interrupted.objects.keys()].sort());
    expect(status(runs.pending)).toMatchObject({ status: 'unverified', reason: 'not verified: no verification.json' });
    expect(status(runs.corruptManifest)).toMatchObject({ status: 'unverified', reason: expect.stringMatching(/manifest\.json: not JSON/) });
    expect(status(runs.corruptManifest)?.manifest).toBeUndefined();
    expect(status(runs.corruptVerification)).toMatchObject({ status: 'unverified', reason: expect.stringMatching(/verification\.json: not JSON/) });
    expect(status(runs.invalidVerification)).toMatchObject({ status: 'unverified', reason: expect.stringMatching(/verdict/) });
    expect(status(runs.otherArtifacts)).toMatchObject({
      status: 'unverified',
      reason: expect.stringMatching(/does not match manifest\.json: .*orders\.pgdump: sha256/),
    });
    // offsite.json does not decide whether the primary run is a backup: unreadable, it is reported.
    expect(status(runs.corruptOffsite)).toMatchObject({ status: 'verified', reason: expect.stringMatching(/offsite confirmation unreadable: .*offsite\.json/) });
    expect(status(runs.corruptOffsite)?.offsite).toBeUndefined();
    expect(status(runs.offsite)).toMatchObject({ status: 'verified', offsite: { region: 'eu-west-1', runId: runs.offsite.manifest.runId } });
    // Documents without their artifacts (a replica still being copied): not a backup here.
    expect(status(runs.artifactMissing)).toMatchObject({
      status: 'unverified',
      reason: `not restorable from s3://${bucket}/: ${runs.artifactMissing.manifest.artifacts[0].key} is not in the bucket`,
    });
    expect(status(runs.globalsMissing)).toMatchObject({ status: 'unverified', reason: expect.stringMatching(/not restorable .*globals\.sql is not in the bucket/) });
    expect(records).toHaveLength(Object.keys(runs).length);
  });

  test('readRun gives the same record as the listing', async () => {
    for (const run of [runs.verified, runs.failed, runs.interrupted, runs.corruptManifest]) {
      const listed = (await listRuns(s3, bucket, 'orders')).find((record) => record.runId === run.manifest.runId);
      expect(await readRun(s3, bucket, 'orders', run.manifest.runId)).toEqual(listed);
    }
  });

  test('latestVerifiedRun skips failed, unverified and corrupt runs without crashing', async () => {
    // The two newest runs lack an object: the newest restorable one is chosen.
    const latest = await latestVerifiedRun(s3, bucket, 'orders');
    expect(latest?.runId).toBe(runs.offsite.manifest.runId);
    const beforeCorruptOffsite = await latestVerifiedRun(s3, bucket, 'orders', { at: new Date('2026-11-26T04:59:59Z') });
    expect(beforeCorruptOffsite?.runId).toBe(runs.verified.manifest.runId);
  });
});

describe('ordering and point in time', () => {
  let bucket: string;
  const ids = ['20261126T030000Z', '20261126T031500Z', '20261126T033000Z', '20261126T034500Z', '20261126T040000Z'];

  beforeAll(async () => {
    bucket = await newBucket();
    await Promise.all([
      writeRun(s3, bucket, buildRun('orders', ids[0])),
      writeRun(s3, bucket, buildRun('orders', ids[1])),
      writeRun(s3, bucket, buildRun('orders', ids[2]), { verification: 'failed' }),
      writeRun(s3, bucket, buildRun('orders', ids[3])),
      writeRun(s3, bucket, buildRun('orders', ids[4]), { verification: 'none' }),
      // Another source, and a source whose name extends this one's: neither leaks into "orders".
      writeRun(s3, bucket, buildRun('billing', '20261126T050000Z')),
      writeRun(s3, bucket, buildRun('orders-eu', '20261126T050000Z')),
      // Keys that are not a run: ignored.
      put(s3, bucket, 'runs/orders/README.txt', 'hello'),
      put(s3, bucket, 'runs/orders/not-a-run-id/manifest.json', '{}'),
    ]);
  });

  test('runs come oldest first by default, newest first on request, limited after ordering', async () => {
    expect(summary(await listRuns(s3, bucket, 'orders'))).toEqual([
      `${ids[0]} verified`, `${ids[1]} verified`, `${ids[2]} failed`, `${ids[3]} verified`, `${ids[4]} unverified`,
    ]);
    expect((await listRuns(s3, bucket, 'orders', { newestFirst: true })).map((record) => record.runId)).toEqual([...ids].reverse());
    expect((await listRuns(s3, bucket, 'orders', { newestFirst: true, limit: 2 })).map((record) => record.runId)).toEqual([ids[4], ids[3]]);
    expect((await listRuns(s3, bucket, 'orders', { limit: 2 })).map((record) => record.runId)).toEqual([ids[0], ids[1]]);
    expect(await listRuns(s3, bucket, 'orders', { limit: 0 })).toEqual([]);
  });

  test('sources come from the common prefixes under runs/, across pages', async () => {
    expect(await listSources(s3, bucket)).toEqual(['billing', 'orders', 'orders-eu']);
    expect(await listSources(s3, bucket, { pageSize: 1 })).toEqual(['billing', 'orders', 'orders-eu']);
  });

  test.each([
    ['now', undefined, ids[3]],
    ['exactly a verified slot', '2026-11-26T03:45:00Z', ids[3]],
    ['one second before it (the failed run in between is skipped)', '2026-11-26T03:44:59Z', ids[1]],
    ['the first slot', '2026-11-26T03:00:00Z', ids[0]],
    ['before any run', '2026-11-26T02:59:59Z', undefined],
  ])('latestVerifiedRun at %s', async (_case, at, expected) => {
    const latest = await latestVerifiedRun(s3, bucket, 'orders', at ? { at: new Date(at) } : {});
    expect(latest?.runId).toBe(expected);
    if (latest) expect(latest.status).toBe('verified');
  });

  test('latestVerifiedRun lists once and reads only what it needs', async () => {
    const { client, sent } = recordingClient();
    const latest = await latestVerifiedRun(client, bucket, 'orders', { at: new Date('2026-11-26T03:44:59Z') });
    client.destroy();
    expect(latest?.runId).toBe(ids[1]);
    // The failed run: its verdict alone. The verified one: verdict, then manifest (no offsite.json listed).
    expect(sent).toEqual([
      'ListObjectsV2Command runs/orders/',
      `GetObjectCommand runs/orders/${ids[2]}/verification.json`,
      `GetObjectCommand runs/orders/${ids[1]}/verification.json`,
      `GetObjectCommand runs/orders/${ids[1]}/manifest.json`,
    ]);
  });

  test('a listing reads only the JSON files the listing shows, for the runs asked for', async () => {
    const { client, sent } = recordingClient();
    await listRuns(client, bucket, 'orders', { newestFirst: true, limit: 1 });
    client.destroy();
    expect(sent).toEqual(['ListObjectsV2Command runs/orders/', `GetObjectCommand runs/orders/${ids[4]}/manifest.json`]);
  });
});

describe('pagination', () => {
  test('more than 1000 keys: every run is listed once, across pages of the default size', async () => {
    const bucket = await newBucket();
    // 1,050 interrupted runs (one artifact each, no JSON to read) and one verified run at the end.
    const start = Date.UTC(2025, 0, 1);
    const runIds = Array.from({ length: 1_050 }, (_, index) => new Date(start + index * 900_000).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, ''));
    for (let index = 0; index < runIds.length; index += 50) {
      await Promise.all(runIds.slice(index, index + 50).map((runId) => put(s3, bucket, `runs/orders/${runId}/orders.pgdump`, runId)));
    }
    const last = buildRun('orders', '20251231T000000Z');
    await writeRun(s3, bucket, last);

    const { client, sent } = recordingClient();
    const records = await listRuns(client, bucket, 'orders');
    expect(records).toHaveLength(1_051);
    expect(new Set(records.map((record) => record.runId)).size).toBe(1_051);
    expect(records.slice(0, 1_050).every((record) => record.status === 'unverified')).toBe(true);
    expect(records.at(-1)).toMatchObject({ runId: last.manifest.runId, status: 'verified' });
    expect(sent.filter((operation) => operation.startsWith('ListObjectsV2')).length).toBe(2);

    sent.length = 0;
    expect((await latestVerifiedRun(client, bucket, 'orders'))?.runId).toBe(last.manifest.runId);
    expect(sent.filter((operation) => operation.startsWith('GetObject'))).toHaveLength(2);
    client.destroy();
  });

  test('small pages give the same runs as one page', async () => {
    const bucket = await newBucket();
    const ids = ['20261126T030000Z', '20261126T031500Z', '20261126T033000Z', '20261126T034500Z'];
    await Promise.all(ids.map((runId, index) => writeRun(s3, bucket, buildRun('orders', runId), { offsite: index % 2 === 0 })));
    const { client, sent } = recordingClient();
    const paged = await listRuns(client, bucket, 'orders', { pageSize: 3 });
    client.destroy();
    expect(paged).toEqual(await listRuns(s3, bucket, 'orders'));
    expect(summary(paged)).toEqual(ids.map((runId) => `${runId} verified`));
    // 4 runs × (2 artifacts + manifest + verification) + 2 offsite.json = 18 keys in pages of 3.
    expect(sent.filter((operation) => operation.startsWith('ListObjectsV2')).length).toBe(6);
    expect(paged.find((record) => record.runId === ids[0])?.offsite?.runId).toBe(ids[0]);
  });
});

test('a manifest that describes another run does not count for this one', async () => {
  const bucket = await newBucket();
  const run = buildRun('orders', '20261126T030000Z');
  const elsewhere = buildRun('orders', '20261126T031500Z');
  await writeRun(s3, bucket, run);
  await put(s3, bucket, 'runs/orders/20261126T031500Z/manifest.json', serializeManifest(run.manifest));
  await put(s3, bucket, 'runs/orders/20261126T031500Z/verification.json', serializeVerification(verificationFor(elsewhere.manifest)));
  const record = await readRun(s3, bucket, 'orders', '20261126T031500Z');
  expect(record).toMatchObject({ status: 'unverified', reason: 'manifest.json describes orders/20261126T030000Z, not orders/20261126T031500Z' });
});
