/**
 * The Commit step against a real S3-compatible server: the ok verdict is written once, with
 * If-None-Match, only when it vouches for the manifest in the bucket.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { readRun } from '../../lib/catalog/catalog';
import { verificationKey } from '../../lib/domain/layout';
import { serializeVerification, type Verification } from '../../lib/domain/verification';
import { commit } from '../../lib/steps/commit';
import { manifestSummary } from '../../worker/main';
import { buildRun, put, verificationFor, writeRun, type RunFiles } from '../fixtures/runs';
import { getBytes, listKeys } from '../harness/s3-objects';
import { startS3, type S3Server } from '../harness/s3';

const BUCKET = 'primary';
let server: S3Server;
let s3: S3Client;
let slot = 0;

beforeAll(async () => {
  server = await startS3();
  s3 = server.client();
  await server.createBucket(BUCKET);
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

/** A fresh dumped-but-uncommitted run (its own slot), its summary and the verifier's ok verdict. */
async function dumpedRun(source = 'orders'): Promise<{ run: RunFiles; dump: ReturnType<typeof manifestSummary>; verification: Verification }> {
  const runId = new Date(Date.UTC(2026, 10, 26, 3, 0, 0) + slot++ * 900_000).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  const run = buildRun(source, runId, { databases: ['orders', 'customers'] });
  await writeRun(s3, BUCKET, run, { verification: 'none' });
  return { run, dump: manifestSummary(run.manifest, BUCKET), verification: verificationFor(run.manifest) };
}

async function verificationText(run: RunFiles): Promise<string | undefined> {
  const key = verificationKey(run.manifest.source, run.manifest.runId);
  const keys = await listKeys(s3, BUCKET, key);
  return keys.includes(key) ? (await getBytes(s3, BUCKET, key)).toString('utf8') : undefined;
}

const deps = () => ({ s3, bucket: BUCKET });

test('an ok verdict that matches the manifest is written, and from then on the run counts', async () => {
  const { run, dump, verification } = await dumpedRun();
  expect((await readRun(s3, BUCKET, 'orders', run.manifest.runId)).status).toBe('unverified');

  const result = await commit({ dump, verification }, deps());

  expect(result).toEqual({
    committed: true,
    source: 'orders',
    runId: run.manifest.runId,
    verificationKey: verificationKey('orders', run.manifest.runId),
    alreadyCommitted: false,
  });
  expect(await verificationText(run)).toBe(serializeVerification(verification));
  expect((await readRun(s3, BUCKET, 'orders', run.manifest.runId)).status).toBe('verified');
});

test('a retried invocation with the same verdict succeeds without writing again', async () => {
  const { run, dump, verification } = await dumpedRun();
  await commit({ dump, verification }, deps());
  const written = await verificationText(run);

  const retried = await commit({ dump, verification: structuredClone(verification) }, deps());

  expect(retried.alreadyCommitted).toBe(true);
  expect(await verificationText(run)).toBe(written);
});

test('another verification already at the key: AlreadyCommitted, and the file is left as it was', async () => {
  const { run, dump, verification } = await dumpedRun();
  const earlier = verificationFor(run.manifest, 'ok', '2026-11-26T03:00:30.000Z');
  await put(s3, BUCKET, verificationKey('orders', run.manifest.runId), serializeVerification(earlier));

  await expect(commit({ dump, verification }, deps())).rejects.toMatchObject({
    name: 'AlreadyCommitted',
    message: expect.stringMatching(/already has s3:\/\/primary\/runs\/orders\/.*\/verification\.json: verdict ok from 2026-11-26T03:00:30\.000Z .*never overwritten/),
  });
  expect(await verificationText(run)).toBe(serializeVerification(earlier));
});

test('two commits racing for one run: exactly one writes, the other is AlreadyCommitted', async () => {
  const { run, dump, verification } = await dumpedRun();
  const other = { ...verification, verifiedBy: 'fargate' };
  const outcomes = await Promise.allSettled([commit({ dump, verification }, deps()), commit({ dump, verification: other }, deps())]);
  const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
  const lost = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  expect(won).toHaveLength(1);
  expect(lost.map((outcome) => (outcome.reason as Error).name)).toEqual(['AlreadyCommitted']);
  expect([serializeVerification(verification), serializeVerification(other)]).toContain(await verificationText(run));
});

