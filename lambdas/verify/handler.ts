/**
 * Verify (docs/backup-run.md): input `{ source, runId, bucket? }` from `$.dump`, result
 * `$.verification` = the ok verdict (lib/verify/verify-task VerifyResult). A failed verdict is
 * recorded in verification.json and thrown as ChecksumMismatch, SizeMismatch, ArchiveCorrupt,
 * TableSetMismatch, IncompleteDump, SuspiciousSize, ArtifactMissing or InvalidManifest.
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
    logger.info('run verified', { verdict: result.verdict, durationMs: result.durationMs, objects: result.artifacts.length });
    return result;
  } catch (error) {
    metrics.addMetric('VerificationFailed', MetricUnit.Count, 1);
    logger.error('verification failed', { errorName: (error as Error).name, message: (error as Error).message });
    throw error;
  }
})
  // resetKeys: a warm container must not carry the previous run's source and runId.
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics));
