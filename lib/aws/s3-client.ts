/**
 * The one S3 client factory: the worker, the Lambdas, the CLI and the tests all build their
 * S3Client here, so retries, timeouts and integrity checksums behave the same everywhere.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/** Environment variable naming an S3-compatible endpoint (a local server), e.g. http://127.0.0.1:4566. */
export const S3_ENDPOINT_ENV = 'LIFEBOAT_S3_ENDPOINT';

export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_CONNECTION_TIMEOUT_MS = 5_000;
export const DEFAULT_SOCKET_TIMEOUT_MS = 60_000;

export interface CreateS3ClientOptions {
  /**
   * @default - the SDK's resolution (AWS_REGION, profile, instance metadata)
   */
  readonly region?: string;
  /**
   * An S3-compatible endpoint.
   * @default - `LIFEBOAT_S3_ENDPOINT` from `env`, else the AWS endpoint for the region
   */
  readonly endpoint?: string;
  /**
   * @default - true when an endpoint is set (local servers have no per-bucket DNS), false otherwise
   */
  readonly forcePathStyle?: boolean;
  /**
   * @default - the SDK's default credential provider chain
   */
  readonly credentials?: S3ClientConfig['credentials'];
  /**
   * Attempts per request, first try included, with the SDK's standard retry mode (exponential
   * backoff with jitter, retry quota).
   * @default 3
   */
  readonly maxAttempts?: number;
  /**
   * Time allowed to establish a connection.
   * @default 5000
   */
  readonly connectionTimeoutMs?: number;
  /**
   * A request whose socket stays idle this long fails (and is retried): a stalled server must not
   * hang a dump forever. Idle time, not total time, so a large part may take as long as it needs.
   * @default 60000
   */
  readonly socketTimeoutMs?: number;
  /**
   * Where `LIFEBOAT_S3_ENDPOINT` is read from.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The SDK's default integrity protection stays on: `requestChecksumCalculation` and
 * `responseChecksumValidation` are left at WHEN_SUPPORTED, so uploads carry CRC32 checksums
 * that S3 verifies and downloads are checked when S3 returns a checksum.
 */
export function createS3Client(opts: CreateS3ClientOptions = {}): S3Client {
  const env = opts.env ?? process.env;
  const endpoint = opts.endpoint ?? (env[S3_ENDPOINT_ENV] || undefined);
  const maxAttempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`maxAttempts: must be a whole number of at least 1, got ${maxAttempts}`);
  }
  return new S3Client({
    region: opts.region,
    endpoint,
    forcePathStyle: opts.forcePathStyle ?? endpoint !== undefined,
    credentials: opts.credentials,
    retryMode: 'standard',
    maxAttempts,
    requestHandler: {
      connectionTimeout: opts.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
      socketTimeout: opts.socketTimeoutMs ?? DEFAULT_SOCKET_TIMEOUT_MS,
    },
  });
}
