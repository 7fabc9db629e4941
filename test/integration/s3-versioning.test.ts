/**
 * Bucket versioning and Object Lock as the local S3 server emulates them (s3-versioning.mjs),
 * through the production client and the SDK commands Lifeboat's code calls.
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type ListObjectVersionsCommandOutput,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { startS3, type S3Server } from '../harness/s3';

const MiB = 1024 * 1024;
const DAY = 86_400_000;

let s3: S3Server;
let client: S3Client;
let buckets = 0;

beforeAll(async () => {
  s3 = await startS3();
  client = s3.client();
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

/** A fresh bucket per test: `plain`, `versioned` (versioning Enabled) or `locked` (Object Lock). */
async function bucket(kind: 'plain' | 'versioned' | 'locked'): Promise<string> {
  const name = `${kind}-${++buckets}`;
  await s3.createBucket(name, kind === 'locked' ? { objectLock: true } : kind === 'versioned' ? { versioning: true } : {});
  return name;
}

interface Failure {
  name: string;
  status: number | undefined;
  headers: Record<string, string>;
}

/** The error a request fails with: its code, HTTP status and the response's headers. */
async function failure(request: Promise<unknown>): Promise<Failure> {
  try {
    await request;
  } catch (err) {
    const error = err as { name: string; $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string> } };
    return { name: error.name, status: error.$metadata?.httpStatusCode, headers: error.$response?.headers ?? {} };
  }
  throw new Error('the request succeeded');
}

async function put(Bucket: string, Key: string, Body: string | Buffer, extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {}) {
  return client.send(new PutObjectCommand({ Bucket, Key, Body, ...extra }));
}

async function read(Bucket: string, Key: string, VersionId?: string): Promise<string> {
  const response = await client.send(new GetObjectCommand({ Bucket, Key, VersionId }));
  return response.Body!.transformToString();
}

async function currentKeys(Bucket: string, Prefix = ''): Promise<string[]> {
  const listing = await client.send(new ListObjectsV2Command({ Bucket, Prefix }));
  return (listing.Contents ?? []).map((object) => object.Key!);
}

type Entry = { kind: 'version' | 'marker'; key: string; versionId: string; isLatest: boolean };

/** Versions and markers of one page, in the server's order (version first within a key's rank). */
function entries(page: ListObjectVersionsCommandOutput): Entry[] {
  const all = [
    ...(page.Versions ?? []).map((v) => ({ kind: 'version' as const, key: v.Key!, versionId: v.VersionId!, isLatest: v.IsLatest!, at: v.LastModified! })),
    ...(page.DeleteMarkers ?? []).map((m) => ({ kind: 'marker' as const, key: m.Key!, versionId: m.VersionId!, isLatest: m.IsLatest!, at: m.LastModified! })),
  ];
  return all.map(({ kind, key, versionId, isLatest }) => ({ kind, key, versionId, isLatest }));
}

/** Walks ListObjectVersions with KeyMarker / VersionIdMarker, as a caller pages it. */
async function versionPages(Bucket: string, MaxKeys: number): Promise<Entry[][]> {
  const pages: Entry[][] = [];
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(new ListObjectVersionsCommand({ Bucket, MaxKeys, KeyMarker, VersionIdMarker }));
    pages.push(entries(page));
    if (!page.IsTruncated) return pages;
    KeyMarker = page.NextKeyMarker;
    VersionIdMarker = page.NextVersionIdMarker;
    if (pages.length > 1000) throw new Error('listing does not end');
  }
}

describe('bucket versioning and Object Lock configuration', () => {
  test('GetBucketVersioning: no status until set, then Enabled or Suspended', async () => {
    const Bucket = await bucket('plain');
    expect((await client.send(new GetBucketVersioningCommand({ Bucket }))).Status).toBeUndefined();
    await client.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    expect((await client.send(new GetBucketVersioningCommand({ Bucket }))).Status).toBe('Enabled');
    await client.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } }));
    expect((await client.send(new GetBucketVersioningCommand({ Bucket }))).Status).toBe('Suspended');
    expect(await failure(client.send(new GetBucketVersioningCommand({ Bucket: 'no-such-bucket' })))).toMatchObject({ name: 'NoSuchBucket', status: 404 });
  });

  test('CreateBucket with Object Lock: versioning Enabled, Object Lock enabled, versioning cannot be suspended', async () => {
    const Bucket = await bucket('locked');
    expect((await client.send(new GetBucketVersioningCommand({ Bucket }))).Status).toBe('Enabled');
    expect((await client.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled' });
    expect(await failure(client.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } })))).toMatchObject({
      name: 'InvalidBucketState',
      status: 409,
    });
    // Asking again for an existing bucket does not silently answer with a bucket without Object Lock.
    const plain = await bucket('plain');
    expect(await failure(client.send(new CreateBucketCommand({ Bucket: plain, ObjectLockEnabledForBucket: true })))).toMatchObject({
      name: 'BucketAlreadyOwnedByYou',
      status: 409,
    });
  });

  test('PutObjectLockConfiguration sets a default retention rule (Days or Years), read back exactly', async () => {
    const Bucket = await bucket('locked');
    await client.send(
      new PutObjectLockConfigurationCommand({
        Bucket,
        ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 3 } } },
      }),
    );
    expect((await client.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 3 } },
    });
    await client.send(
      new PutObjectLockConfigurationCommand({
        Bucket,
        ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Years: 2 } } },
      }),
    );
    expect((await client.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Years: 2 } },
    });
    const both = { ObjectLockEnabled: 'Enabled' as const, Rule: { DefaultRetention: { Mode: 'GOVERNANCE' as const, Days: 1, Years: 1 } } };
    expect(await failure(client.send(new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: both })))).toMatchObject({
      name: 'MalformedXML',
      status: 400,
    });
  });

  test('Object Lock configuration on a bucket without Object Lock: not found, and refused unless versioning is Enabled', async () => {
    const Bucket = await bucket('plain');
    expect(await failure(client.send(new GetObjectLockConfigurationCommand({ Bucket })))).toMatchObject({
      name: 'ObjectLockConfigurationNotFoundError',
      status: 404,
    });
    const config = { ObjectLockEnabled: 'Enabled' as const, Rule: { DefaultRetention: { Mode: 'GOVERNANCE' as const, Days: 1 } } };
    expect(await failure(client.send(new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: config })))).toMatchObject({
      name: 'InvalidBucketState',
      status: 409,
    });
    expect(await failure(client.send(new GetObjectLockConfigurationCommand({ Bucket })))).toMatchObject({ name: 'ObjectLockConfigurationNotFoundError' });
    // As on S3 since 2023, a versioning-enabled bucket can have Object Lock turned on.
    const versioned = await bucket('versioned');
    await client.send(new PutObjectLockConfigurationCommand({ Bucket: versioned, ObjectLockConfiguration: config }));
    expect((await client.send(new GetObjectLockConfigurationCommand({ Bucket: versioned }))).ObjectLockConfiguration).toEqual(config);
  });
});

