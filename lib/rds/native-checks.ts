/**
 * The native point-in-time recovery of RDS and Aurora sources, checked (issue 14, "Checks and
 * alarms"): per source, what RDS says of its automated backups against what the tier requires.
 * - the backup retention period (the PITR window) at least the tier's `pitrWindowDays`;
 * - LatestRestorableTime current: RDS uploads the transaction logs about every 5 minutes, so a
 *   LatestRestorableTime older than the tier's RPO (never less than 15 minutes) means the RPO is
 *   already broken;
 * - for DB instances, the automated backups replicated to the offsite region: the replication
 *   the source lists (DBInstanceAutomatedBackupsReplications) and, in the offsite region, the
 *   replicated backup's status and the age of its RestoreWindow.LatestTime. A stopped
 *   replication, and one that stopped silently (a disabled KMS key leaves it "replicating" with a
 *   LatestTime that no longer moves), are findings. DB clusters have no such replication: their
 *   offsite copy is the snapshot copier's (lib/rds/snapshot-copy.ts), which publishes their
 *   NativeOffsiteAgeSeconds.
 *
 * With `manage` (the tier's manageNativeBackups) it also fixes what it safely can: it raises a
 * retention period to the required days (ModifyDBInstance / ModifyDBCluster, ApplyImmediately)
 * and starts the replication (StartDBInstanceAutomatedBackupsReplication in the offsite region,
 * encrypted with the offsite key when the instance is encrypted). It never shortens anything,
 * never stops a replication, and never turns automated backups on for an instance that has them
 * off (from 0 RDS restarts the instance: an outage is the team's decision, and the finding says
 * the command).
 *
 * Contract: stateless and idempotent; every source is tried; a source whose RDS call fails gets
 * `error`, and only what was measured before the failure is published (what was not is missing
 * data, which the RPO and offsite alarms treat as breaching).
 */
import {
  DBClusterNotFoundFault,
  DBInstanceAutomatedBackupNotFoundFault,
  DBInstanceNotFoundFault,
  DescribeDBClustersCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  ModifyDBClusterCommand,
  ModifyDBInstanceCommand,
  StartDBInstanceAutomatedBackupsReplicationCommand,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import type { Source } from '../config/types';
import { configError } from '../steps/env';

/** RDS's LatestRestorableTime normally trails by about 5 minutes: an RPO alarm below 15 minutes would page on healthy sources. */
export const MIN_NATIVE_RPO_SECONDS = 15 * 60;
/** A replicated backup trails its source by the replication's own lag: the offsite alarm allows an hour beyond the RPO. */
export const NATIVE_OFFSITE_GRACE_SECONDS = 3_600;
/** A cluster's offsite copy is a snapshot copied daily: two days without a newer one is alarming. */
export const CLUSTER_OFFSITE_MAX_AGE_SECONDS = 2 * 86_400;
/** RDS keeps automated backups for at most 35 days. */
export const MAX_RDS_RETENTION_DAYS = 35;

export const NATIVE_METRICS = {
  retentionShortfall: 'NativeRetentionShortfallDays',
  restorableAge: 'NativeRestorableAgeSeconds',
  offsiteAge: 'NativeOffsiteAgeSeconds',
} as const;

/** What the checks are told of a source (LIFEBOAT_NATIVE_SOURCES_JSON). */
export interface NativeCheckSource {
  readonly name: string;
  readonly kind: 'instance' | 'cluster';
  readonly identifier: string;
  readonly region: string;
  readonly requiredWindowDays: number;
  readonly rpoSeconds: number;
  readonly manage: boolean;
}

export function nativeCheckSource(source: Source): NativeCheckSource {
  if (!source.rds) throw new Error(`source ${source.name} is not an RDS/Aurora source`);
  return {
    name: source.name, kind: source.rds.kind, identifier: source.rds.identifier, region: source.rds.region,
    requiredWindowDays: source.rds.requiredWindowDays, rpoSeconds: source.tier.rpoSeconds, manage: source.rds.manage,
  };
}

/** The age above which a source's LatestRestorableTime is alarming: its RPO, never below 15 minutes. */
export function nativeRpoThresholdSeconds(rpoSeconds: number): number {
  return Math.max(rpoSeconds, MIN_NATIVE_RPO_SECONDS);
}

/** The age above which a source's offsite copy is alarming: RPO + 1 h for an instance's replicated backups, 2 days for a cluster's daily snapshot copy. */
export function nativeOffsiteThresholdSeconds(kind: 'instance' | 'cluster', rpoSeconds: number): number {
  return kind === 'instance' ? nativeRpoThresholdSeconds(rpoSeconds) + NATIVE_OFFSITE_GRACE_SECONDS : CLUSTER_OFFSITE_MAX_AGE_SECONDS;
}

const compactSource = z.object({
  name: z.string().min(1),
  kind: z.enum(['instance', 'cluster']),
  id: z.string().min(1),
  region: z.string().min(1),
  days: z.number().int().min(1).max(MAX_RDS_RETENTION_DAYS),
  rpo: z.number().int().positive(),
  manage: z.literal(true).optional(),
}).strict();

/** The compact environment form: `[{"name","kind","id","region","days","rpo","manage"?}]` (manage only when true; 4 KB hold every variable). */
export function serializeNativeSources(sources: readonly NativeCheckSource[]): string {
  return JSON.stringify(sources.map((source) => ({
    name: source.name, kind: source.kind, id: source.identifier, region: source.region, days: source.requiredWindowDays, rpo: source.rpoSeconds,
    ...(source.manage ? { manage: true as const } : {}),
  })));
}

/** Reads LIFEBOAT_NATIVE_SOURCES_JSON; throws one message naming every problem. */
export function parseNativeSources(json: string): NativeCheckSource[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw configError(`LIFEBOAT_NATIVE_SOURCES_JSON is not JSON: ${(error as Error).message}`);
  }
  const parsed = z.array(compactSource).safeParse(value);
  if (!parsed.success) {
    throw configError(`LIFEBOAT_NATIVE_SOURCES_JSON: ${parsed.error.issues.map((issue) => `[${issue.path.join('.')}] ${issue.message}`).join('; ')}`);
  }
  return parsed.data.map((source) => ({
    name: source.name, kind: source.kind, identifier: source.id, region: source.region, requiredWindowDays: source.days, rpoSeconds: source.rpo,
    manage: source.manage === true,
  }));
}

