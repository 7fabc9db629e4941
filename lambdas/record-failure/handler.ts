/**
 * RecordFailure (docs/backup-run.md): input the whole state plus `$.failure` and
 * `$.failedState`, result `$.notification` = `{ subject, message }` for SNS. Never throws:
 * configuration it cannot use is logged and left out of the message, not fatal.
 * Environment: LIFEBOAT_BUCKET (the catalog, for the age of the last verified backup),
 * LIFEBOAT_RPO_SECONDS (JSON, source → RPO seconds, optional), LIFEBOAT_EVENT_BUS (default
 * "default"); LIFEBOAT_S3_ENDPOINT and LIFEBOAT_EVENTS_ENDPOINT (local only).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { createS3Client } from '../../lib/aws/s3-client';
import { optionalEnv, secondsBySourceEnv } from '../../lib/steps/env';
import { recordFailure } from '../../lib/steps/record-failure';
import { createEventBridgeClient, DEFAULT_EVENT_BUS } from '../../lib/steps/telemetry';
import { logger, metrics } from '../shared/powertools';

const eventBus = optionalEnv('LIFEBOAT_EVENT_BUS') ?? DEFAULT_EVENT_BUS;
const bucket = optionalEnv('LIFEBOAT_BUCKET');
const catalog = bucket ? { s3: createS3Client({ maxAttempts: 2 }), bucket } : undefined;
const rpoSeconds = readRpoSeconds();
const events = createEventBridgeClient();

function readRpoSeconds(): Readonly<Record<string, number>> {
  try {
    return secondsBySourceEnv('LIFEBOAT_RPO_SECONDS');
  } catch (error) {
    logger.error('LIFEBOAT_RPO_SECONDS ignored: failure messages will not compare ages with the RPO', { error: error as Error });
    return {};
  }
}

export const handler = middy(async (event: unknown) =>
  recordFailure(event, { metrics, events, eventBus, catalog, rpoSeconds, log: (message) => logger.warn(message) }),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
