/**
 * The RDS drill janitor (hourly, lib/constructs/native-drill.ts NativeDrillJanitor): deletes
 * every DB instance and cluster tagged `lifeboat:drill` older than LIFEBOAT_JANITOR_MAX_AGE_HOURS
 * in each of LIFEBOAT_JANITOR_REGIONS (lib/rds/drill-janitor.ts); never anything untagged. A
 * delete that fails fails the invocation (JanitorFailed) after the others were tried, so the
 * function's error metric shows it; the next hour tries again.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { createRdsClient } from '../../lib/rds/client';
import { cleanDrillLeftovers } from '../../lib/rds/drill-janitor';
import { configError, positiveIntegerEnv, requireEnv } from '../../lib/steps/env';
import { logger } from '../shared/powertools';

const regions = requireEnv('LIFEBOAT_JANITOR_REGIONS').split(',').map((region) => region.trim()).filter(Boolean);
if (regions.length === 0) throw configError('environment variable LIFEBOAT_JANITOR_REGIONS: at least one region is required');
const maxAgeHours = positiveIntegerEnv('LIFEBOAT_JANITOR_MAX_AGE_HOURS', 6);

export const handler = middy(async () => {
  const results = [];
  for (const region of regions) {
    const rds = createRdsClient({ region });
    try {
      results.push(await cleanDrillLeftovers({ rds, region, now: new Date(), maxAgeHours, log: (line) => logger.info(line) }));
    } finally {
      rds.destroy();
    }
  }
  const failed = results.flatMap((result) => result.failed);
  if (failed.length > 0) {
    throw Object.assign(new Error(`could not delete ${failed.length} drill leftover(s): ${failed.map((f) => `${f.leftover.identifier} (${f.error})`).join('; ')}`), { name: 'JanitorFailed' });
  }
  return results.map((result) => ({ region: result.region, deleted: result.deleted.map((d) => d.identifier), young: result.young.map((y) => y.identifier) }));
}).use(injectLambdaContext(logger));
