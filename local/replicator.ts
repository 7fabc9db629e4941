import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Stands in for S3 Cross-Region Replication, which no local S3 server offers: copies every
 * new object of the primary bucket to the offsite bucket under the same key, like a
 * replication rule without delete-marker replication. It says what it is in every line it
 * logs, so nobody mistakes a local run for a proof of the real replication.
 */
export class LocalReplicator {
  public static readonly NAME = 'local replicator (stands in for S3 Cross-Region Replication)';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly copied = new Set<string>();
  public paused = false;

  constructor(
    private readonly opts: {
      readonly source: S3Client;
      readonly sourceBucket: string;
      readonly destination: S3Client;
      readonly destinationBucket: string;
      readonly log?: (line: string) => void;
      /** @default 200 ms */
      readonly intervalMs?: number;
    },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running || this.paused) return;
      this.running = this.copyNew()
        .then(() => undefined, () => undefined)
        .finally(() => {
          this.running = undefined;
        });
    }, this.opts.intervalMs ?? 200);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Copies what is not copied yet, a few objects at a time, like S3 does; returns the keys copied. */
  async copyNew(): Promise<string[]> {
    const { source, sourceBucket } = this.opts;
    const pending: { key: string; etag: string }[] = [];
    let token: string | undefined;
    do {
      const page = await source.send(new ListObjectsV2Command({ Bucket: sourceBucket, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        const id = `${object.Key}@${object.ETag}`;
        if (!this.copied.has(id)) pending.push({ key: object.Key as string, etag: id });
      }
      token = page.NextContinuationToken;
    } while (token);
    const copied: string[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      for (let next = pending.shift(); next; next = pending.shift()) {
        await this.copy(next.key);
        this.copied.add(next.etag);
        copied.push(next.key);
      }
    });
    await Promise.all(workers);
    return copied;
  }

  private async copy(key: string): Promise<void> {
    const { source, sourceBucket, destination, destinationBucket } = this.opts;
    const body = await source.send(new GetObjectCommand({ Bucket: sourceBucket, Key: key }));
    const bytes = await (body.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
    await destination.send(new PutObjectCommand({ Bucket: destinationBucket, Key: key, Body: bytes }));
    await destination.send(new HeadObjectCommand({ Bucket: destinationBucket, Key: key }));
    this.opts.log?.(`${LocalReplicator.NAME}: s3://${sourceBucket}/${key} → s3://${destinationBucket}/${key}`);
  }
}
