/**
 * Streams a producer's output (a dump process's stdout) into one S3 object under the commit
 * protocol: the object appears only if the stream ended AND the producer succeeded; otherwise
 * the multipart upload is aborted and nothing is left at the key.
 *
 * A hand-written multipart uploader rather than lib-storage's `Upload`: the commit has to wait
 * for the producer's exit status, the completion has to carry `If-None-Match: *`, an abort has
 * to stop reading, cancel in-flight parts and abort the upload before the promise settles, and
 * a failed part has to stop the rest at once. All four are awkward to bolt onto `Upload`.
 */
import {
  AbortMultipartUploadCommand,
  type ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  type CompletedPart,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  type ObjectLockMode,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { lifeboatError } from '../lib/domain/errors';
import {
  choosePartSize, DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE, DigestStream, MAX_PARTS, MiB, PART_MEMORY_BUDGET, SIZE_HINT_HEADROOM, UPLOAD_ATTEMPT_METADATA,
  unsignedPayload,
} from './upload-parts';

export interface StreamToS3Options {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  /** The producer's output. Consumed to the end; destroyed if the upload fails. */
  readonly body: Readable;
  /**
   * Settles when the producer is done: resolves if it exited 0, rejects otherwise. The object
   * is committed only after this resolves; a rejection aborts the upload at once.
   */
  readonly completion: Promise<void>;
  /**
   * Expected size, for the part size (see `choosePartSize`).
   * @default - no hint: 8 MiB parts
   */
  readonly sizeHintBytes?: number;
  /**
   * Parts uploaded in parallel. Memory held is about (concurrency + 1) × part size.
   * @default - 4, fewer when parts are so large that 4 would exceed 512 MiB
   */
  readonly concurrency?: number;
  /** @default 'application/octet-stream' */
  readonly contentType?: string;
  /** User metadata (x-amz-meta-*). */
  readonly metadata?: Record<string, string>;
  /**
   * Object Lock mode for the object; requires `objectLockRetainUntil`.
   * @default - none: the bucket's default retention applies
   */
  readonly objectLockMode?: ObjectLockMode;
  /** Object Lock retain-until date; requires `objectLockMode`. */
  readonly objectLockRetainUntil?: Date;
  /**
   * Aborts the upload (the worker's SIGTERM). Honoured until the commit request is sent; a
   * commit already on its way is allowed to finish, and the result stands.
   */
  readonly signal?: AbortSignal;
  /** Called with the bytes stored in S3 so far, after each part (for heartbeats and progress lines). */
  readonly onProgress?: (bytesUploaded: number) => void;
  /**
   * Called once the whole stream is read and every part is stored, when the upload waits only
   * for `completion` to commit (a stream that fits in one part is then held in memory).
   */
  readonly onStored?: () => void;
}

export interface StreamToS3Result {
  readonly key: string;
  /** Bytes read from the producer, which is the object's size. */
  readonly bytes: number;
  /** Hex SHA-256 of those bytes. */
  readonly sha256: string;
  /** Multipart parts; 1 when the whole stream fitted in one part and went as one PutObject. */
  readonly parts: number;
  /** The object's ETag, without quotes. */
  readonly etag: string;
  /** The version S3 gave the object (a versioned bucket); readers read exactly this one. */
  readonly versionId?: string;
  readonly durationMs: number;
}

export type UploadResult = StreamToS3Result;

/**
 * Uploads `body` to s3://bucket/key under the commit protocol (module comment).
 *
 * Rejects with an Error whose `name` is:
 * - `AlreadyCommitted`: an object already exists at the key (`If-None-Match: *` failed); it is
 *   left untouched and this upload is aborted;
 * - `Aborted`: `signal` aborted before the commit; the upload is aborted;
 * - `UploadFailed`: anything else (stream error, producer failure — its error is the `cause` —,
 *   S3 failure after the client's retries, more than MAX_PARTS parts); the upload is aborted.
 * If even the abort fails (S3 unreachable), the message says so and names the upload id; the
 * upload holds no object, and the bucket's AbortIncompleteMultipartUpload rule removes its parts.
 */
export async function streamToS3(opts: StreamToS3Options): Promise<StreamToS3Result> {
  const started = performance.now();
  const { client, bucket, key, body, signal } = opts;
  const target = `s3://${bucket}/${key}`;
  const attempt = randomUUID();

  const internal = new AbortController();
  let failure: Error | undefined;
  const fail = (error: Error): void => {
    if (failure) return;
    failure = error;
    internal.abort(error);
  };
  const onAbort = (): void => fail(lifeboatError('Aborted', `upload to ${target} aborted: ${describe(signal?.reason)}`));
  signal?.addEventListener('abort', onAbort, { once: true });
  const aborted = new Promise<void>((resolve) => internal.signal.addEventListener('abort', () => resolve(), { once: true }));

  // Attached at once, so a producer that fails early never leaves an unhandled rejection.
  let producerOk = false;
  const producerDone = opts.completion.then(
    () => {
      producerOk = true;
    },
    (error: unknown) => fail(lifeboatError('UploadFailed', `upload to ${target} abandoned: the producer failed: ${describe(error)}`, error)),
  );

  let uploadId: string | undefined;
  try {
    const settings = validate(opts);
    if (signal?.aborted) onAbort();
    const checksumAlgorithm: ChecksumAlgorithm | undefined =
      (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED' ? 'CRC32' : undefined;
    const objectParams = {
      Bucket: bucket,
      Key: key,
      ContentType: opts.contentType ?? 'application/octet-stream',
      Metadata: { ...opts.metadata, [UPLOAD_ATTEMPT_METADATA]: attempt },
      ObjectLockMode: opts.objectLockMode,
      ObjectLockRetainUntilDate: opts.objectLockRetainUntil,
    };

    const digest = new DigestStream();
    const completed: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    let partsStarted = 0;
    let bytesUploaded = 0;
    let single: Buffer | undefined;

    /** `release` is called once S3 has stored the part: its buffer may then be filled again. */
    const startPart = async (data: Buffer, release?: () => void): Promise<void> => {
      if (partsStarted >= MAX_PARTS) {
        throw lifeboatError(
          'UploadFailed',
          `upload to ${target} failed: more than ${MAX_PARTS} parts of ${formatBytes(settings.partSize)}; ` +
            `the stream outgrew ${SIZE_HINT_HEADROOM}× its size hint (${formatBytes(opts.sizeHintBytes ?? 0)}): raise the hint`,
        );
      }
      if (failure) throw failure;
      const partNumber = ++partsStarted;
      if (uploadId === undefined) {
        // Not cancellable: an upload created after a cancel would be one we never learn to abort.
        const created = await client
          .send(new CreateMultipartUploadCommand({ ...objectParams, ChecksumAlgorithm: checksumAlgorithm }))
          .catch((error: unknown) => {
            throw lifeboatError('UploadFailed', `upload to ${target} failed to start: ${describeS3(error)}`, error);
          });
        uploadId = created.UploadId;
        if (!uploadId) throw lifeboatError('UploadFailed', `upload to ${target} failed to start: CreateMultipartUpload returned no upload id`);
      }
      while (inFlight.size >= settings.concurrency) await Promise.race(inFlight);
      if (failure) throw failure;
      const UploadId = uploadId;
      const task = client
        .send(
          unsignedPayload(new UploadPartCommand({
            Bucket: bucket, Key: key, UploadId, PartNumber: partNumber, Body: data, ContentLength: data.length, ChecksumAlgorithm: checksumAlgorithm,
          })),
          { abortSignal: internal.signal },
        )
        .then(
          (response) => {
            if (!response.ETag) throw new Error(`UploadPart ${partNumber} returned no ETag`);
            completed.push({
              PartNumber: partNumber,
              ETag: response.ETag,
              ...(response.ChecksumCRC32 && { ChecksumCRC32: response.ChecksumCRC32 }),
            });
            bytesUploaded += data.length;
            release?.();
            opts.onProgress?.(bytesUploaded);
          },
        )
        .catch((error: unknown) => {
          if (!failure) fail(lifeboatError('UploadFailed', `upload to ${target} failed at part ${partNumber}: ${describeS3(error)}`, error));
        })
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    };

    // Read, hash, cut into parts. Awaiting a free slot before reading on is the back-pressure:
    // the pipe to the producer fills and the producer blocks.
    // Part buffers are reused once S3 has stored their part: at most concurrency + 1 exist (one
    // filling, the rest in flight). Fresh buffers per part cost a page fault per 4 KiB each
    // time, which on a small VM is more CPU than the copy itself.
    const freeBuffers: Buffer[] = [];
    const takeBuffer = (): Buffer => freeBuffers.pop() ?? Buffer.allocUnsafe(settings.partSize);
    const consume = async (source: AsyncIterable<Buffer>): Promise<void> => {
      let current = takeBuffer();
      let filled = 0;
      try {
        for await (const chunk of source) {
          let offset = 0;
          while (offset < chunk.length) {
            const copied = chunk.copy(current, filled, offset);
            filled += copied;
            offset += copied;
            if (filled === settings.partSize) {
              const full = current;
              await startPart(full, () => freeBuffers.push(full));
              current = takeBuffer();
              filled = 0;
            }
          }
        }
        const last = current.subarray(0, filled);
        if (uploadId === undefined) single = last;
        else if (last.length > 0) await startPart(last);
      } catch (error) {
        if (isLifeboatError(error)) fail(error);
        throw error;
      }
    };
    let consumer: Promise<void> | undefined;
    try {
      await pipeline(body, digest, (source: AsyncIterable<Buffer>) => (consumer = consume(source)), { signal: internal.signal });
    } catch (error) {
      fail(failure ?? lifeboatError('UploadFailed', `upload to ${target} failed reading the stream: ${describe(error)}`, error));
    }
    // pipeline may settle on an abort while the consumer still waits on S3; its upload id matters.
    await consumer?.catch(() => undefined);
    await Promise.all(inFlight);
    // Waiting for the producer (or, in a run of several databases, for the others) holds no part
    // buffers: a stream that fitted in one part is kept at its own size, nothing else.
    freeBuffers.length = 0;
    if (single !== undefined && single.buffer.byteLength > single.length) single = Buffer.from(single);
    if (!failure) opts.onStored?.();
    await Promise.race([producerDone, aborted]);
    if (failure) throw failure;
    if (!producerOk) throw lifeboatError('UploadFailed', `upload to ${target} failed: the producer did not report success`);

    // The commit point: the abort signal no longer applies.
    signal?.removeEventListener('abort', onAbort);
    const bytes = digest.bytes;
    const sha256 = digest.digest();
    let etag: string;
    let versionId: string | undefined;
    let parts: number;
    try {
      if (uploadId === undefined) {
        const data = single ?? Buffer.alloc(0);
        const put = await client.send(unsignedPayload(new PutObjectCommand({ ...objectParams, Body: data, ContentLength: data.length, IfNoneMatch: '*' })));
        etag = put.ETag ?? '';
        versionId = put.VersionId;
        parts = 1;
        opts.onProgress?.(data.length);
      } else {
        completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
        const done = await client.send(
          new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, IfNoneMatch: '*', MultipartUpload: { Parts: completed } }),
        );
        uploadId = undefined;
        etag = done.ETag ?? '';
        versionId = done.VersionId;
        parts = completed.length;
      }
    } catch (error) {
      const committedByUs = await ownCommit(client, bucket, key, attempt, error);
      if (committedByUs === undefined) throw commitError(target, error);
      // A retry whose first attempt had committed (its response lost): the object is ours.
      uploadId = undefined;
      etag = committedByUs.etag;
      versionId = committedByUs.versionId;
      parts = completed.length || 1;
    }
    return {
      key, bytes, sha256, parts, etag: etag.replaceAll('"', ''), ...(versionId ? { versionId } : {}), durationMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    const thrown = failure ?? (error as Error);
    fail(thrown);
    body.destroy();
    if (uploadId !== undefined) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      } catch (abortError) {
        thrown.message +=
          `; and the multipart upload ${uploadId} could not be aborted (${describeS3(abortError)}): it holds no object,` +
          ' and the bucket lifecycle rule for incomplete multipart uploads removes its parts';
      }
    }
    throw thrown;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

interface Settings {
  readonly partSize: number;
  readonly concurrency: number;
}

function validate(opts: StreamToS3Options): Settings {
  const problems: string[] = [];
  if (!opts.bucket) problems.push('bucket: required');
  if (!opts.key) problems.push('key: required');
  if ((opts.objectLockMode === undefined) !== (opts.objectLockRetainUntil === undefined)) {
    problems.push('objectLockMode and objectLockRetainUntil: give both or neither');
  }
  if (opts.objectLockRetainUntil !== undefined && Number.isNaN(opts.objectLockRetainUntil.getTime())) {
    problems.push('objectLockRetainUntil: invalid date');
  }
  let partSize = DEFAULT_PART_SIZE;
  try {
    partSize = choosePartSize(opts.sizeHintBytes);
  } catch (error) {
    problems.push((error as Error).message);
  }
  const concurrency = opts.concurrency ?? Math.max(1, Math.min(DEFAULT_CONCURRENCY, Math.floor(PART_MEMORY_BUDGET / partSize)));
  if (!Number.isInteger(concurrency) || concurrency < 1) problems.push(`concurrency: must be a whole number of at least 1, got ${concurrency}`);
  if (problems.length > 0) {
    throw lifeboatError('UploadFailed', `upload to s3://${opts.bucket}/${opts.key} not started: ${problems.join('; ')}`);
  }
  return { partSize, concurrency };
}

/**
 * After a failed commit: if the object at the key carries this attempt's marker, the commit did
 * happen (an SDK retry of a commit whose response was lost sees 412 or NoSuchUpload): return its
 * ETag and version. Otherwise undefined.
 */
async function ownCommit(client: S3Client, bucket: string, key: string, attempt: string, error: unknown): Promise<{ etag: string; versionId?: string } | undefined> {
  const name = (error as Error | undefined)?.name;
  if (name !== 'PreconditionFailed' && name !== 'NoSuchUpload') return undefined;
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.Metadata?.[UPLOAD_ATTEMPT_METADATA] === attempt ? { etag: head.ETag ?? '', versionId: head.VersionId } : undefined;
  } catch {
    return undefined;
  }
}

