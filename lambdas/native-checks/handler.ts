/**
 * Native PITR checks of RDS/Aurora sources (lib/rds/native-checks.ts): every 5 minutes, per
 * source, the retention period against the tier's window, the age of LatestRestorableTime and,
 * for DB instances, of the automated backups replicated to the offsite region, as metrics the
 * native alarms watch; with manageNativeBackups, the retention raised and the replication
 * started. A source that could not be checked fails the invocation, after every source was
 * tried and published.
 * Environment: LIFEBOAT_NATIVE_SOURCES_JSON (`[{"name","kind","id","region","days","rpo","manage"?}]`),
 * LIFEBOAT_OFFSITE_REGION, LIFEBOAT_OFFSITE_KEY_ARN (optional: needed to replicate encrypted instances).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { rdsClientsByRegion } from '../../lib/rds/client';
import { failureOf, measureNative, parseNativeSources, publishNative } from '../../lib/rds/native-checks';
import { optionalEnv, requireEnv } from '../../lib/steps/env';
import { logger, metrics } from '../shared/powertools';

const sources = parseNativeSources(requireEnv('LIFEBOAT_NATIVE_SOURCES_JSON'));
const offsite = { region: requireEnv('LIFEBOAT_OFFSITE_REGION'), keyArn: optionalEnv('LIFEBOAT_OFFSITE_KEY_ARN') };
const rds = rdsClientsByRegion().client;

export const handler = middy(async () => {
  const measures = await measureNative({ rds, sources, offsite, now: new Date() });
  publishNative(measures, metrics);
  for (const measure of measures) {
    if (measure.actions.length > 0) logger.info('native backups changed', { source: measure.source, actions: measure.actions });
    if (measure.problems.length > 0) logger.warn('native PITR findings', { source: measure.source, problems: measure.problems });
  }
  const failure = failureOf(measures);
  if (failure) throw failure;
  return { measures };
}).use(injectLambdaContext(logger));