export interface NativeOffsite {
  /** The offsite region the instance's automated backups must be replicated to. */
  readonly region: string;
  /** The offsite key (a key of the offsite region) replicated backups of encrypted instances are encrypted with; needed to start a replication. */
  readonly keyArn?: string;
}

export interface NativeMeasureOptions {
  /** An RDS client for a region (lib/rds/client.ts createRdsClient). */
  readonly rds: (region: string) => RDSClient;
  readonly sources: readonly NativeCheckSource[];
  readonly offsite: NativeOffsite;
  readonly now: Date;
}

export interface NativeReplication {
  readonly region: string;
  /** The replicated backup's status in the offsite region ('replicating', 'pending', 'retained', …), or 'missing'. */
  readonly status: string;
  readonly arn?: string;
  readonly latestTime?: Date;
  readonly ageSeconds?: number;
}

export interface NativeMeasure {
  readonly source: string;
  readonly kind: 'instance' | 'cluster';
  readonly identifier: string;
  readonly region: string;
  readonly requiredWindowDays: number;
  /** Whether RDS knows the instance or cluster. */
  readonly found: boolean;
  /** The BackupRetentionPeriod after what the checks did (a managed raise counts once RDS accepted it). */
  readonly retentionDays?: number;
  /** required − actual, never negative. */
  readonly retentionShortfallDays?: number;
  readonly earliestRestorableTime?: Date;
  readonly latestRestorableTime?: Date;
  readonly restorableAgeSeconds?: number;
  /** Instances: their automated backups in the offsite region. */
  readonly replication?: NativeReplication;
  /** Findings, each a sentence naming the source, the value and the required one. */
  readonly problems: readonly string[];
  /** What the checks changed (managed sources), in words. */
  readonly actions: readonly string[];
  /** An RDS call that failed (the source's measure is then partial). */
  readonly error?: { readonly name: string; readonly message: string };
}

/** Measures every source (one at a time: RDS throttles Describe calls per account). */
export async function measureNative(opts: NativeMeasureOptions): Promise<NativeMeasure[]> {
  const measures: NativeMeasure[] = [];
  for (const source of opts.sources) measures.push(await measureSource(opts, source));
  return measures;
}

type Draft = { -readonly [K in keyof NativeMeasure]: NativeMeasure[K] };