function commitError(target: string, error: unknown): Error {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if ((error as Error).name === 'PreconditionFailed' || status === 412) {
    return lifeboatError(
      'AlreadyCommitted',
      `${target} already holds a committed object; it was left untouched and this upload was discarded (a slot is written once)`,
      error,
    );
  }
  return lifeboatError('UploadFailed', `upload to ${target} failed to commit: ${describeS3(error)}`, error);
}

const OWN_ERRORS = new Set(['UploadFailed', 'AlreadyCommitted', 'Aborted']);

function isLifeboatError(error: unknown): error is Error {
  return error instanceof Error && OWN_ERRORS.has(error.name);
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  return value === undefined ? 'no reason given' : String(value);
}

/** An SDK error in one line: name, message, HTTP status and attempts; never request headers. */
function describeS3(error: unknown): string {
  const e = error as Error & { $metadata?: { httpStatusCode?: number; attempts?: number } };
  const details = [
    e.$metadata?.httpStatusCode ? `HTTP ${e.$metadata.httpStatusCode}` : undefined,
    e.$metadata?.attempts ? `${e.$metadata.attempts} attempt(s)` : undefined,
  ].filter(Boolean);
  return `${e.name ?? 'Error'}: ${e.message ?? String(error)}${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / (1024 * MiB)).toFixed(1)} GiB`;
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
