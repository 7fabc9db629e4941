/**
 * Watchdog (lib/steps/watchdog.ts): every 5 minutes, the age of each source's newest verified
 * and newest offsite-confirmed backup, and of a PITR source's WAL archive (its newest segment,
 * its gaps, the restorable window), as metrics the RPO alarms watch.
 * Environment: LIFEBOAT_BUCKET, LIFEBOAT_SOURCES_JSON (`[{"name": "orders", "rpoSeconds": 900}]`,
 * a PITR source with `"methods": ["pitr"], "stanza": "orders"`), LIFEBOAT_S3_ENDPOINT (local only).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createS3Client } from '../../lib/aws/s3-client';
import { requireEnv } from '../../lib/steps/env';
import { measureAges, parseWatchedSources, publishAges } from '../../lib/steps/watchdog';
import { logger, metrics } from '../shared/powertools';

const bucket = requireEnv('LIFEBOAT_BUCKET');
const sources = parseWatchedSources(requireEnv('LIFEBOAT_SOURCES_JSON'));
const s3 = createS3Client();

export const handler = middy(async () => {
  const ages = await measureAges({ s3, bucket, sources, now: new Date() });
  publishAges(ages, metrics);
  const late = ages.filter((age) => age.state !== 'fresh' || (age.archive?.gaps ?? 0) > 0);
  if (late.length > 0) logger.warn('sources beyond their RPO or with a gap in their WAL archive', { late });
  else logger.info('every source is within its RPO', { sources: ages.length });
  return { ages };
}).use(injectLambdaContext(logger));
