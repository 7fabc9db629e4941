/**
 * What the local S3 server (fauxqs in its own process, see test/harness/s3-server.mjs) does with
 * the production client's defaults: the properties every S3 integration test silently relies on.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { startS3, s3ServerTunables, type S3Server } from '../harness/s3';
import { readFileSync } from 'node:fs';

const BUCKET = 'harness';
const MiB = 1024 * 1024;

let s3: S3Server;
let client: S3Client;

beforeAll(async () => {
  const started = Date.now();
  s3 = await startS3();
  console.log(`S3 server (fauxqs, own process) ready in ${Date.now() - started} ms`);
  client = s3.client();
  await s3.createBucket(BUCKET);
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

async function getBytes(key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

/** A Readable that yields `data` in small uneven chunks, like a dump process's stdout. */
function trickle(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0, n = 0; offset < data.length; n++) {
        const size = 16_384 + ((n * 7919) % 50_000);
        yield data.subarray(offset, offset + size);
        offset += size;
      }
    })(),
  );
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function uploadsInProgress(prefix = ''): Promise<string[]> {
  const listing = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
  return (listing.Uploads ?? []).map((upload) => upload.UploadId!);
}

test('a streamed multipart upload (lib-storage, default checksums) round-trips byte-exact', async () => {
  const data = randomBytes(12 * MiB + 12_345);
  const upload = new Upload({ client, params: { Bucket: BUCKET, Key: 'stream/multipart.bin', Body: trickle(data) }, partSize: 5 * MiB });
  const result = await upload.done();
  // S3's multipart ETag: MD5 of the parts' binary MD5s, then "-" and the part count.
  const partMd5s = [0, 1, 2].map((i) => createHash('md5').update(data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)).digest());
  expect(result.ETag).toBe(`"${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-3"`);
  const back = await getBytes('stream/multipart.bin');
  expect(back.length).toBe(data.length);
  expect(sha256(back)).toBe(sha256(data));
});

test('a streamed PutObject (aws-chunked with a trailing checksum) round-trips byte-exact', async () => {
  // The failure mode of s3rver: 100,000 bytes came back as 100,045 with the chunk framing.
  const data = randomBytes(100_000);
  const sent: Record<string, string>[] = [];
  const probe = s3.client();
  probe.middlewareStack.add(
    (next) => async (args) => {
      sent.push({ ...(args.request as { headers: Record<string, string> }).headers });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'captureHeaders' },
  );
  await probe.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'stream/put.bin', Body: trickle(data), ContentLength: data.length }));
  probe.destroy();
  expect(sent[0]).toMatchObject({ 'content-encoding': expect.stringContaining('aws-chunked'), 'x-amz-trailer': 'x-amz-checksum-crc32' });
  const back = await getBytes('stream/put.bin');
  expect(back.length).toBe(100_000);
  expect(back.equals(data)).toBe(true);
});

test('ListObjectsV2 pagination returns each of 1,050 keys exactly once', async () => {
  const keys = Array.from({ length: 1050 }, (_, i) => `page/k${String(i).padStart(5, '0')}`);
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((Key) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Key }))));
  }
  const seen: string[] = [];
  let pages = 0;
  for await (const page of paginateListObjectsV2({ client }, { Bucket: BUCKET, Prefix: 'page/' })) {
    pages++;
    seen.push(...(page.Contents ?? []).map((object) => object.Key!));
  }
  expect(pages).toBe(2);
  expect(seen).toEqual(keys);
});

test('ListObjectsV2 lists in S3 order (UTF-8 binary) and pages without losing keys', async () => {
  // fauxqs sorted with localeCompare (a, B, c) and paged byte-wise: one key a page gave [a] [c].
  const keys = ['order/a', 'order/B', 'order/c', 'order/_', 'order/\u00e9', 'order/\uffee', 'order/\u{1f600}', 'order/A1'];
  await Promise.all(keys.map((Key) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Key }))));
  const pages: string[][] = [];
  for await (const page of paginateListObjectsV2({ client, pageSize: 1 }, { Bucket: BUCKET, Prefix: 'order/' })) {
    pages.push((page.Contents ?? []).map((object) => object.Key!));
  }
  const expected = ['order/A1', 'order/B', 'order/_', 'order/a', 'order/c', 'order/\u00e9', 'order/\uffee', 'order/\u{1f600}'];
  expect(pages).toEqual(expected.map((key) => [key]));
  // The order is the UTF-8 bytes' order.
  expect([...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))).toEqual(expected);
});

test('PutObject with IfNoneMatch "*" never overwrites an existing key', async () => {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'cond/put', Body: 'first', IfNoneMatch: '*' }));
  await expect(client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'cond/put', Body: 'second', IfNoneMatch: '*' }))).rejects.toMatchObject({
    name: 'PreconditionFailed',
    $metadata: { httpStatusCode: 412 },
  });
  expect((await getBytes('cond/put')).toString()).toBe('first');
});

