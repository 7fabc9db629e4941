import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, ListObjectVersionsCommand,
  PutObjectCommand, UploadPartCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { AccessDeniedError, asAwsService, type AwsRequest, type IamEvaluator } from './iam';

/** The local S3 server's replica header (local/servers/s3-versioning.mjs REPLICA_HEADER). */
const REPLICA_HEADER = 'x-lifeboat-replica-of-version';

export interface LocalReplicatorOptions {
  readonly source: S3Client;
  readonly sourceBucket: string;
  readonly destination: S3Client;
  readonly destinationBucket: string;
  readonly log?: (line: string) => void;
  /** @default 200 ms */
  readonly intervalMs?: number;
  /**
   * IAM-true: what replication asks IAM for one object (LocalAws.replicationRequests), and the
   * evaluator that answers. A denied object is not replicated (S3 marks it FAILED), and says so.
   * @default - not evaluated
   */
  readonly iam?: { readonly evaluator: IamEvaluator; readonly requests: (key: string) => AwsRequest[] };
}

/**
 * Stands in for S3 Cross-Region Replication, which no local S3 server offers: copies every
 * new version of the primary bucket to the offsite bucket under the same key and version id,
 * with the same lock, like a replication rule without delete-marker replication. It says what it is in every line it
 * logs, so nobody mistakes a local run for a proof of the real replication. A failed copy is
 * logged, never swallowed, and tried again at the next pass (S3 retries failed replication
 * of transient errors; an AccessDenied is reported once and not retried, as S3 marks it FAILED).
 */
export class LocalReplicator {
  public static readonly NAME = 'local replicator (stands in for S3 Cross-Region Replication)';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly copied = new Set<string>();
  /** Objects S3 would mark FAILED (denied): key@etag → the reason. */
  public readonly failed = new Map<string, string>();
  public paused = false;

  constructor(private readonly opts: LocalReplicatorOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running || this.paused) return;
      this.running = this.copyNew()
        .then(() => undefined, (error: Error) => this.opts.log?.(`${LocalReplicator.NAME}: pass failed: ${error.name}: ${error.message}`))
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
  copyNew(): Promise<string[]> {
    return asAwsService('s3-replication', () => this.pass());
  }

  private async pass(): Promise<string[]> {
    const { source, sourceBucket } = this.opts;
    // Every version, oldest first per key (S3 replicates each new version as it is written).
    const pending: { key: string; versionId?: string; id: string }[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const page = await source.send(new ListObjectVersionsCommand({ Bucket: sourceBucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
      for (const version of [...(page.Versions ?? [])].reverse()) {
        const versionId = version.VersionId && version.VersionId !== 'null' ? version.VersionId : undefined;
        const id = `${version.Key}@${versionId ?? version.ETag}`;
        if (!this.copied.has(id) && !this.failed.has(id)) pending.push({ key: version.Key as string, versionId, id });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (keyMarker);
    const copied: string[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      for (let next = pending.shift(); next; next = pending.shift()) {
        const denied = await this.denied(next.key);
        if (denied) {
          this.failed.set(next.id, denied);
          this.opts.log?.(`${LocalReplicator.NAME}: replication of s3://${sourceBucket}/${next.key} FAILED: ${denied}`);
          continue;
        }
        try {
          await this.copy(next.key, next.versionId);
        } catch (error) {
          this.opts.log?.(`${LocalReplicator.NAME}: copy of s3://${sourceBucket}/${next.key} failed (retried at the next pass): ${(error as Error).name}: ${(error as Error).message}`);
          continue;
        }
        this.copied.add(next.id);
        copied.push(next.key);
      }
    });
    await Promise.all(workers);
    return copied;
  }

  /** Why IAM denies replicating `key`, or undefined when it allows it (or nothing is evaluated). */
  private async denied(key: string): Promise<string | undefined> {
    if (!this.opts.iam) return undefined;
    try {
      await this.opts.iam.evaluator.authorize(this.opts.iam.requests(key));
      return undefined;
    } catch (error) {
      if (!(error instanceof AccessDeniedError)) throw error;
      return `${error.name}: ${error.message}`;
    }
  }

  /**
   * One version, as S3 replication writes it: the same key, bytes, content type and lock (a
   * replica keeps its source's retention and legal hold), the same version id (asked of the
   * local server with its replica header, which only this stand-in sends), and the same part
   * layout, so the same ETag: a multipart object is copied part for part.
   */
  private async copy(key: string, versionId: string | undefined): Promise<void> {
    const { source, sourceBucket, destination, destinationBucket } = this.opts;
    const first = await source.send(new GetObjectCommand({ Bucket: sourceBucket, Key: key, VersionId: versionId, PartNumber: 1 }));
    const parts = first.PartsCount ?? 1;
    const lock = {
      ...(first.ObjectLockMode && first.ObjectLockRetainUntilDate && first.ObjectLockRetainUntilDate.getTime() > Date.now()
        ? { ObjectLockMode: first.ObjectLockMode, ObjectLockRetainUntilDate: first.ObjectLockRetainUntilDate }
        : {}),
      ...(first.ObjectLockLegalHoldStatus ? { ObjectLockLegalHoldStatus: first.ObjectLockLegalHoldStatus } : {}),
    };
    const replica = <C extends { middlewareStack: PutObjectCommand['middlewareStack'] }>(command: C): C => {
      if (versionId) {
        command.middlewareStack.add((next) => async (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers) request.headers[REPLICA_HEADER] = versionId;
          return next(args);
        }, { step: 'build', name: 'lifeboatReplicaVersion' });
      }
      return command;
    };
    const bytesOf = async (object: { Body?: unknown }) => (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
    if (parts === 1) {
      await destination.send(replica(new PutObjectCommand({ Bucket: destinationBucket, Key: key, Body: await bytesOf(first), ContentType: first.ContentType, ...lock })));
    } else {
      const upload = await destination.send(replica(new CreateMultipartUploadCommand({ Bucket: destinationBucket, Key: key, ContentType: first.ContentType, ...lock })) as CreateMultipartUploadCommand);
      try {
        const completed: { PartNumber: number; ETag?: string }[] = [];
        for (let part = 1; part <= parts; part++) {
          const object = part === 1 ? first : await source.send(new GetObjectCommand({ Bucket: sourceBucket, Key: key, VersionId: versionId, PartNumber: part }));
          const stored = await destination.send(new UploadPartCommand({ Bucket: destinationBucket, Key: key, UploadId: upload.UploadId, PartNumber: part, Body: await bytesOf(object) }));
          completed.push({ PartNumber: part, ETag: stored.ETag });
        }
        await destination.send(new CompleteMultipartUploadCommand({ Bucket: destinationBucket, Key: key, UploadId: upload.UploadId, MultipartUpload: { Parts: completed } }));
      } catch (error) {
        await destination.send(new AbortMultipartUploadCommand({ Bucket: destinationBucket, Key: key, UploadId: upload.UploadId })).catch(() => undefined);
        throw error;
      }
    }
    this.opts.log?.(`${LocalReplicator.NAME}: s3://${sourceBucket}/${key}${versionId ? ` (version ${versionId})` : ''}${parts > 1 ? `, ${parts} parts` : ''} → s3://${destinationBucket}/${key}`);
  }
}