describe('versions', () => {
  test('each PutObject creates a version with its own VersionId; GET and HEAD serve any version, the newest by default', async () => {
    const Bucket = await bucket('versioned');
    const first = await put(Bucket, 'k', 'one');
    const second = await put(Bucket, 'k', 'two');
    const third = await put(Bucket, 'k', 'three');
    const ids = [first.VersionId, second.VersionId, third.VersionId];
    ids.forEach((id) => expect(id).toMatch(/^[0-9A-Za-z]{32}$/));
    expect(new Set(ids).size).toBe(3);

    expect(await read(Bucket, 'k')).toBe('three');
    expect(await read(Bucket, 'k', first.VersionId)).toBe('one');
    expect(await read(Bucket, 'k', second.VersionId)).toBe('two');
    const current = await client.send(new GetObjectCommand({ Bucket, Key: 'k' }));
    expect(current.VersionId).toBe(third.VersionId);
    await current.Body!.transformToString();
    const head = await client.send(new HeadObjectCommand({ Bucket, Key: 'k', VersionId: first.VersionId }));
    expect(head).toMatchObject({ VersionId: first.VersionId, ContentLength: 3, ETag: first.ETag });
    // A range of an old version.
    const range = await client.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: second.VersionId, Range: 'bytes=1-2' }));
    expect(await range.Body!.transformToString()).toBe('wo');
    expect(await currentKeys(Bucket)).toEqual(['k']);
  });

  test('an unknown version: NoSuchVersion (404) if well formed, InvalidArgument (400) if not', async () => {
    const Bucket = await bucket('versioned');
    const { VersionId } = await put(Bucket, 'k', 'x');
    const unknown = `${VersionId!.slice(0, 8)}${'Z'.repeat(24)}`;
    expect(await failure(client.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: unknown })))).toMatchObject({ name: 'NoSuchVersion', status: 404 });
    expect(await failure(client.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: 'not-a-version' })))).toMatchObject({
      name: 'InvalidArgument',
      status: 400,
    });
    expect((await failure(client.send(new HeadObjectCommand({ Bucket, Key: 'k', VersionId: unknown })))).status).toBe(404);
  });

  test('CompleteMultipartUpload and CopyObject create versions and answer their VersionIds (and the copied one)', async () => {
    const Bucket = await bucket('versioned');
    const v1 = await put(Bucket, 'src', 'first source');
    const v2 = await put(Bucket, 'src', 'second source');

    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'mpu' }));
    const data = randomBytes(5 * MiB + 7);
    const p1 = await client.send(new UploadPartCommand({ Bucket, Key: 'mpu', UploadId, PartNumber: 1, Body: data.subarray(0, 5 * MiB) }));
    const p2 = await client.send(new UploadPartCommand({ Bucket, Key: 'mpu', UploadId, PartNumber: 2, Body: data.subarray(5 * MiB) }));
    const done = await client.send(
      new CompleteMultipartUploadCommand({ Bucket, Key: 'mpu', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } }),
    );
    expect(done.VersionId).toMatch(/^[0-9A-Za-z]{32}$/);
    const back = await client.send(new GetObjectCommand({ Bucket, Key: 'mpu', VersionId: done.VersionId }));
    expect(Buffer.from(await back.Body!.transformToByteArray()).equals(data)).toBe(true);

    const copyLatest = await client.send(new CopyObjectCommand({ Bucket, Key: 'dst', CopySource: `${Bucket}/src` }));
    expect(copyLatest.CopySourceVersionId).toBe(v2.VersionId);
    const copyOld = await client.send(new CopyObjectCommand({ Bucket, Key: 'dst', CopySource: `/${Bucket}/src?versionId=${v1.VersionId}` }));
    expect(copyOld.CopySourceVersionId).toBe(v1.VersionId);
    expect(copyOld.VersionId).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(copyOld.VersionId).not.toBe(copyLatest.VersionId);
    expect(await read(Bucket, 'dst')).toBe('first source');
    expect(await read(Bucket, 'dst', copyLatest.VersionId)).toBe('second source');
    const listing = await client.send(new ListObjectVersionsCommand({ Bucket, Prefix: 'dst' }));
    expect(listing.Versions!.map((v) => [v.VersionId, v.IsLatest])).toEqual([
      [copyOld.VersionId, true],
      [copyLatest.VersionId, false],
    ]);
  });

  test('CopyObject of a version from an unversioned bucket or to one; of a delete marker by id: InvalidRequest', async () => {
    const Bucket = await bucket('versioned');
    const plain = await bucket('plain');
    const v1 = await put(Bucket, 'src', 'old');
    await put(Bucket, 'src', 'new');
    const copied = await client.send(new CopyObjectCommand({ Bucket: plain, Key: 'copy', CopySource: `${Bucket}/src?versionId=${v1.VersionId}` }));
    expect(copied.CopySourceVersionId).toBe(v1.VersionId);
    expect(copied.VersionId).toBeUndefined();
    expect(await read(plain, 'copy')).toBe('old');
    const marker = await client.send(new DeleteObjectCommand({ Bucket, Key: 'src' }));
    expect(await failure(client.send(new CopyObjectCommand({ Bucket, Key: 'x', CopySource: `${Bucket}/src?versionId=${marker.VersionId}` })))).toMatchObject({
      name: 'InvalidRequest',
      status: 400,
    });
    expect(await failure(client.send(new CopyObjectCommand({ Bucket, Key: 'x', CopySource: `${Bucket}/src` })))).toMatchObject({ name: 'NoSuchKey', status: 404 });

    // Into an Object Lock bucket with lock headers: the new version carries them.
    const locked = await bucket('locked');
    const until = new Date(Date.now() + 2 * DAY);
    const lockedCopy = await client.send(
      new CopyObjectCommand({ Bucket: locked, Key: 'copy', CopySource: `${Bucket}/src?versionId=${v1.VersionId}`, ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: until }),
    );
    expect(await client.send(new HeadObjectCommand({ Bucket: locked, Key: 'copy' }))).toMatchObject({
      VersionId: lockedCopy.VersionId,
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: until,
    });
    expect(await read(locked, 'copy')).toBe('old');
  });

  test('a suspended bucket writes the null version, replacing it, and keeps the versions from before', async () => {
    const Bucket = await bucket('versioned');
    const kept = await put(Bucket, 'k', 'versioned');
    await client.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } }));
    expect((await put(Bucket, 'k', 'null one')).VersionId).toBe('null');
    expect((await put(Bucket, 'k', 'null two')).VersionId).toBe('null');
    expect(await read(Bucket, 'k')).toBe('null two');
    expect(await read(Bucket, 'k', 'null')).toBe('null two');
    expect(await read(Bucket, 'k', kept.VersionId)).toBe('versioned');
    const listing = await client.send(new ListObjectVersionsCommand({ Bucket }));
    expect(listing.Versions!.map((v) => v.VersionId)).toEqual(['null', kept.VersionId]);
    const marker = await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
    expect(marker).toMatchObject({ DeleteMarker: true, VersionId: 'null' });
    const after = await client.send(new ListObjectVersionsCommand({ Bucket }));
    expect(entries(after)).toEqual([
      { kind: 'version', key: 'k', versionId: kept.VersionId, isLatest: false },
      { kind: 'marker', key: 'k', versionId: 'null', isLatest: true },
    ]);
  });

  test('objects from before versioning became their null versions; an unversioned bucket lists null versions', async () => {
    const Bucket = await bucket('plain');
    const before = await put(Bucket, 'old', 'from before');
    expect(before.VersionId).toBeUndefined();
    expect((await client.send(new ListObjectVersionsCommand({ Bucket }))).Versions!.map((v) => [v.Key, v.VersionId, v.IsLatest])).toEqual([['old', 'null', true]]);
    expect(await read(Bucket, 'old', 'null')).toBe('from before');
    await client.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const next = await put(Bucket, 'old', 'after');
    const listing = await client.send(new ListObjectVersionsCommand({ Bucket }));
    expect(listing.Versions!.map((v) => [v.VersionId, v.IsLatest])).toEqual([
      [next.VersionId, true],
      ['null', false],
    ]);
    expect(await read(Bucket, 'old', 'null')).toBe('from before');
  });
});

