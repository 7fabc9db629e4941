/**
 * The local S3 server of `lifeboat local up` keeps its state on disk: every bucket, version,
 * delete marker, lock and multipart object survives a stop and a kill -9, byte for byte, and
 * the bytes of versions deleted for good leave the disk.
 */
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand,
  GetObjectLegalHoldCommand, GetObjectRetentionCommand, HeadObjectCommand, ListObjectVersionsCommand, PutObjectCommand,
  PutObjectLegalHoldCommand, UploadPartCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createS3Client } from '../../lib/aws/s3-client';
import { persistentS3, startPersistentS3, stopPersistentS3, TEST_CREDENTIALS, type PersistentS3 } from '../harness/s3';

const MiB = 1024 * 1024;
let dir: string;
let server: PersistentS3;
let s3: S3Client;

const connect = (endpoint: string) => createS3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const body = async (key: string, versionId?: string) =>
  Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'locked', Key: key, VersionId: versionId }))).Body!.transformToByteArray());
/** Every version and marker of the bucket, as S3 lists them. */
const versions = async () => {
  const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: 'locked' }));
  return {
    versions: (listed.Versions ?? []).map((v) => `${v.Key} ${v.VersionId} ${v.Size} ${v.ETag} ${v.IsLatest}`),
    markers: (listed.DeleteMarkers ?? []).map((m) => `${m.Key} ${m.VersionId} ${m.IsLatest}`),
  };
};

async function restart(how: 'stop' | 'kill'): Promise<void> {
  s3.destroy();
  if (how === 'stop') expect(await stopPersistentS3(join(dir, 's3'))).toBe(true);
  else {
    process.kill(server.pid, 'SIGKILL');
    while (persistentS3(join(dir, 's3'))) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  server = await startPersistentS3({ dataDir: join(dir, 's3') });
  s3 = connect(server.endpoint);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-s3-persistence-'));
  server = await startPersistentS3({ dataDir: join(dir, 's3') });
  s3 = connect(server.endpoint);
});

