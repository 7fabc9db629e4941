/**
 * What the Record and RecordFailure steps emit: CloudWatch metrics (Powertools, EMF) and
 * EventBridge events. Both are passed in, so tests use doubles at the SDK edge.
 */
import type { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient, PutEventsCommand, type PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import { stepError } from './state';

export const METRICS_NAMESPACE = 'Lifeboat';
export const EVENT_SOURCE = 'lifeboat';
export const DEFAULT_EVENT_BUS = 'default';
/** The detail type of the event the backup run puts on the bus as it starts (the start heartbeat). */
export const BACKUP_STARTED = 'Backup Started';
/** Environment variable naming an EventBridge-compatible endpoint (the local runner's capture), e.g. http://127.0.0.1:4010. */
export const EVENTS_ENDPOINT_ENV = 'LIFEBOAT_EVENTS_ENDPOINT';

/** The EventBridge client of the Record steps: AWS's endpoint, or `LIFEBOAT_EVENTS_ENDPOINT` when set. */
export function createEventBridgeClient(env: NodeJS.ProcessEnv = process.env): EventBridgeClient {
  return new EventBridgeClient({ endpoint: env[EVENTS_ENDPOINT_ENV]?.trim() || undefined, maxAttempts: 3 });
}

/** The part of Powertools' Metrics the steps use; the handler flushes (logMetrics middleware). */
export interface MetricsSink {
  addDimension(name: string, value: string): unknown;
  addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): unknown;
  addMetadata(key: string, value: string): unknown;
}

/** The EventBridge client's `send`, for PutEvents only. */
export interface EventSender {
  send(command: PutEventsCommand): Promise<PutEventsCommandOutput>;
}

export interface LifeboatEvent {
  readonly detailType: 'Backup Verified' | 'Backup Failed';
  readonly detail: Record<string, unknown>;
  readonly time: Date;
}

/**
 * Puts one event on the bus and returns its id. PutEvents answers 200 even when the entry was
 * refused: a failed entry throws `EventNotDelivered` with EventBridge's code and message.
 */
export async function putEvent(events: EventSender, eventBus: string, event: LifeboatEvent): Promise<string | undefined> {
  const output = await events.send(new PutEventsCommand({
    Entries: [{
      Source: EVENT_SOURCE,
      DetailType: event.detailType,
      Detail: JSON.stringify(event.detail),
      EventBusName: eventBus,
      Time: event.time,
    }],
  }));
  const entry = output.Entries?.[0];
  if ((output.FailedEntryCount ?? 0) > 0 || entry?.ErrorCode) {
    throw stepError('EventNotDelivered', `EventBridge refused the "${event.detailType}" event on bus ${eventBus}: ${entry?.ErrorCode ?? 'unknown error'} ${entry?.ErrorMessage ?? ''}`.trim());
  }
  return entry?.EventId;
}
