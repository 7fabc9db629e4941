/**
 * AwaitOffsite against a real S3-compatible server holding two buckets, primary and offsite.
 * Replication is what no local server does: the tests copy objects into the offsite bucket
 * (or leave them out, or copy other bytes) the way replication would (or would not).
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readRun } from '../../lib/catalog/catalog';
import { manifestKey, offsiteKey, verificationKey } from '../../lib/domain/layout';
import { parseOffsite } from '../../lib/domain/offsite';
import { awaitOffsite, type AwaitOffsiteDeps } from '../../lib/steps/await-offsite';
import { manifestSummary } from '../../worker/main';
import { buildRun, put, writeRun, type RunFiles } from '../fixtures/runs';
import { getBytes, listKeys } from '../harness/s3-objects';
import { startS3, type S3Server } from '../harness/s3';

const PRIMARY = 'primary';
const OFFSITE = 'offsite';
let server: S3Server;
let s3: S3Client;
let slot = 0;

beforeAll(async () => {
  server = await startS3();
  s3 = server.client();
  await server.createBucket(PRIMARY);
  await server.createBucket(OFFSITE);
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

/** A committed run in the primary bucket (its own slot) and its keys. */
async function committedRun(): Promise<{ run: RunFiles; dump: ReturnType<typeof manifestSummary>; keys: string[] }> {
  const runId = new Date(Date.UTC(2026, 10, 26, 3, 0, 0) + slot++ * 900_000).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  const run = buildRun('orders', runId, { databases: ['orders', 'customers'] });
  await writeRun(s3, PRIMARY, run);
  const keys = await listKeys(s3, PRIMARY, `runs/orders/${runId}/`);
  return { run, dump: manifestSummary(run.manifest, PRIMARY), keys };
}

/** What replication does: the same bytes under the same key in the offsite bucket. */
async function replicate(keys: readonly string[]): Promise<void> {
  await Promise.all(keys.map(async (key) => put(s3, OFFSITE, key, await getBytes(s3, PRIMARY, key))));
}

/** `minutes` after the fixture run's dump finished. */
const after = (run: RunFiles, minutes: number) => () => new Date(Date.parse(run.manifest.finishedAt) + minutes * 60_000);

function deps(overrides: Partial<AwaitOffsiteDeps> = {}): AwaitOffsiteDeps {
  return { primary: s3, offsite: s3, bucket: PRIMARY, offsiteBucket: OFFSITE, offsiteRegion: 'eu-west-1', maxAttempts: 16, ...overrides };
}

async function hasOffsiteJson(run: RunFiles): Promise<boolean> {
  const key = offsiteKey(run.manifest.source, run.manifest.runId);
  return (await listKeys(s3, PRIMARY, key)).includes(key);
}

test('every object there with the same content: offsite.json in the primary bucket, present with the lag', async () => {
  const { run, dump, keys } = await committedRun();
  await replicate(keys);

  const result = await awaitOffsite({ dump, offsite: { attempts: 0, present: false } }, deps({ now: after(run, 2.5) }));

  expect(result).toEqual({ present: true, attempts: 1, lagSeconds: 150 });
  const { source, runId } = run.manifest;
  const confirmation = parseOffsite((await getBytes(s3, PRIMARY, offsiteKey(source, runId))).toString('utf8'));
  expect(confirmation).toMatchObject({ source, runId, region: 'eu-west-1', bucket: OFFSITE, lagSeconds: 150 });
  expect(confirmation.objects.map((object) => object.key).sort()).toEqual([...keys].sort());
  const artifact = run.manifest.artifacts[0];
  expect(confirmation.objects).toContainEqual({ key: artifact.key, bytes: artifact.bytes, sha256: artifact.sha256 });
  // Written to the primary only (replication carries it on), and the catalog sees it.
  expect(await listKeys(s3, OFFSITE, offsiteKey(source, runId))).toEqual([]);
  expect((await readRun(s3, PRIMARY, source, runId)).offsite?.lagSeconds).toBe(150);
});

test('a missing copy: not present yet, the key named, nothing written', async () => {
  const { run, dump, keys } = await committedRun();
  const absent = run.manifest.artifacts[1].key;
  await replicate(keys.filter((key) => key !== absent));

  const result = await awaitOffsite({ dump, offsite: { attempts: 4 } }, deps());

  expect(result).toEqual({ present: false, attempts: 5, missing: [absent] });
  expect(await hasOffsiteJson(run)).toBe(false);
});

test('no offsite poll state yet counts as the first attempt', async () => {
  const { dump } = await committedRun();
  expect(await awaitOffsite({ dump }, deps())).toMatchObject({ present: false, attempts: 1 });
  expect(await awaitOffsite({ dump, offsite: null }, deps())).toMatchObject({ present: false, attempts: 1 });
});