describe('delete markers and permanent deletes', () => {
  test('DeleteObject without a version adds a delete marker: ListObjectsV2 and GET no longer see the key, GET by version still does', async () => {
    const Bucket = await bucket('versioned');
    const v1 = await put(Bucket, 'gone', 'the bytes');
    await put(Bucket, 'stays', 'x');
    const deleted = await client.send(new DeleteObjectCommand({ Bucket, Key: 'gone' }));
    expect(deleted.DeleteMarker).toBe(true);
    expect(deleted.VersionId).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(deleted.VersionId).not.toBe(v1.VersionId);

    expect(await currentKeys(Bucket)).toEqual(['stays']);
    const get = await failure(client.send(new GetObjectCommand({ Bucket, Key: 'gone' })));
    expect(get).toMatchObject({ name: 'NoSuchKey', status: 404 });
    expect(get.headers).toMatchObject({ 'x-amz-delete-marker': 'true', 'x-amz-version-id': deleted.VersionId });
    const head = await failure(client.send(new HeadObjectCommand({ Bucket, Key: 'gone' })));
    expect(head.status).toBe(404);
    expect(head.headers['x-amz-delete-marker']).toBe('true');
    expect(await read(Bucket, 'gone', v1.VersionId)).toBe('the bytes');

    const onMarker = await failure(client.send(new GetObjectCommand({ Bucket, Key: 'gone', VersionId: deleted.VersionId })));
    expect(onMarker).toMatchObject({ name: 'MethodNotAllowed', status: 405 });
    expect(onMarker.headers).toMatchObject({ 'x-amz-delete-marker': 'true', 'x-amz-version-id': deleted.VersionId });
  });

  test('DeleteObject with a version removes it for good; the newest remaining version becomes current', async () => {
    const Bucket = await bucket('versioned');
    const v1 = await put(Bucket, 'k', 'one');
    const v2 = await put(Bucket, 'k', 'two');
    const marker = await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));

    // Removing the marker brings the key back with its newest version.
    const unmarked = await client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId: marker.VersionId }));
    expect(unmarked).toMatchObject({ DeleteMarker: true, VersionId: marker.VersionId });
    expect(await read(Bucket, 'k')).toBe('two');
    expect(await currentKeys(Bucket)).toEqual(['k']);

    const removed = await client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId: v2.VersionId }));
    expect(removed.VersionId).toBe(v2.VersionId);
    expect(removed.DeleteMarker).toBeUndefined();
    expect(await read(Bucket, 'k')).toBe('one');
    expect(await failure(client.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: v2.VersionId })))).toMatchObject({ name: 'NoSuchVersion' });
    // Deleting it again (a retry) succeeds, as on S3; a malformed id does not.
    expect((await client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId: v2.VersionId }))).VersionId).toBe(v2.VersionId);
    expect(await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId: 'malformed' })))).toMatchObject({ name: 'InvalidArgument', status: 400 });
    expect(await read(Bucket, 'k')).toBe('one');

    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId: v1.VersionId }));
    expect(await currentKeys(Bucket)).toEqual([]);
    expect(await client.send(new ListObjectVersionsCommand({ Bucket }))).toMatchObject({ IsTruncated: false });
    expect(entries(await client.send(new ListObjectVersionsCommand({ Bucket })))).toEqual([]);
    // The bucket is empty now, so it can go; with only a delete marker left it could not.
    await client.send(new DeleteBucketCommand({ Bucket }));
  });

  test('a bucket holding only a delete marker is not empty', async () => {
    const Bucket = await bucket('versioned');
    await put(Bucket, 'k', 'x');
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
    expect(await currentKeys(Bucket)).toEqual([]);
    expect(await failure(client.send(new DeleteBucketCommand({ Bucket })))).toMatchObject({ name: 'BucketNotEmpty', status: 409 });
  });

  test('DeleteObjects with VersionIds: per-object Deleted (with delete markers) and Errors as S3 shapes them', async () => {
    const Bucket = await bucket('locked');
    const a1 = await put(Bucket, 'a', 'a1');
    const a2 = await put(Bucket, 'a', 'a2');
    const locked = await put(Bucket, 'locked', 'l', { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() + DAY) });
    const marker = await client.send(new DeleteObjectCommand({ Bucket, Key: 'b' }));
    const result = await client.send(
      new DeleteObjectsCommand({
        Bucket,
        Delete: {
          Objects: [
            { Key: 'a', VersionId: a1.VersionId },
            { Key: 'b', VersionId: marker.VersionId },
            { Key: 'locked', VersionId: locked.VersionId },
            { Key: 'c' },
            { Key: 'a', VersionId: 'malformed' },
          ],
        },
      }),
    );
    const cMarker = result.Deleted!.find((d) => d.Key === 'c')!;
    expect(result.Deleted).toEqual([
      { Key: 'a', VersionId: a1.VersionId },
      { Key: 'b', VersionId: marker.VersionId, DeleteMarker: true, DeleteMarkerVersionId: marker.VersionId },
      { Key: 'c', DeleteMarker: true, DeleteMarkerVersionId: expect.stringMatching(/^[0-9A-Za-z]{32}$/) },
    ]);
    expect(result.Errors).toEqual([
      { Key: 'locked', VersionId: locked.VersionId, Code: 'AccessDenied', Message: 'Access Denied because object protected by object lock.' },
      { Key: 'a', VersionId: 'malformed', Code: 'NoSuchVersion', Message: 'The specified version does not exist.' },
    ]);
    expect(await read(Bucket, 'a')).toBe('a2');
    expect(await read(Bucket, 'locked', locked.VersionId)).toBe('l');
    const after = await client.send(new ListObjectVersionsCommand({ Bucket }));
    expect(entries(after)).toEqual([
      { kind: 'version', key: 'a', versionId: a2.VersionId, isLatest: true },
      { kind: 'version', key: 'locked', versionId: locked.VersionId, isLatest: true },
      { kind: 'marker', key: 'c', versionId: cMarker.DeleteMarkerVersionId, isLatest: true },
    ]);
    // Quiet: only the errors.
    const quiet = await client.send(
      new DeleteObjectsCommand({ Bucket, Delete: { Quiet: true, Objects: [{ Key: 'a', VersionId: a2.VersionId }, { Key: 'locked', VersionId: locked.VersionId }] } }),
    );
    expect(quiet.Deleted).toBeUndefined();
    expect(quiet.Errors!.map((e) => [e.Key, e.Code])).toEqual([['locked', 'AccessDenied']]);
  });
});

