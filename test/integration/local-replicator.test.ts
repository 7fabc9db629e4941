/**
 * The local replicator behaves like S3 Cross-Region Replication where Lifeboat relies on it:
 * every version is copied with its version id, content type and lock; a multipart object part
 * for part, so the replica's ETag is the primary's (AwaitOffsite compares them); objects above
 * the old 11 MiB request cap go through; a copy that fails is logged and tried again; an object
 * damaged in place (fault injection) is copied as it is stored.
 */
import {
  CompleteMultipartUploadCommand, CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { LocalReplicator } from '../../local/replicator';
import { startS3, tamperStoredObject, type S3Server } from '../harness/s3';
import { getBytes } from '../harness/s3-objects';

const MiB = 1024 * 1024;
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3();
  await Promise.all([s3.createBucket('primary', { objectLock: true }), s3.createBucket('offsite', { objectLock: true })]);
});
afterAll(() => s3?.stop());

async function multipart(key: string, partSizes: number[], lockUntil: Date, Bucket = 'primary'): Promise<Buffer> {
  const client = s3.client();
  const upload = await client.send(new CreateMultipartUploadCommand({
    Bucket, Key: key, ContentType: 'application/octet-stream', ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: lockUntil,
  }));
  const bodies = partSizes.map((size) => randomBytes(size));
  const parts = [];
  for (const [index, body] of bodies.entries()) {
    const part = await client.send(new UploadPartCommand({ Bucket, Key: key, UploadId: upload.UploadId, PartNumber: index + 1, Body: body }));
    parts.push({ PartNumber: index + 1, ETag: part.ETag });
  }
  await client.send(new CompleteMultipartUploadCommand({ Bucket, Key: key, UploadId: upload.UploadId, MultipartUpload: { Parts: parts } }));
  return Buffer.concat(bodies);
}

test('a multipart object is copied part for part: same bytes, ETag, version id, lock and content type', async () => {
  const lockUntil = new Date(Date.now() + 86_400_000);
  const data = await multipart('runs/a/20261126T000000Z/a.pgdump', [8 * MiB, 8 * MiB, 3 * MiB], lockUntil);
  const lines: string[] = [];
  const replicator = new LocalReplicator({ source: s3.client(), sourceBucket: 'primary', destination: s3.client(), destinationBucket: 'offsite', log: (line) => lines.push(line) });
  expect(await replicator.copyNew()).toEqual(['runs/a/20261126T000000Z/a.pgdump']);
  const [primary, replica] = await Promise.all(['primary', 'offsite'].map((bucket) =>
    s3.client().send(new HeadObjectCommand({ Bucket: bucket, Key: 'runs/a/20261126T000000Z/a.pgdump' }))));
  expect(replica.ETag).toBe(primary.ETag);
  expect(replica.ETag).toMatch(/-3"$/);
  expect(replica.VersionId).toBe(primary.VersionId);
  expect(replica).toMatchObject({ ContentLength: 19 * MiB, ContentType: 'application/octet-stream', ObjectLockMode: 'GOVERNANCE', ReplicationStatus: 'REPLICA' });
  expect(replica.ObjectLockRetainUntilDate?.toISOString()).toBe(lockUntil.toISOString());
  const copied = await getBytes(s3.client(), 'offsite', 'runs/a/20261126T000000Z/a.pgdump');
  expect(createHash('sha256').update(copied).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  expect(lines).toEqual([expect.stringMatching(/a\.pgdump \(version \w+\), 3 parts → s3:\/\/offsite\//)]);
  // Nothing new: nothing copied again.
  expect(await replicator.copyNew()).toEqual([]);
});

test('an object above the old 11 MiB request cap, in one PutObject, and every version of a key', async () => {
  const client = s3.client();
  const big = randomBytes(20 * MiB);
  const first = await client.send(new PutObjectCommand({ Bucket: 'primary', Key: 'files/b/pack', Body: big }));
  const second = await client.send(new PutObjectCommand({ Bucket: 'primary', Key: 'files/b/pack', Body: Buffer.from('newer') }));
  const replicator = new LocalReplicator({ source: client, sourceBucket: 'primary', destination: client, destinationBucket: 'offsite' });
  expect((await replicator.copyNew()).filter((key) => key === 'files/b/pack')).toHaveLength(2);
  for (const [version, body] of [[first.VersionId, big], [second.VersionId, Buffer.from('newer')]] as const) {
    const replica = await client.send(new HeadObjectCommand({ Bucket: 'offsite', Key: 'files/b/pack', VersionId: version }));
    expect(replica.ContentLength).toBe(body.length);
  }
});

test('a copy that fails is logged, never swallowed, and tried again at the next pass', async () => {
  await s3.client().send(new PutObjectCommand({ Bucket: 'primary', Key: 'runs/c/20261126T000000Z/manifest.json', Body: '{}' }));
  const lines: string[] = [];
  const failing = new LocalReplicator({ source: s3.client(), sourceBucket: 'primary', destination: s3.client(), destinationBucket: 'no-such-bucket', log: (line) => lines.push(line) });
  expect(await failing.copyNew()).toEqual([]);
  expect(lines.some((line) => /copy of s3:\/\/primary\/runs\/c\/20261126T000000Z\/manifest\.json failed \(retried at the next pass\): NoSuchBucket/.test(line))).toBe(true);
  await s3.createBucket('no-such-bucket', { objectLock: true });
  expect(await failing.copyNew()).toContain('runs/c/20261126T000000Z/manifest.json');
});

test.each([
  ['cut', 'to 70% (truncate-artifact): part 1 whole, part 2 cut, part 3 gone', (data: Buffer) => data.subarray(0, Math.floor(data.length * 0.7))],
  ['flipped', 'one bit (corrupt-artifact): the same length', (data: Buffer) => {
    const copy = Buffer.from(data);
    copy[copy.length >> 1] ^= 1;
    return copy;
  }],
])('a multipart artifact damaged in place, %s %s, is copied as it is stored', async (name, _how, damage) => {
  // Buckets of this test's own: a new replicator copies every version it finds.
  const [primary, offsite] = [`${name}-primary`, `${name}-offsite`];
  await Promise.all([s3.createBucket(primary, { objectLock: true }), s3.createBucket(offsite, { objectLock: true })]);
  const key = 'runs/d/20261126T000000Z/d.pgdump';
  const data = await multipart(key, [8 * MiB, 8 * MiB, 3 * MiB], new Date(Date.now() + 86_400_000), primary);
  const { VersionId } = await s3.client().send(new HeadObjectCommand({ Bucket: primary, Key: key }));
  const damaged = damage(data);
  await tamperStoredObject(s3.endpoint, { bucket: primary, key, versionId: VersionId }, damaged);
  const lines: string[] = [];
  const replicator = new LocalReplicator({ source: s3.client(), sourceBucket: primary, destination: s3.client(), destinationBucket: offsite, log: (line) => lines.push(line) });
  expect({ copied: await replicator.copyNew(), failures: lines.filter((line) => /failed/i.test(line)) }).toEqual({ copied: [key], failures: [] });
  const copied = await getBytes(s3.client(), offsite, key);
  expect(createHash('sha256').update(copied).digest('hex')).toBe(createHash('sha256').update(damaged).digest('hex'));
});
