import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { S3Client } from '@aws-sdk/client-s3';
import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { DEFAULT_CONFIG_FILE, formatDuration, formatSize, loadConfig, type LifeboatConfig, type Source } from '../lib/config';
import { listRuns, type RunRecord } from '../lib/catalog/catalog';
import { latestDrillReport } from '../lib/catalog/drills';
import type { DrillReport } from '../lib/domain/drill-report';
import { runIdToDate } from '../lib/domain/run-id';
import { renderTable } from '../lib/format/table';
import { describePitrStatus, pitrStatus, type PitrStatus } from '../lib/pitr/pitr-status';
import { binlogStatus, describeBinlogStatus, type BinlogStatus } from '../lib/binlog/status';
import { pitrCatalogName } from '../lib/domain/layout';
import type { RdsNativeSource } from '../lib/config/types';
import { rdsClientsByRegion } from '../lib/rds/client';
import { readNativeWindow, type NativeWindow } from '../lib/rds/window';

export interface SourceStatus {
  readonly source: Source;
  readonly lastVerified?: RunRecord;
  readonly lastRun?: RunRecord;
  /** Seconds since the last verified run's slot. */
  readonly ageSeconds?: number;
  readonly lastDrill?: DrillReport;
  /** A PITR source's sets, archive and window (lib/pitr/pitr-status.ts). */
  readonly pitr?: PitrStatus;
  /** A MySQL/MariaDB PITR source's binary-log archive and window (lib/binlog/status.ts). */
  readonly binlog?: BinlogStatus;
  /** An RDS/Aurora source's own point-in-time window, as RDS reports it (read when a reader is given). */
  readonly native?: { readonly window?: NativeWindow; readonly error?: string };
  readonly verdict: 'OK' | 'AT RISK' | 'NO BACKUP';
  readonly reasons: readonly string[];
}

/** Reads an RDS/Aurora source's window (lib/rds/window.ts); `lifeboat status` gives one with an RDS client per region. */
export type NativeWindowReader = (rds: RdsNativeSource, now: Date) => Promise<NativeWindow>;

/** An RDS/Aurora source's own window against its tier: what is wrong with it, in the verdict's words. */
export function nativeProblems(source: Source, window: NativeWindow): string[] {
  const rds = source.rds as RdsNativeSource;
  const problems: string[] = [];
  if (window.retentionDays < rds.requiredWindowDays) {
    problems.push(`backup retention ${window.retentionDays} day(s), tier ${source.tier.name} requires ${rds.requiredWindowDays}`);
  }
  if (window.ageSeconds === undefined) problems.push('no latest restorable time (automated backups off, or none yet)');
  else if (window.ageSeconds > nativeRpoSeconds(source)) {
    problems.push(`latest restorable time ${formatDuration(window.ageSeconds)} old, beyond the RPO (${formatDuration(nativeRpoSeconds(source))})`);
  }
  return problems;
}

/** The age of LatestRestorableTime beyond which a source's native RPO is broken: its RPO, never under 15 minutes (RDS trails by about 5). */
export function nativeRpoSeconds(source: Pick<Source, 'tier'>): number {
  return Math.max(source.tier.rpoSeconds, 900);
}

