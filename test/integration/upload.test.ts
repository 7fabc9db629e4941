/**
 * streamToS3 against the real local S3 server (its own process): the commit protocol, end to
 * end, with real producer processes feeding it through pipes.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { crc32 } from 'node:zlib';
import { startS3, type S3Server } from '../harness/s3';
import { MiB, UPLOAD_ATTEMPT_METADATA } from '../../worker/upload-parts';
import { streamToS3, type StreamToS3Options } from '../../worker/upload';

const BUCKET = 'runs';

let s3: S3Server;
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3();
  client = s3.client();
  await s3.createBucket(BUCKET);
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

interface Producer {
  readonly stdout: Readable;
  readonly completion: Promise<void>;
  kill(): void;
}

/** A real producer process (argv, no shell string from outside); completion follows its exit status. */
function produce(script: string): Producer {
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  const completion = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`producer exited with ${code ?? signal}`))));
  });
  // The upload decides what a producer failure means; the test must not crash on it.
  completion.catch(() => undefined);
  return { stdout: child.stdout, completion, kill: () => child.kill('SIGKILL') };
}

interface Sent {
  readonly command: string;
  readonly headers: Record<string, string>;
  readonly input: Record<string, unknown>;
}

/** Records every request a client sends, retries included (after the SDK's retry loop). */
function record(target: S3Client): Sent[] {
  const sent: Sent[] = [];
  target.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers: Record<string, string> };
      sent.push({ command: context.commandName as string, headers: { ...request.headers }, input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: 'deserialize', name: 'recordRequests', priority: 'low' },
  );
  return sent;
}

const commands = (sent: Sent[]): string[] => sent.map((entry) => entry.command);

async function objectBytes(key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

async function objectExists(key: string): Promise<boolean> {
  const listing = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: key }));
  return (listing.Contents ?? []).some((object) => object.Key === key);
}

