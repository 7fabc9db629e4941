/**
 * Record: a verified, committed (and offsite-confirmed) run is announced — per-source
 * metrics for dashboards and alarms, and a `Backup Verified` event for whoever subscribes
 * (heartbeat monitors, chat, audit). Runs after Commit: if it fails, the backup still counts.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { dumpSummarySchema, offsitePollSchema, parseInput } from './state';
import { DEFAULT_EVENT_BUS, putEvent, type EventSender, type MetricsSink } from './telemetry';

export interface RecordDeps {
  readonly metrics: MetricsSink;
  readonly events: EventSender;
  /** @default 'default' */
  readonly eventBus?: string;
  /** @default - the clock */
  readonly now?: () => Date;
}

/** `$.record` */
export interface RecordResult {
  readonly eventId?: string;
  /** The values emitted, by metric name. */
  readonly metrics: Readonly<Record<string, number>>;
}

const recordInputSchema = z.looseObject({ dump: dumpSummarySchema, offsite: offsitePollSchema.nullish() });

/** Input: the whole state (`$.dump`, `$.offsite`, …). */
export async function record(state: unknown, deps: RecordDeps): Promise<RecordResult> {
  const { dump, offsite } = parseInput(recordInputSchema, state, 'Record');
  const now = deps.now ?? (() => new Date());

  const values: Record<string, number> = {
    BackupSucceeded: 1,
    BackupBytes: dump.bytes,
    BackupDurationSeconds: dump.durationSeconds,
  };
  // A zero duration (a tiny database, second-resolution clocks) has no meaningful throughput.
  if (dump.durationSeconds > 0) values.BackupThroughputBytesPerSecond = dump.bytes / dump.durationSeconds;
  if (offsite?.lagSeconds !== undefined) values.OffsiteLagSeconds = offsite.lagSeconds;

  deps.metrics.addDimension('source', dump.source);
  deps.metrics.addMetadata('runId', dump.runId);
  const units: Record<string, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
    BackupSucceeded: MetricUnit.Count,
    BackupBytes: MetricUnit.Bytes,
    BackupDurationSeconds: MetricUnit.Seconds,
    BackupThroughputBytesPerSecond: MetricUnit.BytesPerSecond,
    OffsiteLagSeconds: MetricUnit.Seconds,
  };
  for (const [name, value] of Object.entries(values)) deps.metrics.addMetric(name, units[name], value);

  const eventId = await putEvent(deps.events, deps.eventBus ?? DEFAULT_EVENT_BUS, {
    detailType: 'Backup Verified',
    time: now(),
    detail: {
      source: dump.source,
      runId: dump.runId,
      bytes: dump.bytes,
      durationSeconds: dump.durationSeconds,
      bucket: dump.bucket,
      manifestKey: dump.manifestKey,
      offsite: offsite ? { present: offsite.present ?? false, lagSeconds: offsite.lagSeconds ?? null, attempts: offsite.attempts ?? null } : null,
    },
  });
  return { eventId, metrics: values };
}