async function measureSource(opts: NativeMeasureOptions, source: NativeCheckSource): Promise<NativeMeasure> {
  const draft: Draft = {
    source: source.name, kind: source.kind, identifier: source.identifier, region: source.region, requiredWindowDays: source.requiredWindowDays,
    found: false, problems: [], actions: [],
  };
  try {
    if (source.kind === 'instance') await measureInstance(opts, source, draft);
    else await measureCluster(opts, source, draft);
  } catch (error) {
    const { name, message } = error as Error;
    draft.error = { name, message };
    draft.problems = [...draft.problems, `${source.name}: checking ${source.kind} ${source.identifier} in ${source.region} failed: ${name}: ${message}`];
  }
  return draft;
}

async function measureInstance(opts: NativeMeasureOptions, source: NativeCheckSource, draft: Draft): Promise<void> {
  const client = opts.rds(source.region);
  let instance: DBInstance | undefined;
  try {
    instance = (await client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: source.identifier }))).DBInstances?.[0];
  } catch (error) {
    if (!(error instanceof DBInstanceNotFoundFault)) throw error;
  }
  if (!instance) {
    draft.problems = [`${source.name}: DB instance ${source.identifier} not found in ${source.region} (its window cannot be checked)`];
    return;
  }
  draft.found = true;
  const problems: string[] = [];
  const actions: string[] = [];
  if (instance.DBClusterIdentifier) {
    problems.push(`${source.name}: DB instance ${source.identifier} belongs to DB cluster ${instance.DBClusterIdentifier}, whose backups are the cluster's: name the cluster (rds.cluster)`);
  }

  const retention = await governRetention(source, instance.BackupRetentionPeriod ?? 0, problems, actions, async (days) => {
    const modified = (await client.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: source.identifier, BackupRetentionPeriod: days, ApplyImmediately: true }))).DBInstance;
    return modified?.PendingModifiedValues?.BackupRetentionPeriod ?? modified?.BackupRetentionPeriod;
  }, 'modify-db-instance --db-instance-identifier');
  draft.retentionDays = retention;
  draft.retentionShortfallDays = Math.max(0, source.requiredWindowDays - retention);

  if (retention > 0) {
    try {
      const own = (await client.send(new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceIdentifier: source.identifier }))).DBInstanceAutomatedBackups
        ?.find((backup) => backup.Region === source.region && backup.Status === 'active');
      draft.earliestRestorableTime = own?.RestoreWindow?.EarliestTime;
    } catch (error) {
      if (!(error instanceof DBInstanceAutomatedBackupNotFoundFault)) throw error;
    }
  }
  restorable(source, opts.now, instance.LatestRestorableTime, draft, problems);
  draft.replication = await governReplication(opts, source, instance, retention, problems, actions);
  draft.problems = problems;
  draft.actions = actions;
}

async function measureCluster(opts: NativeMeasureOptions, source: NativeCheckSource, draft: Draft): Promise<void> {
  const client = opts.rds(source.region);
  let cluster;
  try {
    cluster = (await client.send(new DescribeDBClustersCommand({ DBClusterIdentifier: source.identifier }))).DBClusters?.[0];
  } catch (error) {
    if (!(error instanceof DBClusterNotFoundFault)) throw error;
  }
  if (!cluster) {
    draft.problems = [`${source.name}: DB cluster ${source.identifier} not found in ${source.region} (its window cannot be checked)`];
    return;
  }
  draft.found = true;
  const problems: string[] = [];
  const actions: string[] = [];
  const retention = await governRetention(source, cluster.BackupRetentionPeriod ?? 0, problems, actions, async (days) => {
    const modified = (await client.send(new ModifyDBClusterCommand({ DBClusterIdentifier: source.identifier, BackupRetentionPeriod: days, ApplyImmediately: true }))).DBCluster;
    return modified?.PendingModifiedValues?.BackupRetentionPeriod ?? modified?.BackupRetentionPeriod;
  }, 'modify-db-cluster --db-cluster-identifier');
  draft.retentionDays = retention;
  draft.retentionShortfallDays = Math.max(0, source.requiredWindowDays - retention);
  draft.earliestRestorableTime = cluster.EarliestRestorableTime;
  restorable(source, opts.now, cluster.LatestRestorableTime, draft, problems);
  draft.problems = problems;
  draft.actions = actions;
}

