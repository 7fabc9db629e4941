/**
 * What the Verify step does with a verdict (docs/backup-run.md, commit protocol):
 *   - ok: nothing is written; the Commit step writes verification.json with "ok", and only
 *     from then does the run count as a backup;
 *   - failed: verification.json with "failed" is written as evidence for humans, then the
 *     named error is thrown for the state machine to match.
 * The write is conditional (If-None-Match: *): an existing verdict — above all an ok one
 * the Commit step wrote — is never overwritten. Safe to retry.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { verificationKey } from '../domain/layout';
import { serializeVerification, type Verification } from '../domain/verification';
import { isVerifyErrorName, verifyError } from './errors';

export interface RecordVerdictOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly verification: Verification;
  readonly log?: (line: string) => void;
}

/** Returns an ok verification; records and throws a failed one. */
export async function recordVerdict(options: RecordVerdictOptions): Promise<Verification> {
  const { verification } = options;
  if (verification.verdict === 'ok') return verification;
  const log = options.log ?? (() => undefined);
  const name = verification.error?.name ?? 'ArchiveCorrupt';
  let message = verification.error?.message ?? `run ${verification.source}/${verification.runId} failed verification`;

  const key = verificationKey(verification.source, verification.runId);
  try {
    await options.s3.send(new PutObjectCommand({
      Bucket: options.bucket,
      Key: key,
      Body: serializeVerification(verification),
      ContentType: 'application/json',
      IfNoneMatch: '*',
    }));
    log(`recorded the failed verdict at s3://${options.bucket}/${key}`);
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412 || (error as Error).name === 'PreconditionFailed') {
      log(`s3://${options.bucket}/${key} already holds a verdict; it is left as it is`);
    } else {
      // The verdict matters more than its evidence: still fail with the verdict's error.
      message += ` (the failed verdict could not be written to s3://${options.bucket}/${key}: ${(error as Error).name})`;
      log(`could not write s3://${options.bucket}/${key}: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }
  throw verifyError(isVerifyErrorName(name) ? name : 'ArchiveCorrupt', message);
}