async function uploadsInProgress(prefix: string): Promise<number> {
  const listing = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
  return listing.Uploads?.length ?? 0;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function upload(options: Partial<StreamToS3Options> & Pick<StreamToS3Options, 'key' | 'body' | 'completion'>) {
  return streamToS3({ client, bucket: BUCKET, sizeHintBytes: 20e6, ...options });
}

test('a 20 MB dump round-trips: bytes and SHA-256 match the object read back', async () => {
  const key = 'roundtrip/app.pgdump';
  const recording = s3.client();
  const log = record(recording);
  const producer = produce('head -c 20000000 /dev/urandom');
  const retainUntil = new Date(Date.now() + 86_400_000);
  const progress: number[] = [];

  const result = await streamToS3({
    client: recording,
    bucket: BUCKET,
    key,
    body: producer.stdout,
    completion: producer.completion,
    sizeHintBytes: 20e6,
    objectLockMode: 'COMPLIANCE',
    objectLockRetainUntil: retainUntil,
    onProgress: (bytes) => progress.push(bytes),
  });
  recording.destroy();

  const back = await objectBytes(key);
  expect(result).toMatchObject({ key, bytes: 20_000_000, parts: 4 });
  expect(back.length).toBe(20_000_000);
  expect(result.sha256).toBe(sha256(back));
  const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  expect(`"${result.etag}"`).toBe(head.ETag);
  expect(result.etag).toMatch(/-4$/);
  expect(result.durationMs).toBeGreaterThan(0);
  expect(progress.at(-1)).toBe(20_000_000);
  expect(await uploadsInProgress('roundtrip/')).toBe(0);

  expect(commands(log)).toEqual([
    'CreateMultipartUploadCommand',
    'UploadPartCommand',
    'UploadPartCommand',
    'UploadPartCommand',
    'UploadPartCommand',
    'CompleteMultipartUploadCommand',
  ]);
  const create = log[0];
  expect(create.headers['x-amz-object-lock-mode']).toBe('COMPLIANCE');
  expect(create.headers['x-amz-object-lock-retain-until-date']).toBe(retainUntil.toISOString());
  expect(create.headers['x-amz-checksum-algorithm']).toBe('CRC32');
  expect(log.at(-1)!.headers['if-none-match']).toBe('*');
  // Parts go as unsigned payloads (no second SHA-256 pass in the worker), each with the CRC32
  // S3 checks, which the signature covers.
  const partsSent = log.filter((entry) => entry.command === 'UploadPartCommand');
  const partBytes = [0, 1, 2, 3].map((i) => back.subarray(i * 5 * MiB, (i + 1) * 5 * MiB));
  expect(partsSent.map((entry) => entry.headers['x-amz-content-sha256'])).toEqual(Array(4).fill('UNSIGNED-PAYLOAD'));
  expect(partsSent.map((entry) => entry.headers['x-amz-checksum-crc32'])).toEqual(partBytes.map(crc32Base64));
  for (const entry of partsSent) {
    expect(entry.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-checksum-crc32;[^,]*x-amz-content-sha256/);
  }
});

/** The base64 big-endian CRC32 of `data`, as S3's x-amz-checksum-crc32. */
function crc32Base64(data: Buffer): string {
  const digest = Buffer.alloc(4);
  digest.writeUInt32BE(crc32(data));
  return digest.toString('base64');
}

test.each([
  ['a small dump', 70_000],
  ['an empty dump', 0],
])('%s goes as one conditional PutObject', async (_label, size) => {
  const key = `small/${size}.sql`;
  const data = randomBytes(size);
  const recording = s3.client();
  const log = record(recording);
  const result = await streamToS3({
    client: recording,
    bucket: BUCKET,
    key,
    body: Readable.from(size > 0 ? [data] : []),
    completion: Promise.resolve(),
  });
  recording.destroy();
  expect(result).toMatchObject({ key, bytes: size, sha256: sha256(data), parts: 1 });
  expect(log.find((entry) => entry.command === 'PutObjectCommand')?.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
  expect((await objectBytes(key)).equals(data)).toBe(true);
  expect(commands(log)).toEqual(['PutObjectCommand']);
  expect(log[0].headers['if-none-match']).toBe('*');
});

test('parts reuse at most concurrency + 1 buffers, and every part is byte-exact', async () => {
  const key = 'reuse/app.pgdump';
  const recording = s3.client();
  const bodies = new Set<ArrayBufferLike>();
  recording.middlewareStack.add(
    (next) => async (args) => {
      const body = (args.input as { Body?: unknown }).Body;
      if (Buffer.isBuffer(body)) bodies.add(body.buffer);
      return next(args);
    },
    { step: 'initialize', name: 'recordBodies' },
  );
  // 8 parts of 8 MiB (no size hint), 2 in flight: a buffer filled again before S3 had stored
  // its part would change the object's bytes.
  const sent = randomBytes(60 * 1024 * 1024);
  const chunks = Array.from({ length: sent.length / 65536 }, (_, i) => sent.subarray(i * 65536, (i + 1) * 65536));
  const result = await streamToS3({
    client: recording, bucket: BUCKET, key, body: Readable.from(chunks), completion: Promise.resolve(), concurrency: 2,
  });
  recording.destroy();
  expect(result).toMatchObject({ bytes: sent.length, parts: 8, sha256: sha256(sent) });
  expect(sha256(await objectBytes(key))).toBe(sha256(sent));
  expect(bodies.size).toBeLessThanOrEqual(3);
});

test('onStored: called once every part is stored, while the commit still waits for the producer', async () => {
  const key = 'staged/app.pgdump';
  const sent = randomBytes(12 * MiB);
  let exit!: () => void;
  const completion = new Promise<void>((resolve) => (exit = resolve));
  let storedAt: { uploading: number; exists: boolean } | undefined;
  let onStoredCalls = 0;
  const result = upload({
    key,
    body: Readable.from([sent]),
    completion,
    onStored: () => {
      onStoredCalls++;
      void Promise.all([uploadsInProgress('staged/'), objectExists(key)]).then(([uploading, exists]) => {
        storedAt = { uploading, exists };
        exit();
      });
    },
  });
  expect((await result).parts).toBe(3);
  // At onStored the upload was open with all its parts, not yet committed; then it committed.
  expect(storedAt).toEqual({ uploading: 1, exists: false });
  expect(onStoredCalls).toBe(1);
  expect(sha256(await objectBytes(key))).toBe(sha256(sent));
});

test('an upload waiting for its producer holds no part buffers', async () => {
  // A run keeps every database's upload waiting until all its dumps succeeded: each must not
  // keep its part buffers (up to concurrency + 1 of them) meanwhile.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const collected = async (refs: WeakRef<object>[]) => {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    return refs.filter((ref) => ref.deref() !== undefined).length;
  };
  for (const [label, size, parts] of [['multipart', 23 * MiB, 5], ['one part', 1 * MiB, 1]] as const) {
    const recording = s3.client();
    const buffers: WeakRef<object>[] = [];
    recording.middlewareStack.add(
      (next) => async (args) => {
        const body = (args.input as { Body?: unknown }).Body;
        if (Buffer.isBuffer(body)) buffers.push(new WeakRef(body.buffer));
        return next(args);
      },
      { step: 'initialize', name: 'watchBodies' },
    );
    let exit!: () => void;
    let heldWhileWaiting = -1;
    const result = streamToS3({
      client: recording, bucket: BUCKET, key: `waiting/${label}`, body: Readable.from([randomBytes(size)]), sizeHintBytes: 20e6,
      completion: new Promise<void>((resolve) => (exit = resolve)),
      onStored: () => void collected(buffers).then((held) => {
        heldWhileWaiting = held;
        exit();
      }),
    });
    expect(await result).toMatchObject({ bytes: size, parts });
    recording.destroy();
    // Multipart: no part buffer is held but the last request's body, which the HTTP layer keeps
    // until the client's next request (one buffer per client, not per upload). One part:
    // nothing was sent yet.
    expect({ label, heldWhileWaiting }).toEqual({ label, heldWhileWaiting: parts === 1 ? 0 : 1 });
    expect(buffers.length).toBe(parts === 1 ? 1 : parts);
  }
});

describe('a failing producer leaves nothing behind', () => {
  test.each([
    ['after writing everything (12 MB, 3 parts)', 'head -c 12000000 /dev/urandom; exit 3', 'producer exited with 3', true],
    ['half-way through a part', 'head -c 7000000 /dev/urandom; exit 1', 'producer exited with 1', true],
    ['before the first part is full', 'head -c 1000 /dev/urandom; exit 2', 'producer exited with 2', false],
  ])('%s', async (label, script, reason, multipart) => {
    const key = `failed/${label.replace(/\W+/g, '-')}`;
    const recording = s3.client();
    const log = record(recording);
    const producer = produce(script);
    const error = await streamToS3({ client: recording, bucket: BUCKET, key, body: producer.stdout, completion: producer.completion, sizeHintBytes: 12e6 }).catch(
      (e: Error) => e,
    );
    recording.destroy();
    expect(error).toMatchObject({ name: 'UploadFailed', message: expect.stringContaining(reason) });
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect(await objectExists(key)).toBe(false);
    expect(await uploadsInProgress(key)).toBe(0);
    expect(commands(log)).not.toContain('CompleteMultipartUploadCommand');
    expect(commands(log)).not.toContain('PutObjectCommand');
    // Proves the path under test was taken: a multipart upload existed and was aborted.
    expect(commands(log).includes('AbortMultipartUploadCommand')).toBe(multipart);
  });

  test('a stream error fails the upload even though the producer "succeeded"', async () => {
    const key = 'failed/stream-error';
    const body = Readable.from(
      (async function* () {
        yield randomBytes(6 * MiB);
        throw new Error('read EIO');
      })(),
    );
    await expect(upload({ key, body, completion: Promise.resolve() })).rejects.toMatchObject({
      name: 'UploadFailed',
      message: expect.stringMatching(/failed reading the stream: read EIO/),
    });
    expect(await objectExists(key)).toBe(false);
    expect(await uploadsInProgress(key)).toBe(0);
  });
});

describe('an existing object at the key', () => {
  test.each([
    ['multipart (12 MB)', 12_000_000],
    ['single PutObject (10 kB)', 10_000],
  ])('%s: AlreadyCommitted, the original bytes unchanged, nothing in progress', async (label, size) => {
    const key = `existing/${label.replace(/\W+/g, '-')}`;
    const original = randomBytes(1234);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: original }));
    const error = await upload({ key, body: Readable.from([randomBytes(size)]), completion: Promise.resolve(), sizeHintBytes: size }).catch(
      (e: Error) => e,
    );
    expect(error).toMatchObject({ name: 'AlreadyCommitted', message: expect.stringContaining(`s3://${BUCKET}/${key} already holds`) });
    expect((await objectBytes(key)).equals(original)).toBe(true);
    expect(await uploadsInProgress(key)).toBe(0);
  });
});