describe('Object Lock per version', () => {
  test('PutObject lock headers: GET and HEAD answer them, GetObjectRetention and GetObjectLegalHold read them', async () => {
    const Bucket = await bucket('locked');
    const until = new Date(Date.now() + 5 * DAY);
    const { VersionId } = await put(Bucket, 'k', 'x', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until, ObjectLockLegalHoldStatus: 'ON' });
    const head = await client.send(new HeadObjectCommand({ Bucket, Key: 'k' }));
    expect(head).toMatchObject({ VersionId, ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until, ObjectLockLegalHoldStatus: 'ON' });
    const get = await client.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId }));
    expect(get).toMatchObject({ ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until, ObjectLockLegalHoldStatus: 'ON' });
    await get.Body!.transformToString();
    expect((await client.send(new GetObjectRetentionCommand({ Bucket, Key: 'k', VersionId }))).Retention).toEqual({ Mode: 'GOVERNANCE', RetainUntilDate: until });
    expect((await client.send(new GetObjectLegalHoldCommand({ Bucket, Key: 'k', VersionId }))).LegalHold).toEqual({ Status: 'ON' });

    // A version without either: NoSuchObjectLockConfiguration, and no lock headers.
    const bare = await put(Bucket, 'k', 'y');
    const bareHead = await client.send(new HeadObjectCommand({ Bucket, Key: 'k' }));
    expect(bareHead.VersionId).toBe(bare.VersionId);
    expect([bareHead.ObjectLockMode, bareHead.ObjectLockRetainUntilDate, bareHead.ObjectLockLegalHoldStatus]).toEqual([undefined, undefined, undefined]);
    expect(await failure(client.send(new GetObjectRetentionCommand({ Bucket, Key: 'k' })))).toMatchObject({ name: 'NoSuchObjectLockConfiguration', status: 404 });
    expect(await failure(client.send(new GetObjectLegalHoldCommand({ Bucket, Key: 'k' })))).toMatchObject({ name: 'NoSuchObjectLockConfiguration', status: 404 });
  });

  test('lock headers are refused on a versioned bucket without Object Lock, and a retain-until date in the past anywhere', async () => {
    const plain = await bucket('versioned');
    const until = new Date(Date.now() + DAY);
    expect(await failure(put(plain, 'k', 'x', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until }))).toMatchObject({ name: 'InvalidRequest', status: 400 });
    expect(await failure(put(plain, 'k', 'x', { ObjectLockLegalHoldStatus: 'ON' }))).toMatchObject({ name: 'InvalidRequest', status: 400 });
    expect(await failure(client.send(new CreateMultipartUploadCommand({ Bucket: plain, Key: 'k', ObjectLockLegalHoldStatus: 'ON' })))).toMatchObject({
      name: 'InvalidRequest',
    });
    expect(await failure(client.send(new GetObjectRetentionCommand({ Bucket: plain, Key: 'k' })))).toMatchObject({ name: 'InvalidRequest', status: 400 });
    expect(await currentKeys(plain)).toEqual([]);
    const locked = await bucket('locked');
    expect(await failure(put(locked, 'k', 'x', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(Date.now() - 1000) }))).toMatchObject({
      name: 'InvalidArgument',
      status: 400,
    });
    expect(await failure(put(locked, 'k', 'x', { ObjectLockMode: 'GOVERNANCE' }))).toMatchObject({ name: 'InvalidArgument', status: 400 });
    expect(await currentKeys(locked)).toEqual([]);
  });

  test('a bucket whose versioning was never set ignores lock headers, as before (S3 would refuse them)', async () => {
    const Bucket = await bucket('plain');
    const until = new Date(Date.now() + DAY);
    const written = await put(Bucket, 'k', 'x', { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: until, ObjectLockLegalHoldStatus: 'ON' });
    expect(written.VersionId).toBeUndefined();
    const head = await client.send(new HeadObjectCommand({ Bucket, Key: 'k' }));
    expect([head.VersionId, head.ObjectLockMode, head.ObjectLockRetainUntilDate, head.ObjectLockLegalHoldStatus]).toEqual([undefined, undefined, undefined, undefined]);
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'm', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: until }));
    expect(UploadId).toEqual(expect.any(String));
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
    expect(await currentKeys(Bucket)).toEqual([]);
  });

  test('the bucket default retention applies when a write names none: retain-until = creation + days (or years)', async () => {
    const Bucket = await bucket('locked');
    await client.send(
      new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 2 } } } }),
    );
    const days = await put(Bucket, 'days', 'x');
    await client.send(
      new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Years: 1 } } } }),
    );
    const years = await put(Bucket, 'years', 'x');
    const explicitUntil = new Date(Date.now() + 9 * DAY);
    const explicit = await put(Bucket, 'explicit', 'x', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: explicitUntil });
    const created = new Map((await client.send(new ListObjectVersionsCommand({ Bucket }))).Versions!.map((v) => [v.VersionId, v.LastModified!]));

    const daysRetention = (await client.send(new GetObjectRetentionCommand({ Bucket, Key: 'days', VersionId: days.VersionId }))).Retention!;
    expect(daysRetention).toEqual({ Mode: 'COMPLIANCE', RetainUntilDate: new Date(created.get(days.VersionId)!.getTime() + 2 * DAY) });
    const oneYear = new Date(created.get(years.VersionId)!.getTime());
    oneYear.setUTCFullYear(oneYear.getUTCFullYear() + 1);
    expect((await client.send(new GetObjectRetentionCommand({ Bucket, Key: 'years' }))).Retention).toEqual({ Mode: 'GOVERNANCE', RetainUntilDate: oneYear });
    expect((await client.send(new GetObjectRetentionCommand({ Bucket, Key: 'explicit', VersionId: explicit.VersionId }))).Retention).toEqual({
      Mode: 'GOVERNANCE',
      RetainUntilDate: explicitUntil,
    });
    // A changed default leaves the versions written before as they were.
    expect((await client.send(new HeadObjectCommand({ Bucket, Key: 'days' }))).ObjectLockMode).toBe('COMPLIANCE');
  });

  test('multipart: the upload lock (or else the default) goes to the version its completion creates', async () => {
    const Bucket = await bucket('locked');
    await client.send(
      new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } } }),
    );
    const until = new Date(Date.now() + 30 * DAY);
    const complete = async (Key: string, lock: Partial<ConstructorParameters<typeof CreateMultipartUploadCommand>[0]>) => {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key, ...lock }));
      const part = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: Buffer.from(`body of ${Key}`) }));
      return client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    };
    const locked = await complete('locked', { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: until, ObjectLockLegalHoldStatus: 'ON' });
    const defaulted = await complete('defaulted', {});
    const head = await client.send(new HeadObjectCommand({ Bucket, Key: 'locked', VersionId: locked.VersionId }));
    expect(head).toMatchObject({ VersionId: locked.VersionId, ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: until, ObjectLockLegalHoldStatus: 'ON' });
    expect(await read(Bucket, 'locked', locked.VersionId)).toBe('body of locked');
    const created = (await client.send(new ListObjectVersionsCommand({ Bucket, Prefix: 'defaulted' }))).Versions![0].LastModified!;
    expect((await client.send(new GetObjectRetentionCommand({ Bucket, Key: 'defaulted', VersionId: defaulted.VersionId }))).Retention).toEqual({
      Mode: 'GOVERNANCE',
      RetainUntilDate: new Date(created.getTime() + DAY),
    });
    expect(await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'locked', VersionId: locked.VersionId, BypassGovernanceRetention: true })))).toMatchObject({
      name: 'AccessDenied',
      status: 403,
    });
  });

  test('PutObjectRetention: GOVERNANCE extends freely, shortens or is removed only with the bypass header', async () => {
    const Bucket = await bucket('locked');
    const start = Date.now();
    const { VersionId } = await put(Bucket, 'k', 'x', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(start + 10 * DAY) });
    const retention = async () => (await client.send(new GetObjectRetentionCommand({ Bucket, Key: 'k', VersionId }))).Retention;
    const setRetention = (Retention: { Mode?: 'GOVERNANCE' | 'COMPLIANCE'; RetainUntilDate?: Date }, BypassGovernanceRetention?: boolean) =>
      client.send(new PutObjectRetentionCommand({ Bucket, Key: 'k', VersionId, Retention, BypassGovernanceRetention }));

    await setRetention({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(start + 20 * DAY) });
    expect(await retention()).toEqual({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(start + 20 * DAY) });
    expect(await failure(setRetention({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(start + 5 * DAY) }))).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(await failure(setRetention({}))).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(await retention()).toEqual({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(start + 20 * DAY) });
    await setRetention({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(start + 5 * DAY) }, true);
    expect(await retention()).toEqual({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(start + 5 * DAY) });
    expect(await failure(setRetention({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(start - DAY) }, true))).toMatchObject({ name: 'InvalidArgument', status: 400 });
    await setRetention({}, true);
    expect(await failure(client.send(new GetObjectRetentionCommand({ Bucket, Key: 'k', VersionId })))).toMatchObject({ name: 'NoSuchObjectLockConfiguration' });
    // Without a retention the version can be locked again, now in COMPLIANCE.
    await setRetention({ Mode: 'COMPLIANCE', RetainUntilDate: new Date(start + 3 * DAY) });
    expect((await client.send(new HeadObjectCommand({ Bucket, Key: 'k', VersionId }))).ObjectLockMode).toBe('COMPLIANCE');
  });

  test('PutObjectRetention: COMPLIANCE extends, but is never shortened, removed or turned into GOVERNANCE, bypass or not', async () => {
    const Bucket = await bucket('locked');
    const start = Date.now();
    const { VersionId } = await put(Bucket, 'k', 'x', { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(start + 10 * DAY) });
    const setRetention = (Retention: { Mode?: 'GOVERNANCE' | 'COMPLIANCE'; RetainUntilDate?: Date }, BypassGovernanceRetention?: boolean) =>
      client.send(new PutObjectRetentionCommand({ Bucket, Key: 'k', VersionId, Retention, BypassGovernanceRetention }));
    for (const bypass of [false, true]) {
      expect(await failure(setRetention({ Mode: 'COMPLIANCE', RetainUntilDate: new Date(start + 5 * DAY) }, bypass))).toMatchObject({ name: 'AccessDenied', status: 403 });
      expect(await failure(setRetention({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(start + 30 * DAY) }, bypass))).toMatchObject({ name: 'AccessDenied', status: 403 });
      expect(await failure(setRetention({}, bypass))).toMatchObject({ name: 'AccessDenied', status: 403 });
    }
    await setRetention({ Mode: 'COMPLIANCE', RetainUntilDate: new Date(start + 40 * DAY) });
    expect((await client.send(new GetObjectRetentionCommand({ Bucket, Key: 'k', VersionId }))).Retention).toEqual({
      Mode: 'COMPLIANCE',
      RetainUntilDate: new Date(start + 40 * DAY),
    });
  });

  test('a GOVERNANCE version is changed to COMPLIANCE only with the bypass header', async () => {
    const Bucket = await bucket('locked');
    const until = new Date(Date.now() + 10 * DAY);
    const { VersionId } = await put(Bucket, 'k', 'x', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until });
    const toCompliance = (BypassGovernanceRetention?: boolean) =>
      client.send(new PutObjectRetentionCommand({ Bucket, Key: 'k', VersionId, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until }, BypassGovernanceRetention }));
    expect(await failure(toCompliance())).toMatchObject({ name: 'AccessDenied', status: 403 });
    await toCompliance(true);
    expect((await client.send(new GetObjectRetentionCommand({ Bucket, Key: 'k', VersionId }))).Retention).toEqual({ Mode: 'COMPLIANCE', RetainUntilDate: until });
  });
});