/** Reads the catalog for each source and judges it against its tier (and, given a reader, an RDS source's own window). */
export async function sourceStatuses(s3: S3Client, bucket: string, sources: readonly Source[], now = new Date(), readNative?: NativeWindowReader): Promise<SourceStatus[]> {
  return Promise.all(sources.map(async (source) => {
    const logical = source.methods.includes('logical');
    // The table's run is the logical one; a PITR-only source shows its newest PITR run (its catalog), and the archive's age.
    const [runs, lastDrill, pitr, binlog] = await Promise.all([
      listRuns(s3, bucket, logical ? source.name : pitrCatalogName(source.name), { newestFirst: true, limit: 50 }),
      latestDrillReport(s3, bucket, source.name),
      source.pitr ? pitrStatus(s3, bucket, source, now) : Promise.resolve(undefined),
      source.binlog ? binlogStatus(s3, bucket, source, now) : Promise.resolve(undefined),
    ]);
    const native: SourceStatus['native'] = source.rds && readNative
      ? await readNative(source.rds, now).then((window) => ({ window }), (error: unknown) => ({ error: `${(error as Error).name}: ${(error as Error).message}` }))
      : undefined;
    const lastVerified = runs.find((run) => run.status === 'verified');
    const lastRun = runs[0];
    const slot = lastVerified ? runIdToDate(lastVerified.runId) : undefined;
    const ageSeconds = !logical ? pitr?.archive.ageSeconds ?? binlog?.coverage.ageSeconds : slot ? Math.max(0, (now.getTime() - slot.getTime()) / 1000) : undefined;
    const reasons: string[] = [];
    if (logical) {
      if (!lastVerified) reasons.push('no verified backup');
      else if ((ageSeconds ?? 0) > source.tier.rpoSeconds) reasons.push(`last verified backup older than the RPO (${formatDuration(source.tier.rpoSeconds)})`);
      if (lastVerified && !lastVerified.offsite) reasons.push('offsite copy not confirmed');
      if (lastRun && lastRun.status === 'failed') reasons.push(`last run ${lastRun.runId} failed verification`);
    }
    if (pitr) reasons.push(...pitr.problems.map((problem) => `pitr: ${problem}`));
    if (binlog) reasons.push(...binlog.problems.map((problem) => `pitr: ${problem}`));
    if (native?.window) reasons.push(...nativeProblems(source, native.window).map((problem) => `native: ${problem}`));
    if (native?.error) reasons.push(`native: window not read (${native.error})`);
    if (!logical && lastVerified && !lastVerified.offsite) reasons.push('pitr: offsite copy of the newest set not confirmed');
    if (!logical && lastRun?.status === 'failed') reasons.push(`pitr: last run ${lastRun.runId} failed verification`);
    if (!lastDrill) reasons.push('never drilled');
    else if (lastDrill.verdict !== 'ok') reasons.push(`last drill failed (${lastDrill.error?.name ?? 'see its report'})`);
    else if (now.getTime() - Date.parse(lastDrill.finishedAt) > 2 * source.tier.drillSeconds * 1000) reasons.push('last drill is overdue');
    const hasBackup = logical ? lastVerified !== undefined : pitr ? pitr.newest.full !== undefined : binlog?.coverage.windowBase !== undefined;
    const verdict = !hasBackup ? 'NO BACKUP' : reasons.length > 0 ? 'AT RISK' : 'OK';
    return { source, lastVerified, lastRun, ageSeconds, lastDrill, ...(pitr ? { pitr } : {}), ...(binlog ? { binlog } : {}), ...(native ? { native } : {}), verdict, reasons };
  }));
}

export function renderStatus(statuses: readonly SourceStatus[]): string {
  const rows = statuses.map(({ source, lastVerified, ageSeconds, lastDrill, verdict, reasons }) => {
    // A PITR run's size is its set's in the repository (its artifact is only the set's file list).
    const manifest = lastVerified?.manifest;
    const bytes = manifest?.pitr ? manifest.pitr.repoBytes : manifest?.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0);
    return [
      source.name,
      source.tier.name,
      lastVerified?.runId ?? '-',
      ageSeconds === undefined ? '-' : `${formatDuration(ageSeconds)} / ${formatDuration(source.tier.rpoSeconds)}`,
      bytes === undefined ? '-' : formatSize(bytes),
      lastVerified?.offsite ? `confirmed (${lastVerified.offsite.region}, lag ${formatDuration(lastVerified.offsite.lagSeconds)})` : lastVerified ? 'pending' : '-',
      lastDrill ? `${lastDrill.drillId} ${lastDrill.verdict}` : '-',
      lastDrill ? `${formatElapsed(lastDrill.measuredRtoSeconds)} / ${formatDuration(source.tier.rtoSeconds)}` : `- / ${formatDuration(source.tier.rtoSeconds)}`,
      verdict + (reasons.length > 0 ? ` (${reasons.join('; ')})` : ''),
    ];
  });
  const table = renderTable(['SOURCE', 'TIER', 'LAST VERIFIED RUN', 'AGE / RPO', 'SIZE', 'OFFSITE', 'LAST DRILL', 'RTO (MEASURED / TARGET)', 'VERDICT'], rows);
  const pitr = statuses.flatMap((status) => (status.pitr ? ['', ...describePitrStatus(status.source, status.pitr)] : []));
  const binlog = statuses.flatMap((status) => (status.binlog ? ['', ...describeBinlogStatus(status.source, status.binlog)] : []));
  const native = statuses.flatMap((status) => (status.native ? ['', ...describeNativeStatus(status.source, status.native)] : []));
  return [table, ...pitr, ...binlog, ...native].join('\n');
}