describe('abort signal', () => {
  test('aborting mid-stream: Aborted, the reader stops, nothing left', async () => {
    const key = 'aborted/mid-stream';
    const controller = new AbortController();
    const producer = produce('cat /dev/urandom');
    const error = await upload({
      key,
      body: producer.stdout,
      completion: producer.completion,
      signal: controller.signal,
      onProgress: () => controller.abort(new Error('SIGTERM')),
    }).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'Aborted', message: expect.stringContaining('aborted: SIGTERM') });
    // The body was destroyed: the endless producer dies of the broken pipe.
    await expect(producer.completion).rejects.toThrow(/producer exited with/);
    expect(await objectExists(key)).toBe(false);
    expect(await uploadsInProgress(key)).toBe(0);
  });

  test('aborting while the dump is written but the producer has not exited: Aborted, nothing left', async () => {
    const key = 'aborted/awaiting-exit';
    const controller = new AbortController();
    // Closes its stdout after 12 MB, then lingers: the stream ends, the exit status is pending.
    const producer = produce('head -c 12000000 /dev/urandom; exec >&-; sleep 30');
    const pending = upload({ key, body: producer.stdout, completion: producer.completion, signal: controller.signal });
    await new Promise<void>((resolve) => producer.stdout.once('end', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 200));
    controller.abort(new Error('SIGTERM'));
    await expect(pending).rejects.toMatchObject({ name: 'Aborted' });
    producer.kill();
    expect(await objectExists(key)).toBe(false);
    expect(await uploadsInProgress(key)).toBe(0);
  });

  test('an already-aborted signal: Aborted before any request', async () => {
    const recording = s3.client();
    const log = record(recording);
    const producer = produce('head -c 100 /dev/zero');
    await expect(
      streamToS3({ client: recording, bucket: BUCKET, key: 'aborted/early', body: producer.stdout, completion: producer.completion, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'Aborted' });
    recording.destroy();
    expect(log).toEqual([]);
  });
});

