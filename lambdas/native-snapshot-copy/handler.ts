/**
 * The offsite copy of DB clusters' PITR, primary account (lib/rds/snapshot-copy.ts): hourly, each
 * cluster source's newest automated snapshot copied to the offsite region with the offsite key,
 * shared with the offsite account when it is another, old copies deleted; `NativeOffsiteAgeSeconds`
 * per source. A source that fails fails the invocation, after every source was tried.
 * Environment: LIFEBOAT_SOURCES_JSON (`[{"name", "identifier", "region", "retentionSeconds"}]`),
 * LIFEBOAT_OFFSITE_REGION, LIFEBOAT_OFFSITE_KEY_ARN, LIFEBOAT_PRIMARY_ACCOUNT, LIFEBOAT_OFFSITE_ACCOUNT
 * (only when it is not the primary account).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { rdsClientsByRegion } from '../../lib/rds/client';
import { advancePrimaryCopies, failureOf, parseClusterCopySources, publishOffsiteAges } from '../../lib/rds/snapshot-copy';
import { optionalEnv, requireEnv } from '../../lib/steps/env';
import { logger, metrics } from '../shared/powertools';

const sources = parseClusterCopySources(requireEnv('LIFEBOAT_SOURCES_JSON'));
const offsite = {
  region: requireEnv('LIFEBOAT_OFFSITE_REGION'),
  keyArn: requireEnv('LIFEBOAT_OFFSITE_KEY_ARN'),
  account: optionalEnv('LIFEBOAT_OFFSITE_ACCOUNT'),
};
const primaryAccount = requireEnv('LIFEBOAT_PRIMARY_ACCOUNT');
const rds = rdsClientsByRegion().client;

export const handler = middy(async () => {
  const reports = await advancePrimaryCopies({ rds, offsite, primaryAccount, now: new Date() }, sources);
  publishOffsiteAges(reports, metrics);
  for (const report of reports) {
    if (report.error) logger.error('snapshot copy failed', { report });
    // No automated snapshot: a cluster that does not exist (any more) lists none either; its alarm fires on the missing age.
    else if (report.action === 'no-snapshot') logger.warn('no available automated snapshot of the cluster', { report });
    else logger.info('snapshot copy', { report });
  }
  const failure = failureOf(reports);
  if (failure) throw failure;
  return { reports };
}).use(injectLambdaContext(logger));