/**
 * The retention period against the required window: a finding when short; with `manage`, raised
 * to the required days (never lowered; never from 0, which restarts an instance). Returns the
 * period RDS has after that.
 */
async function governRetention(
  source: NativeCheckSource, actual: number, problems: string[], actions: string[], raise: (days: number) => Promise<number | undefined>, cli: string,
): Promise<number> {
  const required = source.requiredWindowDays;
  if (actual >= required) return actual;
  const what = `${source.name}: backup retention period of ${source.kind} ${source.identifier} is ${actual} day${actual === 1 ? '' : 's'}, the tier requires ${required}`;
  const command = `aws rds ${cli} ${source.identifier} --backup-retention-period ${required} --apply-immediately --region ${source.region}`;
  if (actual === 0) {
    problems.push(`${what}: automated backups are off, so there is no point-in-time recovery at all. Turning them on restarts the instance, which Lifeboat does not do on its own: ${command}`);
    return actual;
  }
  if (!source.manage) {
    problems.push(`${what} (manageNativeBackups is off: ${command})`);
    return actual;
  }
  const now = await raise(required);
  if (now !== undefined && now >= required) {
    actions.push(`${source.name}: backup retention period raised from ${actual} to ${required} days (${source.kind === 'instance' ? 'ModifyDBInstance' : 'ModifyDBCluster'}, ApplyImmediately)`);
    return now;
  }
  problems.push(`${what}: raising it was accepted but RDS reports ${now ?? 'no'} retention period`);
  return now ?? actual;
}

function restorable(source: NativeCheckSource, now: Date, latest: Date | undefined, draft: Draft, problems: string[]): void {
  const threshold = nativeRpoThresholdSeconds(source.rpoSeconds);
  if (!latest) {
    problems.push(`${source.name}: ${source.kind} ${source.identifier} has no LatestRestorableTime (no point-in-time recovery), the tier's RPO is ${duration(source.rpoSeconds)}`);
    return;
  }
  draft.latestRestorableTime = latest;
  const age = Math.max(0, Math.round((now.getTime() - latest.getTime()) / 1000));
  draft.restorableAgeSeconds = age;
  if (age > threshold) {
    problems.push(`${source.name}: LatestRestorableTime of ${source.kind} ${source.identifier} is ${latest.toISOString()}, ${duration(age)} old; the tier's RPO allows ${duration(threshold)}`);
  }
}

/** The instance's automated backups in the offsite region; with `manage`, started when none replicate. */
async function governReplication(
  opts: NativeMeasureOptions, source: NativeCheckSource, instance: DBInstance, retention: number, problems: string[], actions: string[],
): Promise<NativeReplication> {
  const region = opts.offsite.region;
  const sourceArn = instance.DBInstanceArn as string;
  const client = opts.rds(region);
  const listed = (instance.DBInstanceAutomatedBackupsReplications ?? [])
    .map((replication) => replication.DBInstanceAutomatedBackupsArn as string)
    .find((arn) => arn.split(':')[3] === region);
  const threshold = nativeOffsiteThresholdSeconds('instance', source.rpoSeconds);

  if (listed) {
    const backup = (await client.send(new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceAutomatedBackupsArn: listed }))).DBInstanceAutomatedBackups?.[0];
    const status = backup?.Status ?? 'missing';
    const latestTime = backup?.RestoreWindow?.LatestTime;
    const ageSeconds = latestTime ? Math.max(0, Math.round((opts.now.getTime() - latestTime.getTime()) / 1000)) : undefined;
    if (status !== 'replicating' && status !== 'pending') {
      problems.push(`${source.name}: automated backups of ${source.identifier} replicated to ${region} are ${status}, not replicating (${listed})`);
    } else if (ageSeconds !== undefined && ageSeconds > threshold) {
      problems.push(`${source.name}: the automated backups of ${source.identifier} replicated to ${region} end at ${(latestTime as Date).toISOString()}, ${duration(ageSeconds)} old; at most ${duration(threshold)} is allowed (a disabled or inaccessible KMS key stops replication silently)`);
    }
    return { region, status, arn: listed, ...(latestTime ? { latestTime } : {}), ...(ageSeconds !== undefined ? { ageSeconds } : {}) };
  }

  const missing = `${source.name}: automated backups of ${source.identifier} are not replicated to the offsite region ${region}`;
  if (!source.manage) {
    problems.push(`${missing} (manageNativeBackups is off: aws rds start-db-instance-automated-backups-replication --source-db-instance-arn ${sourceArn} --backup-retention-period ${source.requiredWindowDays}${instance.StorageEncrypted ? ' --kms-key-id <offsite key ARN>' : ''} --region ${region})`);
    return { region, status: 'missing' };
  }
  if (retention === 0) {
    problems.push(`${missing}: automated backups are off, there is nothing to replicate`);
    return { region, status: 'missing' };
  }
  if (instance.StorageEncrypted && !opts.offsite.keyArn) {
    problems.push(`${missing}: the instance is encrypted and no offsite key is configured to replicate with`);
    return { region, status: 'missing' };
  }
  const started = (await client.send(new StartDBInstanceAutomatedBackupsReplicationCommand({
    SourceDBInstanceArn: sourceArn,
    BackupRetentionPeriod: source.requiredWindowDays,
    ...(instance.StorageEncrypted ? { KmsKeyId: opts.offsite.keyArn } : {}),
    // No PreSignedUrl: the SDK's RDS middleware presigns it in the region of SourceDBInstanceArn.
  }))).DBInstanceAutomatedBackup;
  actions.push(`${source.name}: automated backups of ${source.identifier} replication to ${region} started (${source.requiredWindowDays} days${instance.StorageEncrypted ? ', offsite key' : ''})`);
  return { region, status: started?.Status ?? 'pending', ...(started?.DBInstanceAutomatedBackupsArn ? { arn: started.DBInstanceAutomatedBackupsArn } : {}) };
}

