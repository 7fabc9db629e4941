/**
 * How a dump's bytes become S3 parts: S3's part limits and the part size a dump's size hint
 * asks for, the SHA-256 and byte count taken on the way, and the unsigned payload that spares a
 * second hash of every byte. The commit protocol that uploads them is upload.ts.
 */
import type { PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export const MiB = 1024 * 1024;
/** S3's smallest part (every part but the last). */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** S3's limit on parts per multipart upload. */
export const MAX_PARTS = 10_000;
/** Without a size hint: the AWS CLI's default chunk size; fits dumps up to 78 GiB. */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** A dump may grow to this many times its size hint and still fit in MAX_PARTS parts. */
export const SIZE_HINT_HEADROOM = 10;
/** Parts in flight at once, at most. */
export const DEFAULT_CONCURRENCY = 4;
/** Part buffers held at once are bounded by about this much memory (see `concurrency`). */
export const PART_MEMORY_BUDGET = 512 * MiB;
/** Object metadata key naming the upload attempt that wrote the object. */
export const UPLOAD_ATTEMPT_METADATA = 'lifeboat-upload-attempt';

/**
 * The part size for a dump expected to be about `sizeHintBytes` long: the smallest whole number
 * of MiB such that a dump SIZE_HINT_HEADROOM times larger still fits in MAX_PARTS parts, within
 * S3's [5 MiB, 5 GiB]. Without a hint (undefined or 0): DEFAULT_PART_SIZE.
 */
export function choosePartSize(sizeHintBytes?: number): number {
  if (sizeHintBytes === undefined || sizeHintBytes === 0) return DEFAULT_PART_SIZE;
  if (!Number.isFinite(sizeHintBytes) || sizeHintBytes < 0) {
    throw new RangeError(`sizeHintBytes: must be a non-negative number of bytes, got ${sizeHintBytes}`);
  }
  const needed = Math.ceil((sizeHintBytes * SIZE_HINT_HEADROOM) / MAX_PARTS / MiB) * MiB;
  return Math.min(MAX_PART_SIZE, Math.max(MIN_PART_SIZE, needed));
}

/**
 * Sends `command`'s body as an unsigned payload (`x-amz-content-sha256: UNSIGNED-PAYLOAD`).
 * The SDK otherwise hashes every body it signs with SHA-256: a second pass over every byte of
 * the dump, on top of the SHA-256 the manifest records. Integrity does not depend on it: the
 * buckets refuse requests without TLS, S3 checks each body against its CRC32 checksum (a signed
 * header), and the verifier checks the whole object's SHA-256.
 */
export function unsignedPayload<C extends UploadPartCommand | PutObjectCommand>(command: C): C {
  // Both commands' stacks take the same middleware; TypeScript cannot see it through the union.
  const stack = command.middlewareStack as unknown as UploadPartCommand['middlewareStack'];
  stack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> } | undefined;
      if (request?.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'lifeboatUnsignedPayload' },
  );
  return command;
}

/** A pass-through that hashes (SHA-256) and counts what flows through it. */
export class DigestStream extends Transform {
  private readonly hash = createHash('sha256');
  private count = 0;

  get bytes(): number {
    return this.count;
  }

  /** Hex digest; call once, after the stream has finished. */
  digest(): string {
    return this.hash.digest('hex');
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.hash.update(data);
    this.count += data.length;
    callback(null, data);
  }
}
