/**
 * Prune (scheduled daily by the Pruner construct, one per bucket: the primary and the offsite
 * copy): applies each source's tier retention to the runs of LIFEBOAT_BUCKET, read as its own
 * catalog, with the safety invariants of lib/retention/policy.ts; a run goes only once no
 * version of it is under Object Lock, version by version (lib/retention/prune.ts).
 * Environment: LIFEBOAT_BUCKET; LIFEBOAT_SOURCES_JSON = [{ name, tier: { retentionSeconds,
 * scheduleSeconds } }]; LIFEBOAT_DRY_RUN = "true" to decide and log only; LIFEBOAT_S3_ENDPOINT
 * (local only). Safe to retry: a prune deletes only what the policy removes and no lock holds,
 * and again finds nothing left. A lock it cannot read fails the invocation (PruneFailed).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createS3Client } from '../../lib/aws/s3-client';
import { parsePruneSources, pruneSources, renderDecisionTable } from '../../lib/retention/prune';
import { configError, optionalEnv, requireEnv } from '../../lib/steps/env';
import { logger } from '../shared/powertools';

const bucket = requireEnv('LIFEBOAT_BUCKET');
const sources = (() => {
  try {
    return parsePruneSources(requireEnv('LIFEBOAT_SOURCES_JSON'));
  } catch (error) {
    if ((error as Error).name === 'InvalidConfiguration') throw error;
    throw configError(`environment variable LIFEBOAT_SOURCES_JSON: ${(error as Error).message}`);
  }
})();
const dryRunText = optionalEnv('LIFEBOAT_DRY_RUN') ?? 'false';
if (dryRunText !== 'true' && dryRunText !== 'false') throw configError(`environment variable LIFEBOAT_DRY_RUN: expected true or false, got "${dryRunText}"`);
const dryRun = dryRunText === 'true';
const s3 = createS3Client();

export const handler = middy(async () => {
  const results = await pruneSources({ s3, bucket, sources, now: new Date(), dryRun });
  for (const { rows, ...summary } of results) {
    logger.info(`retention of ${summary.source}${dryRun ? ' (dry run)' : ''}\n${renderDecisionTable(rows)}`, { ...summary });
  }
  return results.map(({ rows: _rows, ...summary }) => summary);
}).use(injectLambdaContext(logger));