test.each<[string, (run: RunFiles) => { key: string; body: Buffer | string }]>([
  ['an artifact with other bytes of the same size', (run) => {
    const artifact = run.manifest.artifacts[0];
    const original = run.objects.get(artifact.key) as Buffer;
    return { key: artifact.key, body: Buffer.from(original.toString('utf8').replace('PGDMP', 'XXXXX')) };
  }],
  ['a truncated artifact', (run) => {
    const artifact = run.manifest.artifacts[0];
    return { key: artifact.key, body: (run.objects.get(artifact.key) as Buffer).subarray(0, 100) };
  }],
  ['another manifest.json', (run) => ({ key: manifestKey(run.manifest.source, run.manifest.runId), body: '{"another": "manifest"}' })],
  ['another verification.json', (run) => ({ key: verificationKey(run.manifest.source, run.manifest.runId), body: '{}' })],
])('%s in the offsite bucket does not count as the copy', async (_case, damage) => {
  const { run, dump, keys } = await committedRun();
  const damaged = damage(run);
  await replicate(keys.filter((key) => key !== damaged.key));
  await put(s3, OFFSITE, damaged.key, damaged.body);

  expect(await awaitOffsite({ dump, offsite: { attempts: 0 } }, deps())).toEqual({ present: false, attempts: 1, missing: [damaged.key] });
  expect(await hasOffsiteJson(run)).toBe(false);
  await expect(awaitOffsite({ dump, offsite: { attempts: 15 } }, deps())).rejects.toMatchObject({
    name: 'OffsiteMissing',
    message: expect.stringContaining(`different in s3://offsite in eu-west-1: ${damaged.key} (`),
  });
});

test('a copy that appears on the third check: the state machine loop, step by step', async () => {
  const { run, dump, keys } = await committedRun();
  let state: unknown = { attempts: 0, present: false };
  const outcomes: unknown[] = [];
  for (let check = 1; check <= 3; check++) {
    if (check === 3) await replicate(keys);
    state = await awaitOffsite({ dump, offsite: state }, deps({ now: after(run, check) }));
    outcomes.push(state);
  }
  expect(outcomes).toEqual([
    { present: false, attempts: 1, missing: expect.arrayContaining(keys) },
    { present: false, attempts: 2, missing: expect.arrayContaining(keys) },
    { present: true, attempts: 3, lagSeconds: 180 },
  ]);
  expect(await hasOffsiteJson(run)).toBe(true);
});

test('attempts used up: OffsiteMissing names the keys, the offsite bucket and region, and the time waited', async () => {
  const { run, dump, keys } = await committedRun();
  const absent = [run.manifest.artifacts[0].key, manifestKey('orders', run.manifest.runId)];
  await replicate(keys.filter((key) => !absent.includes(key)));

  // Checks 1 and 2 of 3 say "not yet"; the third gives up.
  await expect(awaitOffsite({ dump, offsite: { attempts: 1 } }, deps({ maxAttempts: 3 }))).resolves.toMatchObject({ present: false, attempts: 2 });
  const failure = awaitOffsite({ dump, offsite: { attempts: 2 } }, deps({ maxAttempts: 3, now: after(run, 16) }));

  await expect(failure).rejects.toMatchObject({ name: 'OffsiteMissing' });
  const message = ((await failure.catch((error: unknown) => error)) as Error).message;
  expect(message).toContain(`the offsite copy of orders/${run.manifest.runId} is not confirmed after 3 checks, 16m after the dump finished`);
  expect(message).toContain(`missing from s3://offsite in eu-west-1: ${absent.join(', ')}`);
  expect(message).toContain('The primary backup stays verified');
  expect(await hasOffsiteJson(run)).toBe(false);
});

test('a retried invocation after the confirmation was written returns what it says', async () => {
  const { run, dump, keys } = await committedRun();
  await replicate(keys);
  const first = await awaitOffsite({ dump, offsite: { attempts: 0 } }, deps({ now: after(run, 1) }));
  const retried = await awaitOffsite({ dump, offsite: { attempts: 0 } }, deps({ now: after(run, 2) }));
  expect(first).toEqual({ present: true, attempts: 1, lagSeconds: 60 });
  expect(retried).toEqual({ present: true, attempts: 1, lagSeconds: 60 });
});

test('a run that is not committed has nothing to wait for: the error says so', async () => {
  const runId = '20261130T000000Z';
  const run = buildRun('orders', runId);
  await writeRun(s3, PRIMARY, run, { verification: 'none' });
  await expect(awaitOffsite({ dump: manifestSummary(run.manifest, PRIMARY) }, deps())).rejects.toMatchObject({
    name: 'InvalidInput', message: expect.stringContaining(`orders/${runId} is not committed`),
  });
});

test('locally the artifact comparison goes by ETag: the server returns one (and no checksum) on HEAD', async () => {
  // The checksum path (what S3 returns with ChecksumMode ENABLED) is covered by the unit tests
  // of checksumDifference; here the "same size, other bytes" case above is caught by the ETag.
  const { run } = await committedRun();
  const head = await s3.send(new HeadObjectCommand({ Bucket: PRIMARY, Key: run.manifest.artifacts[0].key, ChecksumMode: 'ENABLED' }));
  expect(head.ETag).toMatch(/^"[0-9a-f]{32}"$/);
});