test('a commit whose response is lost is recognised as ours on the SDK retry', async () => {
  const key = 'retry/lost-response';
  const flaky = s3.client();
  const log = record(flaky);
  let dropped = false;
  flaky.middlewareStack.add(
    (next, context) => async (args) => {
      const response = await next(args);
      if (context.commandName === 'CompleteMultipartUploadCommand' && !dropped) {
        dropped = true;
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
      return response;
    },
    { step: 'deserialize', name: 'dropFirstCompleteResponse', priority: 'high' },
  );
  const data = randomBytes(11 * MiB);
  const result = await streamToS3({ client: flaky, bucket: BUCKET, key, body: Readable.from([data]), completion: Promise.resolve(), sizeHintBytes: 11e6 });
  flaky.destroy();
  expect(dropped).toBe(true);
  expect(commands(log).filter((c) => c === 'CompleteMultipartUploadCommand')).toHaveLength(2);
  expect(result).toMatchObject({ bytes: data.length, sha256: sha256(data), parts: 3 });
  const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  expect(`"${result.etag}"`).toBe(head.ETag);
  expect(head.Metadata?.[UPLOAD_ATTEMPT_METADATA]).toMatch(/^[0-9a-f-]{36}$/);
  expect(await uploadsInProgress(key)).toBe(0);
});

describe('the S3 server goes away', () => {
  test('killed mid-upload: UploadFailed after bounded retries, and nothing was committed', async () => {
    const doomed = await startS3();
    try {
      await doomed.createBucket(BUCKET);
      const doomedClient = doomed.client({ maxAttempts: 2 });
      const log = record(doomedClient);
      const producer = produce('cat /dev/urandom');
      const error = await streamToS3({
        client: doomedClient,
        bucket: BUCKET,
        key: 'killed/app.pgdump',
        body: producer.stdout,
        completion: producer.completion,
        onProgress: () => doomed.kill(),
      }).catch((e: Error) => e);
      doomedClient.destroy();
      expect(error).toMatchObject({ name: 'UploadFailed', message: expect.stringMatching(/failed at part \d+: .*(ECONNREFUSED|ECONNRESET|socket hang up)/) });
      expect((error as Error).message).toMatch(/could not be aborted .*: it holds no object/);
      // The server and its memory are gone; what proves nothing was committed is that no commit was ever sent.
      expect(commands(log)).toContain('UploadPartCommand');
      expect(commands(log)).not.toContain('CompleteMultipartUploadCommand');
      expect(commands(log)).not.toContain('PutObjectCommand');
      await expect(producer.completion).rejects.toThrow(/producer exited with/);
    } finally {
      await doomed.stop();
    }
  });

  test('a frozen server holds the reader back: memory stays bounded by the part buffers', async () => {
    const frozen = await startS3();
    try {
      await frozen.createBucket(BUCKET);
      const frozenClient = frozen.client();
      let pulled = 0;
      const body = new Readable({
        read() {
          pulled += 64 * 1024;
          this.push(Buffer.alloc(64 * 1024, 7));
        },
      });
      const controller = new AbortController();
      let froze: () => void = () => undefined;
      const frozenNow = new Promise<void>((resolve) => (froze = resolve));
      const pending = streamToS3({
        client: frozenClient,
        bucket: BUCKET,
        key: 'frozen/app.pgdump',
        body,
        completion: Promise.resolve(),
        concurrency: 2,
        signal: controller.signal,
        // Freeze once the multipart upload exists and a part is stored: parts are now in flight.
        onProgress: () => {
          frozen.kill('SIGSTOP');
          froze();
        },
      }).catch((e: Error) => e);
      await frozenNow;
      await new Promise((resolve) => setTimeout(resolve, 750));
      const early = pulled;
      await new Promise((resolve) => setTimeout(resolve, 750));
      const late = pulled;
      frozen.kill('SIGCONT');
      controller.abort(new Error('test over'));
      const error = await pending;
      frozenClient.destroy();
      expect(late).toBe(early);
      // 8 MiB parts: 1 stored, 2 in flight, 1 waiting for a slot (one more if a part landed
      // before the freeze), plus stream buffers; never the endless stream.
      expect(late).toBeGreaterThanOrEqual(4 * 8 * MiB);
      expect(late).toBeLessThan(5 * 8 * MiB + MiB);
      expect(error).toMatchObject({ name: 'Aborted' });
    } finally {
      await frozen.stop();
    }
  });
});

test('invalid options are reported together, before any request, and the body is released', async () => {
  const recording = s3.client();
  const log = record(recording);
  const body = Readable.from([Buffer.from('x')]);
  const error = await streamToS3({
    client: recording,
    bucket: BUCKET,
    key: 'invalid',
    body,
    completion: Promise.resolve(),
    sizeHintBytes: -5,
    objectLockMode: 'GOVERNANCE',
    concurrency: 0,
  }).catch((e: Error) => e);
  recording.destroy();
  expect(error).toMatchObject({ name: 'UploadFailed' });
  expect((error as Error).message).toMatch(/objectLockMode and objectLockRetainUntil: give both or neither/);
  expect((error as Error).message).toMatch(/sizeHintBytes: must be a non-negative number/);
  expect((error as Error).message).toMatch(/concurrency: must be a whole number of at least 1, got 0/);
  expect(body.destroyed).toBe(true);
  expect(log).toEqual([]);
});
