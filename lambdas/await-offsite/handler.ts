/**
 * AwaitOffsite (docs/backup-run.md): input `{ dump, offsite?: { attempts } }`, result `$.offsite`
 * = `{ present, attempts, lagSeconds? }`; raises OffsiteMissing once the attempts are used up.
 * Environment: LIFEBOAT_BUCKET, LIFEBOAT_OFFSITE_BUCKET, LIFEBOAT_OFFSITE_REGION,
 * LIFEBOAT_OFFSITE_MAX_ATTEMPTS (default 16); LIFEBOAT_S3_ENDPOINT and
 * LIFEBOAT_OFFSITE_S3_ENDPOINT (local only).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createS3Client } from '../../lib/aws/s3-client';
import { awaitOffsite, DEFAULT_OFFSITE_MAX_ATTEMPTS } from '../../lib/steps/await-offsite';
import { optionalEnv, positiveIntegerEnv, requireEnv } from '../../lib/steps/env';
import { logger } from '../shared/powertools';

const bucket = requireEnv('LIFEBOAT_BUCKET');
const offsiteBucket = requireEnv('LIFEBOAT_OFFSITE_BUCKET');
const offsiteRegion = requireEnv('LIFEBOAT_OFFSITE_REGION');
const maxAttempts = positiveIntegerEnv('LIFEBOAT_OFFSITE_MAX_ATTEMPTS', DEFAULT_OFFSITE_MAX_ATTEMPTS);
const primary = createS3Client();
const offsite = createS3Client({ region: offsiteRegion, endpoint: optionalEnv('LIFEBOAT_OFFSITE_S3_ENDPOINT') });

export const handler = middy(async (event: unknown) => {
  const result = await awaitOffsite(event, { primary, offsite, bucket, offsiteBucket, offsiteRegion, maxAttempts });
  logger.info(result.present ? 'offsite copy confirmed' : 'offsite copy not there yet', { ...result, maxAttempts });
  return result;
}).use(injectLambdaContext(logger));
