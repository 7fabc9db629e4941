/**
 * Verify (docs/backup-run.md): input `$.dump` (`{ source, runId, bucket?, manifestVersionId? }`),
 * result `$.verification` = the verdict, ok or failed (lib/verify/verify-task VerifyResult): it
 * writes nothing; Commit records either verdict, and fails the run with a failed verdict's error
 * (ChecksumMismatch, SizeMismatch, ArchiveCorrupt, TableSetMismatch, IncompleteDump,
 * SuspiciousSize, ArtifactMissing, InvalidManifest). It throws only when it cannot judge.
 * Environment: LIFEBOAT_BUCKET; LIFEBOAT_SUSPICIOUS_SHRINK (default 0.5);
 * LIFEBOAT_PG_BIN_DIR (default: pg_restore on PATH); LIFEBOAT_S3_ENDPOINT (local only).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { createS3Client } from '../../lib/aws/s3-client';
import { parseVerifyInput, runVerifyTask, verifyConfigFromEnv } from '../../lib/verify/verify-task';
import { logger, metrics } from '../shared/powertools';

const config = verifyConfigFromEnv(process.env);
const s3 = createS3Client();

export const handler = middy(async (event: unknown) => {
  const input = parseVerifyInput(event);
  logger.appendKeys({ source: input.source, runId: input.runId });
  metrics.addDimension('source', input.source);
  try {
    const result = await runVerifyTask(input, {
      s3,
      bucket: config.bucket,
      suspiciousShrink: config.suspiciousShrink,
      verifiedBy: 'lambda',
      log: (line) => logger.info(line),
    });
    metrics.addMetric('VerificationDurationMs', MetricUnit.Milliseconds, result.durationMs);
    if (result.verdict === 'failed') metrics.addMetric('VerificationFailed', MetricUnit.Count, 1);
    logger.info('run verified', { verdict: result.verdict, error: result.error?.name, durationMs: result.durationMs, objects: result.artifacts.length });
    return result;
  } catch (error) {
    metrics.addMetric('VerificationFailed', MetricUnit.Count, 1);
    logger.error('verification could not judge the run', { errorName: (error as Error).name, message: (error as Error).message });
    throw error;
  }
})
  // resetKeys: a warm container must not carry the previous run's source and runId.
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics));
