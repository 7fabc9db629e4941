/**
 * Commit (docs/backup-run.md): input `{ dump, verification }`, result `$.commit`; raises
 * NotVerified, AlreadyCommitted. Environment: LIFEBOAT_BUCKET; LIFEBOAT_S3_ENDPOINT (local only).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createS3Client } from '../../lib/aws/s3-client';
import { commit } from '../../lib/steps/commit';
import { requireEnv } from '../../lib/steps/env';
import { logger } from '../shared/powertools';

const bucket = requireEnv('LIFEBOAT_BUCKET');
const s3 = createS3Client();

export const handler = middy(async (event: unknown) => {
  const result = await commit(event, { s3, bucket });
  logger.info(result.alreadyCommitted ? 'run already committed with this verdict (retried invocation)' : 'run committed', { ...result });
  return result;
}).use(injectLambdaContext(logger));
