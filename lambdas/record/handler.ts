/**
 * Record (docs/backup-run.md): input the whole state, result `$.record` = `{ eventId, metrics }`.
 * Metrics BackupSucceeded, BackupBytes, BackupDurationSeconds, BackupThroughputBytesPerSecond,
 * OffsiteLagSeconds (dimension source) and a `Backup Verified` event.
 * Environment: LIFEBOAT_EVENT_BUS (default "default"),
 * LIFEBOAT_EVENTS_ENDPOINT (local only).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { optionalEnv } from '../../lib/steps/env';
import { record } from '../../lib/steps/record';
import { createEventBridgeClient, DEFAULT_EVENT_BUS } from '../../lib/steps/telemetry';
import { logger, metrics } from '../shared/powertools';

const eventBus = optionalEnv('LIFEBOAT_EVENT_BUS') ?? DEFAULT_EVENT_BUS;
const events = createEventBridgeClient();

export const handler = middy(async (event: unknown) => {
  const result = await record(event, { metrics, events, eventBus });
  logger.info('backup recorded', { ...result });
  return result;
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
