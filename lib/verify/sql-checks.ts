/**
 * The MySQL/MariaDB artifact checks, fed from the verifier's single read of the object: the
 * whole artifact decompresses (zstd frames complete, gzip to its trailer), and the SQL inside
 * ends with the dump client's completion marker and creates the manifest's tables.
 */
import { createGunzip, createZstdDecompress } from 'node:zlib';
import type { Transform } from 'node:stream';
import { CoalescingConsumer, WritableConsumer, type Consumer } from './fan-out';
import { SqlDumpScanner, ZstdFrameTracker, type SqlScanResult } from './sql-dump';

export interface SqlArtifactResult {
  readonly scan: SqlScanResult;
  /** Why the artifact does not decompress to its end. */
  readonly decompressError?: string;
  /** `zstd`, `gzip` or `none`. */
  readonly method: string;
}

export interface SqlArtifactChecks {
  readonly consumer: Consumer;
  /** Waits for the decompressor after the input has ended. */
  result(): Promise<SqlArtifactResult>;
}

const DECOMPRESS_CHUNK_BYTES = 256 * 1024;
/**
 * Node's decompressors do one thread-pool round trip per write: fed the HTTP body's 64 KiB
 * chunks, zstd ran at 40 % of the CLI's speed; fed 1 MiB, at 80 % (bench:verify, MariaDB).
 */
const DECOMPRESS_INPUT_BYTES = 1024 * 1024;

/** The decompression method of a manifest compression spec (`zstd:3`, `gzip:1`, `none`). */
export function compressionMethod(spec: string): 'zstd' | 'gzip' | 'none' | undefined {
  const method = spec.split(':')[0];
  return method === 'zstd' || method === 'gzip' || method === 'none' ? method : undefined;
}

/** `compression` must be one `compressionMethod` accepts. */
export function startSqlArtifactChecks(compression: string): SqlArtifactChecks {
  const method = compressionMethod(compression);
  if (method === undefined) throw new RangeError(`unknown compression "${compression}"`);
  const scanner = new SqlDumpScanner();
  if (method === 'none') {
    return {
      consumer: { write: (chunk) => void scanner.push(chunk), end: () => undefined },
      result: async () => ({ scan: scanner.finish(), method }),
    };
  }

  // Node's default 16 KiB output chunks make decompression several times slower than the CLI.
  const options = { chunkSize: DECOMPRESS_CHUNK_BYTES };
  const decompressor: Transform = method === 'zstd' ? createZstdDecompress(options) : createGunzip(options);
  const frames = method === 'zstd' ? new ZstdFrameTracker() : undefined;
  const input = new CoalescingConsumer(new WritableConsumer(decompressor), DECOMPRESS_INPUT_BYTES);
  decompressor.on('data', (chunk: Buffer) => scanner.push(chunk));
  const finished = new Promise<Error | undefined>((resolve) => {
    decompressor.once('end', () => resolve(undefined));
    decompressor.once('error', (error: Error) => resolve(error));
  });
  return {
    consumer: {
      write(chunk: Buffer) {
        frames?.push(chunk);
        return input.write(chunk);
      },
      end: () => input.end(),
    },
    async result(): Promise<SqlArtifactResult> {
      const error = await finished;
      const truncated = error ? undefined : frames?.finish();
      const decompressError = error ? `${method} decompression failed: ${error.message}` : truncated;
      return { scan: scanner.finish(), method, ...(decompressError ? { decompressError } : {}) };
    },
  };
}