/** An RDS/Aurora source's window under the table: earliest and latest restorable time, its age, the retention against the tier's. */
function describeNativeStatus(source: Source, native: NonNullable<SourceStatus['native']>): string[] {
  const rds = source.rds as RdsNativeSource;
  const head = `${source.name}: native point-in-time recovery of the RDS ${rds.kind === 'instance' ? 'DB instance' : 'DB cluster'} ${rds.identifier} (${rds.region})`;
  if (!native.window) return [`${head}: not read (${native.error ?? 'no reader'})`];
  const { window } = native;
  return [
    `${head}, ${window.status ?? 'status unknown'}`,
    `  window: ${window.earliest?.toISOString() ?? '?'} → ${window.latest?.toISOString() ?? '?'}` +
      (window.earliest && window.latest ? ` (${formatDuration((window.latest.getTime() - window.earliest.getTime()) / 1000)})` : ''),
    `  latest restorable: ${window.ageSeconds === undefined ? '-' : `${formatDuration(window.ageSeconds)} old`} / RPO ${formatDuration(nativeRpoSeconds(source))}; ` +
      `backup retention ${window.retentionDays} day(s) / ${rds.requiredWindowDays} required`,
  ];
}

/** Measured times: tenths of a second below a minute, where formatDuration would say 0s. */
export function formatElapsed(seconds: number): string {
  return seconds < 60 ? `${seconds.toFixed(1)}s` : formatDuration(seconds);
}

export const STATUS_USAGE = `Usage: lifeboat status [--config FILE] [--bucket BUCKET] [--region REGION] [--endpoint URL]

One line per source of the config: last verified backup and its age against the RPO, the
offsite copy, the last drill and its measured RTO against the RTO, and a verdict; for an
RDS/Aurora source, its own point-in-time window (earliest and latest restorable time, its age,
the backup retention against the tier's window), read from RDS. Reads only (credentials from
the usual AWS chain). With --endpoint (an S3-compatible server, such as the local stack) RDS
is not read. Without --bucket, the primary
bucket's name is read from the <appName>-Primary stack's outputs.
`;

/** The primary bucket's name, from the primary stack's outputs. */
export async function primaryBucketFromStack(config: LifeboatConfig, region = config.primary.region): Promise<string> {
  const stackName = `${config.appName}-Primary`;
  const described = await new CloudFormationClient({ region }).send(new DescribeStacksCommand({ StackName: stackName }));
  const output = described.Stacks?.[0]?.Outputs?.find((candidate) => candidate.OutputKey === 'PrimaryBucketName');
  if (!output?.OutputValue) throw Object.assign(new Error(`stack ${stackName} in ${region} has no PrimaryBucketName output (deployed?); pass --bucket`), { name: 'InvalidInput' });
  return output.OutputValue;
}

/** `lifeboat status`: exit 0 when every source is OK, 1 when one is at risk or has no backup. */
export async function statusCommand(argv: readonly string[], env: NodeJS.ProcessEnv, log: (line: string) => void = console.log): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { config: { type: 'string', default: DEFAULT_CONFIG_FILE }, bucket: { type: 'string' }, region: { type: 'string' }, endpoint: { type: 'string' } },
  });
  const config = loadConfig(values.config as string);
  const region = values.region ?? env.AWS_REGION ?? config.primary.region;
  const bucket = values.bucket ?? env.LIFEBOAT_BUCKET ?? (await primaryBucketFromStack(config, region));
  const s3 = createS3Client({ region, endpoint: values.endpoint, env });
  // With an S3 endpoint of its own (a local stack) there is no RDS to ask: the windows are left out, and said so.
  const clients = rdsClientsByRegion();
  const readNative: NativeWindowReader | undefined = values.endpoint === undefined ? (rds, now) => readNativeWindow(clients.client(rds.region), rds, now) : undefined;
  const statuses = await sourceStatuses(s3, bucket, config.sources, new Date(), readNative).finally(() => clients.destroy());
  log(`Lifeboat status, s3://${bucket} (${region}), ${new Date().toISOString()}`);
  log(renderStatus(statuses));
  return statuses.every((status) => status.verdict === 'OK') ? 0 : 1;
}