describe('locked versions cannot be deleted', () => {
  test('COMPLIANCE: DeleteObject of the version is refused, with or without the bypass header', async () => {
    const Bucket = await bucket('locked');
    const { VersionId } = await put(Bucket, 'k', 'kept', { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() + DAY) });
    expect(await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId })))).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId, BypassGovernanceRetention: true })))).toMatchObject({
      name: 'AccessDenied',
      status: 403,
    });
    expect(await read(Bucket, 'k', VersionId)).toBe('kept');
  });

  test('GOVERNANCE: refused without the bypass header, done with it', async () => {
    const Bucket = await bucket('locked');
    const { VersionId } = await put(Bucket, 'k', 'x', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(Date.now() + DAY) });
    expect(await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId })))).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(await read(Bucket, 'k', VersionId)).toBe('x');
    const bulk = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'k', VersionId }] } }));
    expect(bulk.Errors!.map((e) => [e.Key, e.VersionId, e.Code])).toEqual([['k', VersionId, 'AccessDenied']]);
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId, BypassGovernanceRetention: true }));
    expect(await failure(client.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId })))).toMatchObject({ name: 'NoSuchVersion' });

    const other = await put(Bucket, 'bulk', 'x', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(Date.now() + DAY) });
    const bypassed = await client.send(
      new DeleteObjectsCommand({ Bucket, BypassGovernanceRetention: true, Delete: { Objects: [{ Key: 'bulk', VersionId: other.VersionId }] } }),
    );
    expect([bypassed.Deleted, bypassed.Errors]).toEqual([[{ Key: 'bulk', VersionId: other.VersionId }], undefined]);
  });

  test('a legal hold blocks the delete even with the bypass header, until it is released', async () => {
    const Bucket = await bucket('locked');
    const { VersionId } = await put(Bucket, 'k', 'x');
    await client.send(new PutObjectLegalHoldCommand({ Bucket, Key: 'k', VersionId, LegalHold: { Status: 'ON' } }));
    expect((await client.send(new HeadObjectCommand({ Bucket, Key: 'k' }))).ObjectLockLegalHoldStatus).toBe('ON');
    expect(await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId, BypassGovernanceRetention: true })))).toMatchObject({
      name: 'AccessDenied',
      status: 403,
    });
    await client.send(new PutObjectLegalHoldCommand({ Bucket, Key: 'k', VersionId, LegalHold: { Status: 'OFF' } }));
    expect((await client.send(new GetObjectLegalHoldCommand({ Bucket, Key: 'k', VersionId }))).LegalHold).toEqual({ Status: 'OFF' });
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId }));
    expect(await currentKeys(Bucket)).toEqual([]);
  });

  test('a delete marker on a locked version is allowed; an expired retention no longer protects', async () => {
    const Bucket = await bucket('locked');
    const locked = await put(Bucket, 'k', 'x', { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() + DAY) });
    const marker = await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
    expect(marker.DeleteMarker).toBe(true);
    expect(await currentKeys(Bucket)).toEqual([]);
    expect(await read(Bucket, 'k', locked.VersionId)).toBe('x');

    const brief = await put(Bucket, 'brief', 'x', { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 1500) });
    expect(await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'brief', VersionId: brief.VersionId })))).toMatchObject({ name: 'AccessDenied' });
    await new Promise((resolve) => setTimeout(resolve, 1600));
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'brief', VersionId: brief.VersionId }));
    expect(await failure(client.send(new HeadObjectCommand({ Bucket, Key: 'brief', VersionId: brief.VersionId })))).toMatchObject({ status: 404 });
  });
});