function duration(seconds: number): string {
  if (seconds >= 2 * 86_400) return `${Math.round(seconds / 86_400)} days`;
  if (seconds >= 2 * 3_600) return `${Math.round(seconds / 3_600)} h`;
  if (seconds >= 120) return `${Math.round(seconds / 60)} min`;
  return `${seconds} s`;
}

/** What publishing needs of Powertools Metrics (a test passes a recorder). */
export interface NativeMetrics {
  clearDefaultDimensions(): unknown;
  addDimension(name: string, value: string): unknown;
  addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): unknown;
  addMetadata(key: string, value: string): unknown;
  publishStoredMetrics(): unknown;
}

/**
 * One EMF document per source, dimension `source` only: the retention shortfall, the age of
 * LatestRestorableTime and, for instances, the age of the replicated backups' LatestTime. What
 * was not measured is not published (the RPO and offsite alarms treat missing data as breaching).
 */
export function publishNative(measures: readonly NativeMeasure[], metrics: NativeMetrics): void {
  metrics.clearDefaultDimensions();
  for (const measure of measures) {
    const values: [name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number][] = [];
    if (measure.retentionShortfallDays !== undefined) values.push([NATIVE_METRICS.retentionShortfall, MetricUnit.Count, measure.retentionShortfallDays]);
    if (measure.restorableAgeSeconds !== undefined) values.push([NATIVE_METRICS.restorableAge, MetricUnit.Seconds, measure.restorableAgeSeconds]);
    // Clusters' offsite age is the snapshot copier's (same metric name): not published here.
    if (measure.kind === 'instance' && measure.replication?.ageSeconds !== undefined) values.push([NATIVE_METRICS.offsiteAge, MetricUnit.Seconds, measure.replication.ageSeconds]);
    if (values.length === 0) continue;
    metrics.addDimension('source', measure.source);
    metrics.addMetadata('identifier', `${measure.kind}:${measure.identifier}`);
    if (measure.latestRestorableTime) metrics.addMetadata('latestRestorableTime', measure.latestRestorableTime.toISOString());
    if (measure.earliestRestorableTime) metrics.addMetadata('earliestRestorableTime', measure.earliestRestorableTime.toISOString());
    if (measure.replication) metrics.addMetadata('offsiteStatus', measure.replication.status);
    for (const [name, unit, value] of values) metrics.addMetric(name, unit, value);
    metrics.publishStoredMetrics();
  }
}

/** The invocation's failure when a source could not be checked (after every source was tried and published). */
export function failureOf(measures: readonly NativeMeasure[]): Error | undefined {
  const failed = measures.filter((measure) => measure.error);
  if (failed.length === 0) return undefined;
  const error = new Error(`native PITR checks failed for ${failed.map((measure) => `${measure.source} (${measure.error?.name}: ${measure.error?.message})`).join('; ')}`);
  error.name = 'NativeCheckFailed';
  return error;
}
