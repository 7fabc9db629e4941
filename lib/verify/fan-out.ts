/**
 * One read of an object, many readers: every chunk goes to the SHA-256, the byte count and
 * each check's consumer, and the next chunk is read only when every consumer still reading has
 * taken this one (back-pressure: memory stays flat however large the object). A consumer that
 * stops early — `pg_restore -l` reads the header and TOC, then exits and its stdin gives EPIPE —
 * drops out; the others carry on to the last byte.
 */
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';

/** Per consumer: the most input that waits in memory for it. */
export const DEFAULT_WINDOW_BYTES = 1024 * 1024;

export interface Consumer {
  /** Resolves when the consumer can take more. Never rejects: a failing consumer drops out. */
  write(chunk: Buffer): Promise<void> | undefined;
  /** End of input. */
  end(): void;
}

/**
 * Wraps a Writable (a child's stdin, a decompressor). Its errors (EPIPE, a decompression
 * error) are recorded, not thrown: the owner reads `error` and decides what it means.
 */
export class WritableConsumer implements Consumer {
  private closed = false;
  private failure: Error | undefined;

  /**
   * @param windowBytes how much may wait in the stream's buffer before the reader pauses
   */
  constructor(
    private readonly stream: Writable,
    private readonly windowBytes = DEFAULT_WINDOW_BYTES,
  ) {
    stream.on('error', (error: Error) => {
      this.failure ??= error;
      this.closed = true;
    });
    stream.on('close', () => {
      this.closed = true;
    });
  }

  /** The first error the stream emitted (EPIPE after an early exit, or a real failure). */
  get error(): Error | undefined {
    return this.failure;
  }

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.closed || this.stream.destroyed || this.stream.writableEnded) return undefined;
    // Streams default to a 16 KiB buffer: waiting for 'drain' at that mark makes the reader and
    // this consumer take turns instead of working at the same time. Memory stays bounded.
    if (this.stream.write(chunk) || this.stream.writableLength < this.windowBytes) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        this.stream.off('error', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
      this.stream.on('error', done);
    });
  }

  end(): void {
    if (!this.closed && !this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }
}

/**
 * Gathers small chunks into writes of exactly `batchBytes` (the last one shorter) for a
 * consumer whose cost is per write rather than per byte. Chunks are copied once, into the
 * batch (the reader may reuse its chunks); a batch is a new buffer each time, since the
 * consumer may still hold the previous one.
 */
export class CoalescingConsumer implements Consumer {
  private batch: Buffer | undefined;
  private filled = 0;

  constructor(
    private readonly inner: Consumer,
    private readonly batchBytes: number,
  ) {}

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.batch === undefined && chunk.length >= this.batchBytes) return this.inner.write(chunk);
    let wait: Promise<void> | undefined;
    let offset = 0;
    while (offset < chunk.length) {
      this.batch ??= Buffer.allocUnsafe(this.batchBytes);
      const copied = chunk.copy(this.batch, this.filled, offset);
      this.filled += copied;
      offset += copied;
      if (this.filled === this.batchBytes) wait = this.flush() ?? wait;
    }
    return wait;
  }

  end(): void {
    void this.flush();
    this.inner.end();
  }

  private flush(): Promise<void> | undefined {
    if (this.batch === undefined || this.filled === 0) return undefined;
    const batch = this.filled === this.batchBytes ? this.batch : this.batch.subarray(0, this.filled);
    this.batch = undefined;
    this.filled = 0;
    return this.inner.write(batch);
  }
}

export interface FanOutResult {
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * Reads `source` to its end once, feeding the hash and `consumers`; ends every consumer after
 * the last chunk. Rejects only when reading the source fails (the network), after ending the
 * consumers so their processes exit.
 */
export async function fanOut(
  source: AsyncIterable<Uint8Array>,
  consumers: readonly Consumer[],
  onProgress?: (bytes: number) => void,
): Promise<FanOutResult> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const piece of source) {
      const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      hash.update(chunk);
      bytes += chunk.length;
      const waits = consumers.map((consumer) => consumer.write(chunk)).filter((wait) => wait !== undefined);
      if (waits.length > 0) await Promise.all(waits);
      onProgress?.(bytes);
    }
  } finally {
    for (const consumer of consumers) consumer.end();
  }
  return { bytes, sha256: hash.digest('hex') };
}