describe('ListObjectVersions', () => {
  async function fill(Bucket: string) {
    // Mixed-case keys, three versions each, and a delete marker on top of `B`.
    const ids: Record<string, string[]> = {};
    for (const key of ['c', 'a', 'B']) {
      for (let i = 0; i < 3; i++) (ids[key] ??= []).unshift((await put(Bucket, `p/${key}`, `${key}${i}`)).VersionId!);
    }
    const marker = (await client.send(new DeleteObjectCommand({ Bucket, Key: 'p/B' }))).VersionId!;
    const version = (key: string, versionId: string, isLatest = false): Entry => ({ kind: 'version', key, versionId, isLatest });
    // S3's order: keys byte-wise (B < a < c), each key's versions newest first.
    const expected: Entry[] = [
      { kind: 'marker', key: 'p/B', versionId: marker, isLatest: true },
      ...ids.B.map((id) => version('p/B', id)),
      ...ids.a.map((id, i) => version('p/a', id, i === 0)),
      ...ids.c.map((id, i) => version('p/c', id, i === 0)),
    ];
    return expected;
  }

  test('one page: every version and delete marker, keys in byte order, newest first, IsLatest on the newest', async () => {
    const Bucket = await bucket('versioned');
    const expected = await fill(Bucket);
    const page = await client.send(new ListObjectVersionsCommand({ Bucket }));
    expect(page.IsTruncated).toBe(false);
    expect(page.Versions!.map((v) => [v.Key, v.VersionId, v.IsLatest])).toEqual(
      expected.filter((e) => e.kind === 'version').map((e) => [e.key, e.versionId, e.isLatest]),
    );
    expect(page.DeleteMarkers!.map((m) => [m.Key, m.VersionId, m.IsLatest])).toEqual([['p/B', expected[0].versionId, true]]);
    const a0 = page.Versions!.find((v) => v.Key === 'p/a' && v.IsLatest)!;
    expect(a0).toMatchObject({ Size: 2, StorageClass: 'STANDARD', ETag: (await client.send(new HeadObjectCommand({ Bucket, Key: 'p/a' }))).ETag });
    expect(await currentKeys(Bucket)).toEqual(['p/a', 'p/c']);
  });

  test.each([1, 2, 5])('paged with MaxKeys %i by KeyMarker and VersionIdMarker: complete, in order, nothing repeated', async (MaxKeys) => {
    const Bucket = await bucket('versioned');
    const expected = await fill(Bucket);
    const pages = await versionPages(Bucket, MaxKeys);
    expect(pages.map((page) => page.length)).toEqual(expected.map((_, i) => i).filter((i) => i % MaxKeys === 0).map((i) => Math.min(MaxKeys, expected.length - i)));
    // The SDK splits a page into Versions and DeleteMarkers: order within a page by position,
    // then the pages must be consecutive slices of the whole listing.
    expect(pages.flatMap((page) => [...page].sort(byPosition(expected)))).toEqual(expected);
  });

  test('a page ending inside a key resumes at the version after NextVersionIdMarker; KeyMarker alone skips the whole key', async () => {
    const Bucket = await bucket('versioned');
    const expected = await fill(Bucket);
    const first = await client.send(new ListObjectVersionsCommand({ Bucket, MaxKeys: 3 }));
    expect([first.IsTruncated, first.NextKeyMarker, first.NextVersionIdMarker]).toEqual([true, 'p/B', expected[2].versionId]);
    const rest = await client.send(new ListObjectVersionsCommand({ Bucket, KeyMarker: 'p/B', VersionIdMarker: expected[2].versionId, MaxKeys: 2 }));
    expect(entries(rest)).toEqual(expected.slice(3, 5));
    const afterKey = await client.send(new ListObjectVersionsCommand({ Bucket, KeyMarker: 'p/B' }));
    expect(entries(afterKey)).toEqual(expected.filter((e) => e.key !== 'p/B'));
    // The version a marker names may be deleted between two pages: the listing still resumes after it.
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'p/B', VersionId: expected[2].versionId }));
    const resumed = await client.send(new ListObjectVersionsCommand({ Bucket, KeyMarker: 'p/B', VersionIdMarker: expected[2].versionId, MaxKeys: 2 }));
    expect(entries(resumed)).toEqual(expected.slice(3, 5));
    expect(await failure(client.send(new ListObjectVersionsCommand({ Bucket, VersionIdMarker: expected[2].versionId })))).toMatchObject({
      name: 'InvalidArgument',
      status: 400,
    });
  });

  test('Prefix and Delimiter: CommonPrefixes count toward MaxKeys and are not repeated across pages', async () => {
    const Bucket = await bucket('versioned');
    for (const key of ['top', 'dir/one', 'dir/two', 'Dir/x', 'e/deep/y']) {
      await put(Bucket, key, 'v1');
      await put(Bucket, key, 'v2');
    }
    const all = await client.send(new ListObjectVersionsCommand({ Bucket, Delimiter: '/' }));
    expect(all.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['Dir/', 'dir/', 'e/']);
    expect(all.Versions!.map((v) => [v.Key, v.IsLatest])).toEqual([
      ['top', true],
      ['top', false],
    ]);
    const walked: string[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    for (let pages = 0; ; pages++) {
      const page = await client.send(new ListObjectVersionsCommand({ Bucket, Delimiter: '/', MaxKeys: 1, KeyMarker, VersionIdMarker }));
      walked.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(page.Versions ?? []).map((v) => `${v.Key}@${v.IsLatest}`));
      if (!page.IsTruncated || pages > 20) break;
      KeyMarker = page.NextKeyMarker;
      VersionIdMarker = page.NextVersionIdMarker;
    }
    expect(walked).toEqual(['Dir/', 'dir/', 'e/', 'top@true', 'top@false']);
    const inDir = await client.send(new ListObjectVersionsCommand({ Bucket, Prefix: 'dir/' }));
    expect(inDir.Versions!.map((v) => v.Key)).toEqual(['dir/one', 'dir/one', 'dir/two', 'dir/two']);
    expect(inDir.Prefix).toBe('dir/');
  });

  test('EncodingType url: keys come back percent-encoded as S3 encodes them', async () => {
    const Bucket = await bucket('versioned');
    await put(Bucket, 'd/test_file(3).png', 'x');
    await put(Bucket, 'd/caf\u00e9', 'x');
    const page = await client.send(new ListObjectVersionsCommand({ Bucket, EncodingType: 'url' }));
    expect(page.Versions!.map((v) => v.Key)).toEqual(['d/caf%C3%A9', 'd/test_file%283%29.png']);
    expect(page.EncodingType).toBe('url');
  });
});