afterAll(async () => {
  s3?.destroy();
  await stopPersistentS3(join(dir, 's3')).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

test('a second start finds the server running and returns it', async () => {
  const again = await startPersistentS3({ dataDir: join(dir, 's3') });
  expect(again).toEqual(server);
});

test('versions, locks, legal holds, delete markers and a multipart object survive a stop, then a kill -9', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'locked', ObjectLockEnabledForBucket: true }));
  await s3.send(new CreateBucketCommand({ Bucket: 'plain' }));
  await s3.send(new PutObjectCommand({ Bucket: 'plain', Key: 'notes/a b.txt', Body: 'unversioned' }));
  const v1 = await s3.send(new PutObjectCommand({ Bucket: 'locked', Key: 'runs/orders/1/manifest.json', Body: '{"v":1}' }));
  const retainUntil = new Date(Date.now() + 86_400_000);
  retainUntil.setMilliseconds(0);
  await s3.send(new PutObjectCommand({
    Bucket: 'locked', Key: 'runs/orders/1/manifest.json', Body: '{"v":2}', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: retainUntil,
  }));
  await s3.send(new PutObjectLegalHoldCommand({ Bucket: 'locked', Key: 'runs/orders/1/manifest.json', VersionId: v1.VersionId, LegalHold: { Status: 'ON' } }));
  await s3.send(new PutObjectCommand({ Bucket: 'locked', Key: 'gone.txt', Body: 'x' }));
  await s3.send(new DeleteObjectCommand({ Bucket: 'locked', Key: 'gone.txt' }));
  const parts = [Buffer.alloc(5 * MiB, 1), Buffer.alloc(MiB + 7, 2)];
  const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'locked', Key: 'runs/orders/1/orders.pgdump' }));
  const etags = [];
  for (const [index, part] of parts.entries()) {
    etags.push((await s3.send(new UploadPartCommand({ Bucket: 'locked', Key: 'runs/orders/1/orders.pgdump', UploadId: upload.UploadId, PartNumber: index + 1, Body: part }))).ETag);
  }
  const completed = await s3.send(new CompleteMultipartUploadCommand({
    Bucket: 'locked', Key: 'runs/orders/1/orders.pgdump', UploadId: upload.UploadId,
    MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
  }));
  const before = await versions();
  expect(before.versions).toHaveLength(4);
  expect(before.markers).toHaveLength(1);

  for (const how of ['stop', 'kill'] as const) {
    if (how === 'kill') {
      // The state is written shortly (100 ms) after each change: a kill after that loses nothing.
      await s3.send(new PutObjectCommand({ Bucket: 'locked', Key: 'late.txt', Body: 'written just before the kill' }));
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await restart(how);
    const after = await versions();
    expect(after.versions.filter((line) => !line.startsWith('late.txt'))).toEqual(before.versions);
    expect(after.markers).toEqual(before.markers);
    expect((await body('runs/orders/1/manifest.json')).toString()).toBe('{"v":2}');
    expect((await body('runs/orders/1/manifest.json', v1.VersionId)).toString()).toBe('{"v":1}');
    const retention = await s3.send(new GetObjectRetentionCommand({ Bucket: 'locked', Key: 'runs/orders/1/manifest.json' }));
    expect(retention.Retention).toEqual({ Mode: 'COMPLIANCE', RetainUntilDate: retainUntil });
    expect((await s3.send(new GetObjectLegalHoldCommand({ Bucket: 'locked', Key: 'runs/orders/1/manifest.json', VersionId: v1.VersionId }))).LegalHold?.Status).toBe('ON');
    await expect(s3.send(new HeadObjectCommand({ Bucket: 'locked', Key: 'gone.txt' }))).rejects.toMatchObject({ name: 'NotFound' });
    const dump = await body('runs/orders/1/orders.pgdump');
    expect(sha(dump)).toBe(sha(Buffer.concat(parts)));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'locked', Key: 'runs/orders/1/orders.pgdump', PartNumber: 2 }));
    expect({ etag: head.ETag, parts: head.PartsCount, length: head.ContentLength }).toEqual({ etag: completed.ETag, parts: 2, length: MiB + 7 });
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'plain', Key: 'notes/a b.txt' }))).Body!.transformToString()).toBe('unversioned');
    // The lock holds after the restart: the locked version is not deleted for good.
    await expect(s3.send(new DeleteObjectCommand({ Bucket: 'locked', Key: 'runs/orders/1/manifest.json', VersionId: v1.VersionId })))
      .rejects.toMatchObject({ name: 'AccessDenied' });
  }
  expect((await body('late.txt')).toString()).toBe('written just before the kill');
}, 60_000);

test('a version deleted for good leaves the disk; a new version is written once', async () => {
  const blobs = () => readdirSync(join(dir, 's3', 'blobs')).filter((name) => !name.endsWith('.tmp')).sort();
  const put = await s3.send(new PutObjectCommand({ Bucket: 'locked', Key: 'scratch.bin', Body: Buffer.alloc(1000, 9) }));
  await restart('stop');
  const withScratch = blobs();
  // Unchanged objects keep their blobs across restarts and writes of others: nothing is written twice.
  await s3.send(new PutObjectCommand({ Bucket: 'plain', Key: 'other.txt', Body: 'other' }));
  await restart('stop');
  expect(blobs().filter((name) => withScratch.includes(name))).toEqual(withScratch);
  expect(blobs()).toHaveLength(withScratch.length + 1);
  await s3.send(new DeleteObjectCommand({ Bucket: 'locked', Key: 'scratch.bin', VersionId: put.VersionId }));
  await restart('stop');
  expect(blobs()).toHaveLength(withScratch.length);
  await expect(s3.send(new GetObjectCommand({ Bucket: 'locked', Key: 'scratch.bin', VersionId: put.VersionId }))).rejects.toMatchObject({ name: 'NoSuchVersion' });
  expect(existsSync(join(dir, 's3', 'server.json'))).toBe(true);
}, 30_000);

test('stopped, it leaves no process and no server.json; stopping again says none was running', async () => {
  s3.destroy();
  const { pid } = server;
  expect(await stopPersistentS3(join(dir, 's3'))).toBe(true);
  expect(() => process.kill(pid, 0)).toThrow();
  expect(existsSync(join(dir, 's3', 'server.json'))).toBe(false);
  expect(await stopPersistentS3(join(dir, 's3'))).toBe(false);
  server = await startPersistentS3({ dataDir: join(dir, 's3') });
  s3 = connect(server.endpoint);
  expect((await body('late.txt')).toString()).toBe('written just before the kill');
});
