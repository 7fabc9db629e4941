/**
 * The RPO watchdog: how old each source's newest verified backup (and newest verified backup
 * confirmed offsite) is, measured from the run's slot (its run id), and the metrics the RPO
 * alarms watch.
 *
 * Metrics (namespace from the Metrics instance, `Lifeboat` in the stack), per source with the
 * `source` dimension only (no `service`), so an alarm can name them exactly:
 * - `SecondsSinceVerifiedBackup` (Seconds)
 * - `SecondsSinceOffsiteBackup` (Seconds)
 * - `NeverBackedUp` = 1 (Count), instead of both ages, for a source with no verified run
 * and once per invocation, without a dimension, `WatchdogHeartbeat` = 1 (Count).
 *
 * A never-backed-up source publishes no age at all: its age alarm treats missing data as
 * breaching, so it is in ALARM from deployment until the first verified backup (and stays
 * there if every run fails) — which is what the team needs to hear.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import { latestVerifiedRun, type RunRecord } from '../catalog/catalog';
import { runIdToDate } from '../domain/run-id';
import { configError } from './env';

export interface WatchedSource {
  readonly name: string;
  readonly rpoSeconds: number;
}

/** `fresh`: verified within the RPO; `stale`: older than the RPO; `never`: no verified run at all. */
export type AgeState = 'fresh' | 'stale' | 'never';

export interface SourceAge {
  readonly source: string;
  readonly rpoSeconds: number;
  readonly state: AgeState;
  /** Seconds from the newest verified run's slot to `now`; absent when `never`. */
  readonly secondsSinceVerified?: number;
  /**
   * Seconds from the slot of the newest verified run confirmed offsite to `now`. When none of
   * the last `offsiteLookback` verified runs is confirmed, the age of the oldest of them: a lower
   * bound, still enough to alarm on (and `lastOffsiteRunId` is absent). Absent when `never`.
   */
  readonly secondsSinceOffsite?: number;
  readonly lastVerifiedRunId?: string;
  readonly lastOffsiteRunId?: string;
}

export interface MeasureAgesInput {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly sources: readonly WatchedSource[];
  readonly now: Date;
  /**
   * Verified runs examined, newest first, for an offsite confirmation.
   * @default 8
   */
  readonly offsiteLookback?: number;
}

export const DEFAULT_OFFSITE_LOOKBACK = 8;

/**
 * Each source's ages, in the order given. Every source is measured even when one cannot be
 * read; then `WatchdogReadFailed` is thrown naming each failure (no metric is published, so
 * the alarms see missing data, which breaches).
 */
export async function measureAges(input: MeasureAgesInput): Promise<SourceAge[]> {
  const settled = await Promise.allSettled(input.sources.map((source) => measureSource(input, source)));
  const failures = settled.flatMap((result, index) =>
    result.status === 'rejected' ? [`${input.sources[index].name}: ${(result.reason as Error).message}`] : []);
  if (failures.length > 0) {
    const error = new Error(`cannot read the catalog of s3://${input.bucket}: ${failures.join('; ')}`);
    error.name = 'WatchdogReadFailed';
    throw error;
  }
  return settled.map((result) => (result as PromiseFulfilledResult<SourceAge>).value);
}

async function measureSource(input: MeasureAgesInput, source: WatchedSource): Promise<SourceAge> {
  const { s3, bucket, now } = input;
  const ageOf = (run: RunRecord) => Math.max(0, Math.round((now.getTime() - slotOf(run).getTime()) / 1000));
  const latest = await latestVerifiedRun(s3, bucket, source.name, { at: now });
  if (!latest) return { source: source.name, rpoSeconds: source.rpoSeconds, state: 'never' };

  const secondsSinceVerified = ageOf(latest);
  let examined = latest;
  let offsite: RunRecord | undefined = latest.offsite ? latest : undefined;
  for (let checked = 1; !offsite && checked < (input.offsiteLookback ?? DEFAULT_OFFSITE_LOOKBACK); checked++) {
    const older = await latestVerifiedRun(s3, bucket, source.name, { at: new Date(slotOf(examined).getTime() - 1000) });
    if (!older) break;
    examined = older;
    if (older.offsite) offsite = older;
  }
  return {
    source: source.name,
    rpoSeconds: source.rpoSeconds,
    state: secondsSinceVerified > source.rpoSeconds ? 'stale' : 'fresh',
    secondsSinceVerified,
    secondsSinceOffsite: ageOf(offsite ?? examined),
    lastVerifiedRunId: latest.runId,
    ...(offsite ? { lastOffsiteRunId: offsite.runId } : {}),
  };
}

function slotOf(run: RunRecord): Date {
  // The catalog only returns runs whose id is a run id.
  return runIdToDate(run.runId) as Date;
}

/** The part of Powertools' Metrics the watchdog uses: it flushes one EMF document per source. */
export interface WatchdogMetrics {
  clearDefaultDimensions(): unknown;
  addDimension(name: string, value: string): unknown;
  addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): unknown;
  addMetadata(key: string, value: string): unknown;
  publishStoredMetrics(): unknown;
}

/**
 * Publishes the ages: one flush per source (dimension `source` only: the default `service`
 * dimension is cleared, or the alarms would not match), then the heartbeat.
 */
export function publishAges(ages: readonly SourceAge[], metrics: WatchdogMetrics): void {
  metrics.clearDefaultDimensions();
  for (const age of ages) {
    metrics.addDimension('source', age.source);
    metrics.addMetadata('state', age.state);
    if (age.lastVerifiedRunId) metrics.addMetadata('lastVerifiedRunId', age.lastVerifiedRunId);
    if (age.lastOffsiteRunId) metrics.addMetadata('lastOffsiteRunId', age.lastOffsiteRunId);
    if (age.state === 'never') {
      metrics.addMetric('NeverBackedUp', MetricUnit.Count, 1);
    } else {
      metrics.addMetric('SecondsSinceVerifiedBackup', MetricUnit.Seconds, age.secondsSinceVerified as number);
      metrics.addMetric('SecondsSinceOffsiteBackup', MetricUnit.Seconds, age.secondsSinceOffsite as number);
    }
    metrics.publishStoredMetrics();
  }
  metrics.addMetric('WatchdogHeartbeat', MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
}

/** `LIFEBOAT_SOURCES_JSON`: `[{ "name": "orders", "rpoSeconds": 900 }]`; throws a message naming every problem. */
export function parseWatchedSources(text: string, variable = 'LIFEBOAT_SOURCES_JSON'): WatchedSource[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw configError(`environment variable ${variable}: not JSON (expected e.g. [{"name": "orders", "rpoSeconds": 900}])`);
  }
  if (!Array.isArray(json) || json.length === 0) {
    throw configError(`environment variable ${variable}: expected a non-empty array of {"name", "rpoSeconds"}, e.g. [{"name": "orders", "rpoSeconds": 900}]`);
  }
  const problems: string[] = [];
  json.forEach((entry: unknown, index) => {
    const item = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof item.name !== 'string' || item.name.trim() === '') problems.push(`[${index}].name: expected a source name, got ${JSON.stringify(item.name)}`);
    if (typeof item.rpoSeconds !== 'number' || !(item.rpoSeconds > 0)) {
      problems.push(`[${index}].rpoSeconds: expected a positive number of seconds, got ${JSON.stringify(item.rpoSeconds)}`);
    }
  });
  if (problems.length > 0) throw configError(`environment variable ${variable}: ${problems.join('; ')}`);
  return (json as WatchedSource[]).map(({ name, rpoSeconds }) => ({ name, rpoSeconds }));
}