test('CompleteMultipartUpload with IfNoneMatch "*" fails on an existing key and leaves the upload to abort', async () => {
  const Key = 'cond/mpu';
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'committed' }));
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
  const { ETag } = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 1, Body: Buffer.from('replacement') }));
  expect(await uploadsInProgress('cond/')).toEqual([UploadId]);

  const complete = new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } });
  await expect(client.send(complete)).rejects.toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
  expect((await getBytes(Key)).toString()).toBe('committed');
  expect(await uploadsInProgress('cond/')).toEqual([UploadId]);

  await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId }));
  expect(await uploadsInProgress('cond/')).toEqual([]);
  await expect(client.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 2, Body: 'late' }))).rejects.toMatchObject({
    name: 'NoSuchUpload',
  });
});

test('CompleteMultipartUpload with IfNoneMatch "*" succeeds on a new key', async () => {
  const Key = 'cond/new';
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
  const { ETag } = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 1, Body: Buffer.from('only part') }));
  await client.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } }));
  expect((await getBytes(Key)).toString()).toBe('only part');
  expect(await uploadsInProgress('cond/')).toEqual([]);
});

test('CompleteMultipartUpload with per-part checksums in the part list commits every part', async () => {
  const Key = 'cond/checksummed';
  const data = randomBytes(5 * MiB + 10);
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key, ChecksumAlgorithm: 'CRC32' }));
  const first = await client.send(
    new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 1, Body: data.subarray(0, 5 * MiB), ChecksumAlgorithm: 'CRC32' }),
  );
  const second = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 2, Body: data.subarray(5 * MiB), ChecksumAlgorithm: 'CRC32' }));
  // As a real S3 client sends them: each part with the checksum S3 returned for it.
  const parts = [
    { PartNumber: 1, ETag: first.ETag, ChecksumCRC32: first.ChecksumCRC32 ?? 'AAAAAA==' },
    { PartNumber: 2, ETag: second.ETag, ChecksumCRC32: second.ChecksumCRC32 ?? 'AAAAAA==' },
  ];
  await client.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId, MultipartUpload: { Parts: parts } }));
  expect((await getBytes(Key)).equals(data)).toBe(true);
});

test('CompleteMultipartUpload refuses a wrong ETag, parts out of order and a small part before the last', async () => {
  const Key = 'complete/refused';
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
  const upload = (PartNumber: number, Body: Buffer) => client.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber, Body }));
  const big = await upload(1, randomBytes(5 * MiB));
  const small = await upload(2, Buffer.from('small'));
  const last = await upload(3, Buffer.from('last'));
  const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
    client.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId, MultipartUpload: { Parts } }));
  await expect(complete([{ PartNumber: 1, ETag: '"00000000000000000000000000000000"' }])).rejects.toMatchObject({ name: 'InvalidPart' });
  await expect(complete([{ PartNumber: 2, ETag: small.ETag }, { PartNumber: 1, ETag: big.ETag }])).rejects.toMatchObject({ name: 'InvalidPartOrder' });
  await expect(complete([{ PartNumber: 2, ETag: small.ETag }, { PartNumber: 3, ETag: last.ETag }])).rejects.toMatchObject({ name: 'EntityTooSmall' });
  // Nothing was committed by the refusals, and the upload is still open.
  await expect(getBytes(Key)).rejects.toMatchObject({ name: 'NoSuchKey' });
  expect(await uploadsInProgress('complete/')).toEqual([UploadId]);
  await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId }));
});

test('a killed server is gone, stop() is still clean, and requests fail', async () => {
  const other = await startS3();
  const otherClient = other.client({ maxAttempts: 1 });
  await other.createBucket('doomed');
  other.kill();
  await other.stop();
  expect(() => process.kill(other.pid, 0)).toThrow();
  await expect(otherClient.send(new PutObjectCommand({ Bucket: 'doomed', Key: 'k', Body: 'x' }))).rejects.toThrow(/ECONNREFUSED|ECONNRESET|socket hang up/);
  otherClient.destroy();
});

test('the server runs with its glibc malloc tunables, keeping tunables already set', () => {
  // glibc rewrites the variable in its process once parsed (passing on only some tunables to
  // children), so what /proc shows is a part of what was set; the spawn passed all of it.
  const environ = readFileSync(`/proc/${s3.pid}/environ`, 'utf8').split('\0');
  expect(environ.find((entry) => entry.startsWith('GLIBC_TUNABLES='))).toContain('glibc.malloc.hugetlb=1');
  expect(s3ServerTunables(undefined)).toMatch(/^glibc\.malloc\.hugetlb=1:glibc\.malloc\.mmap_threshold=\d+:glibc\.malloc\.trim_threshold=\d+$/);
  expect(s3ServerTunables('glibc.malloc.arena_max=2')).toBe(`glibc.malloc.arena_max=2:${s3ServerTunables(undefined)}`);
});
