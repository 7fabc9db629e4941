/**
 * The offsite copy of DB clusters' PITR, offsite account (lib/rds/snapshot-copy.ts): hourly, each
 * staging copy the primary account shares copied into this account with this account's key, old
 * copies deleted; `NativeOffsiteAgeSeconds` per source, in this account. A source that fails
 * fails the invocation, after every source was tried.
 * Environment: LIFEBOAT_SOURCES_JSON (`[{"name", "retentionSeconds"}]`), LIFEBOAT_PRIMARY_ACCOUNT,
 * LIFEBOAT_KEY_ARN; AWS_REGION (Lambda's own: this region's RDS).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createRdsClient } from '../../lib/rds/client';
import { advanceOffsiteCopies, failureOf, parseOffsiteCopySources, publishOffsiteAges } from '../../lib/rds/snapshot-copy';
import { requireEnv } from '../../lib/steps/env';
import { logger, metrics } from '../shared/powertools';

const sources = parseOffsiteCopySources(requireEnv('LIFEBOAT_SOURCES_JSON'));
const primaryAccount = requireEnv('LIFEBOAT_PRIMARY_ACCOUNT');
const keyArn = requireEnv('LIFEBOAT_KEY_ARN');
const rds = createRdsClient({ region: requireEnv('AWS_REGION') });

export const handler = middy(async () => {
  const reports = await advanceOffsiteCopies({ rds, primaryAccount, keyArn, now: new Date() }, sources);
  publishOffsiteAges(reports, metrics);
  for (const report of reports) {
    if (report.error) logger.error('offsite snapshot copy failed', { report });
    else if (report.action === 'no-snapshot') logger.warn('no staging copy shared by the primary account', { report });
    else logger.info('offsite snapshot copy', { report });
  }
  const failure = failureOf(reports);
  if (failure) throw failure;
  return { reports };
}).use(injectLambdaContext(logger));