describe('refuses to commit what was not verified', () => {
  test.each<[string, (v: Verification) => unknown, RegExp]>([
    ['another sha256 for an artifact', (v) => ({ ...v, artifacts: v.artifacts.map((a, i) => (i === 0 ? { ...a, sha256: 'f'.repeat(64) } : a)) }),
      /does not match manifest\.json: runs\/orders\/\d{8}T\d{6}Z\/orders\.pgdump: sha256 f{64} verified/],
    ['another byte count', (v) => ({ ...v, artifacts: v.artifacts.map((a) => ({ ...a, bytes: a.bytes + 1 })) }), /bytes verified, \d+ in the manifest/],
    ['an artifact left out', (v) => ({ ...v, artifacts: v.artifacts.slice(1) }), /orders\.pgdump was not verified/],
    ['another run', (v) => ({ ...v, runId: '20200101T000000Z' }), /the verdict is about orders\/20200101T000000Z/],
    ['an ok verdict with a failed check', (v) => ({ ...v, artifacts: v.artifacts.map((a) => ({ ...a, checks: [{ name: 'full-read', ok: false, detail: 'x' }] })) }),
      /check\(s\) full-read failed/],
    ['no verification at all', () => undefined, /the verifier returned no verification/],
    ['something that is not a verification', () => ({ verdict: 'ok' }), /not a valid verification \(schemaVersion/],
  ])('%s: NotVerified, nothing written', async (_case, change, message) => {
    const { run, dump, verification } = await dumpedRun();
    await expect(commit({ dump, verification: change(verification) }, deps())).rejects.toMatchObject({ name: 'NotVerified', message: expect.stringMatching(message) });
    expect(await verificationText(run)).toBeUndefined();
  });

  test('a failed verdict is recorded (Commit is the one writer of verification.json) and fails with its own error', async () => {
    const { run, dump, verification } = await dumpedRun();
    const failed: Verification = { ...verification, verdict: 'failed', error: { name: 'ArchiveCorrupt', message: 'pg_restore: unexpected end of file' } };
    await expect(commit({ dump, verification: failed }, deps())).rejects.toMatchObject({
      name: 'ArchiveCorrupt', message: expect.stringMatching(/^pg_restore: unexpected end of file \(recorded in s3:\/\/.+\/verification\.json\)$/),
    });
    expect(await verificationText(run)).toBe(serializeVerification(failed));
    // A retried invocation finds it there and fails the same way, without overwriting it.
    await expect(commit({ dump, verification: failed }, deps())).rejects.toMatchObject({ name: 'ArchiveCorrupt' });
    expect(await verificationText(run)).toBe(serializeVerification(failed));
  });

  test('a dump summary that disagrees with manifest.json', async () => {
    const { run, dump, verification } = await dumpedRun();
    const tampered = { ...dump, artifacts: dump.artifacts.map((a) => ({ ...a, sha256: '0'.repeat(64) })) };
    await expect(commit({ dump: tampered, verification }, deps())).rejects.toMatchObject({
      name: 'NotVerified', message: expect.stringMatching(/the dump summary says \d+ bytes sha256 0{64}, manifest\.json/),
    });
    expect(await verificationText(run)).toBeUndefined();
  });

  test('no manifest.json in the bucket', async () => {
    const run = buildRun('orders', '20261201T000000Z');
    await expect(commit({ dump: manifestSummary(run.manifest, BUCKET), verification: verificationFor(run.manifest) }, deps())).rejects.toMatchObject({
      name: 'NotVerified', message: expect.stringContaining('s3://primary/runs/orders/20261201T000000Z/manifest.json does not exist'),
    });
  });

  test('a corrupt manifest.json', async () => {
    const run = buildRun('orders', '20261202T000000Z');
    await writeRun(s3, BUCKET, run, { manifestText: '{"schemaVersion":', verification: 'none' });
    await expect(commit({ dump: manifestSummary(run.manifest, BUCKET), verification: verificationFor(run.manifest) }, deps())).rejects.toMatchObject({
      name: 'NotVerified', message: expect.stringMatching(/manifest\.json: not JSON/),
    });
  });
});

test('a verifier result that carries the document under "verification" is accepted', async () => {
  const { run, dump, verification } = await dumpedRun();
  await commit({ dump, verification: { verification, durationMs: 10 } }, deps());
  expect(await verificationText(run)).toBe(serializeVerification(verification));
});

test.each<[string, unknown, RegExp]>([
  ['no dump', { verification: {} }, /Commit: invalid input \(dump: /],
  ['a dump without artifacts', { dump: { source: 'orders', runId: '20261126T030000Z', bucket: BUCKET, manifestKey: 'k', artifacts: [], bytes: 0, durationSeconds: 1 } }, /dump\.artifacts/],
  ['a bad run id', { dump: { source: 'orders', runId: 'yesterday' } }, /dump\.runId: expected a run id/],
  ['null', null, /Commit: invalid input/],
])('input with %s: InvalidInput', async (_case, input, message) => {
  await expect(commit(input, deps())).rejects.toMatchObject({ name: 'InvalidInput', message: expect.stringMatching(message) });
});

test('a summary naming another bucket: InvalidInput, nothing read or written', async () => {
  const { run, dump, verification } = await dumpedRun();
  await expect(commit({ dump: { ...dump, bucket: 'elsewhere' }, verification }, deps())).rejects.toMatchObject({
    name: 'InvalidInput', message: expect.stringContaining('names bucket elsewhere, this function commits to primary'),
  });
  expect(await verificationText(run)).toBeUndefined();
});