describe('conditional writes on a versioned bucket', () => {
  test('If-None-Match "*": a key whose current version is a delete marker does not exist; one with an object does', async () => {
    const Bucket = await bucket('versioned');
    await put(Bucket, 'k', 'first');
    expect(await failure(put(Bucket, 'k', 'second', { IfNoneMatch: '*' }))).toMatchObject({ name: 'PreconditionFailed', status: 412 });
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
    const again = await put(Bucket, 'k', 'after the marker', { IfNoneMatch: '*' });
    expect(again.VersionId).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(await read(Bucket, 'k')).toBe('after the marker');

    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'k' }));
    const part = await client.send(new UploadPartCommand({ Bucket, Key: 'k', UploadId, PartNumber: 1, Body: Buffer.from('mpu') }));
    const complete = () =>
      client.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'k', UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    expect(await failure(complete())).toMatchObject({ name: 'PreconditionFailed', status: 412 });
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
    const done = await complete();
    expect(await read(Bucket, 'k')).toBe('mpu');
    expect((await client.send(new HeadObjectCommand({ Bucket, Key: 'k' }))).VersionId).toBe(done.VersionId);
  });
});

describe('unversioned buckets', () => {
  test('answer no version ids and never keep an old version', async () => {
    const Bucket = await bucket('plain');
    const put1 = await put(Bucket, 'k', 'one');
    const put2 = await put(Bucket, 'k', 'two');
    expect([put1.VersionId, put2.VersionId]).toEqual([undefined, undefined]);
    const get = await client.send(new GetObjectCommand({ Bucket, Key: 'k' }));
    expect(get.VersionId).toBeUndefined();
    expect(await get.Body!.transformToString()).toBe('two');
    const deleted = await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
    expect([deleted.DeleteMarker, deleted.VersionId]).toEqual([undefined, undefined]);
    expect(entries(await client.send(new ListObjectVersionsCommand({ Bucket })))).toEqual([]);
    await client.send(new DeleteBucketCommand({ Bucket }));
  });
});

/** Sorts entries by their index in `expected` (pages of MaxKeys > 1 come split into Versions and DeleteMarkers). */
function byPosition(expected: Entry[]): (a: Entry, b: Entry) => number {
  const at = (entry: Entry) => expected.findIndex((e) => e.versionId === entry.versionId);
  return (a, b) => at(a) - at(b);
}
