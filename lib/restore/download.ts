/** Step 1 of a restore: an artifact downloaded to a file, hashed and counted on the way. */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ManifestArtifact } from '../domain/manifest';
import { restoreError } from './errors';
import type { ProgressMeter } from './progress';

export interface Download {
  readonly artifact: Pick<ManifestArtifact, 'key' | 'bytes' | 'sha256' | 'versionId'>;
  readonly file: string;
  bytes: number;
  sha256: string;
}

export async function download(
  s3: S3Client,
  bucket: string,
  artifact: Download['artifact'],
  file: string,
  progress: ProgressMeter,
  signal?: AbortSignal,
): Promise<Download> {
  const result: Download = { artifact, file, bytes: 0, sha256: '' };
  const hash = createHash('sha256');
  // Exactly the version the manifest names (the one that was verified), not whatever is current.
  let object;
  try {
    object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: artifact.key, VersionId: artifact.versionId }), { abortSignal: signal });
  } catch (error) {
    const { name, message } = error as Error;
    const what = `s3://${bucket}/${artifact.key}${artifact.versionId ? ` (version ${artifact.versionId})` : ''}`;
    if (name === 'NoSuchKey' || name === 'NoSuchVersion' || name === 'NotFound') {
      throw restoreError('ArtifactMissing',
        `${what} is not in the bucket (${name}); nothing was restored. ` +
        'From the offsite bucket: replication may still be copying it, or it was removed; try the primary bucket or another run', error);
    }
    if (name === 'AbortError' || signal?.aborted) throw error;
    // Its own name (AccessDenied, …), saying which object: S3 answers 403 for a missing
    // object to a caller that may not list the bucket.
    throw Object.assign(new Error(`${what}: ${message}; nothing was restored`, { cause: error }), { name });
  }
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      result.bytes += chunk.length;
      progress.add(chunk.length);
      callback(null, chunk);
    },
  });
  await pipeline(object.Body as Readable, meter, createWriteStream(file, { mode: 0o600 }), { signal });
  result.sha256 = hash.digest('hex');
  return result;
}

export function fileName(key: string): string {
  return decodeURIComponent(key.slice(key.lastIndexOf('/') + 1)).replace(/[^A-Za-z0-9._-]/g, '_');
}

