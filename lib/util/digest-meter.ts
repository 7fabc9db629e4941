/** A pass-through that counts and SHA-256-hashes what flows through it: what was read is what was checked. */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class DigestMeter extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  /** Called with each chunk's length (progress meters). */
  constructor(private readonly onBytes?: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    callback(null, chunk);
  }

  /** The hex SHA-256 of every byte so far; call once, after the end. */
  sha256(): string {
    return this.hash.digest('hex');
  }
}
