/**
 * The one RDS client factory: the checks, the snapshot copier, the drills' janitor, the CLI and
 * the tests build their RDSClient here, so that retries and timeouts behave the same everywhere
 * (as lib/aws/s3-client.ts does for S3). An RDS source's instance may live in the offsite region
 * too (its replicated automated backups, its snapshot copies): the region is always explicit.
 */
import { RDSClient, type RDSClientConfig } from '@aws-sdk/client-rds';

export const RDS_MAX_ATTEMPTS = 5;
export const RDS_CONNECTION_TIMEOUT_MS = 5_000;
export const RDS_SOCKET_TIMEOUT_MS = 30_000;

export interface CreateRdsClientOptions {
  /** The region whose RDS endpoint is called: the source's, or the offsite region. */
  readonly region: string;
  /** @default - the SDK's default credential provider chain */
  readonly credentials?: RDSClientConfig['credentials'];
  /**
   * Attempts per request, first try included, with the SDK's standard retry mode: RDS throttles
   * Describe calls per account (Throttling), which a few attempts with backoff ride out.
   * @default 5
   */
  readonly maxAttempts?: number;
}

export function createRdsClient(opts: CreateRdsClientOptions): RDSClient {
  return new RDSClient({
    region: opts.region,
    credentials: opts.credentials,
    retryMode: 'standard',
    maxAttempts: opts.maxAttempts ?? RDS_MAX_ATTEMPTS,
    requestHandler: { connectionTimeout: RDS_CONNECTION_TIMEOUT_MS, socketTimeout: RDS_SOCKET_TIMEOUT_MS },
  });
}

/** One client per region, made on first use (a function may call RDS in the primary and the offsite region). */
export function rdsClientsByRegion(opts: Omit<CreateRdsClientOptions, 'region'> = {}): { readonly client: (region: string) => RDSClient; destroy(): void } {
  const clients = new Map<string, RDSClient>();
  return {
    client(region) {
      const existing = clients.get(region);
      if (existing) return existing;
      const made = createRdsClient({ ...opts, region });
      clients.set(region, made);
      return made;
    },
    destroy() {
      for (const made of clients.values()) made.destroy();
      clients.clear();
    },
  };
}
