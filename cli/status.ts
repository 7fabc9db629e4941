import type { S3Client } from '@aws-sdk/client-s3';
import { formatDuration, formatSize, type Source } from '../lib/config';
import { listRuns, type RunRecord } from '../lib/catalog/catalog';
import { runIdToDate } from '../lib/domain/run-id';
import { renderTable } from '../lib/format/table';

export interface SourceStatus {
  readonly source: Source;
  readonly lastVerified?: RunRecord;
  readonly lastRun?: RunRecord;
  /** Seconds since the last verified run's slot. */
  readonly ageSeconds?: number;
  readonly verdict: 'OK' | 'AT RISK' | 'NO BACKUP';
  readonly reasons: readonly string[];
}

/** Reads the catalog for each source and judges it against its tier. */
export async function sourceStatuses(s3: S3Client, bucket: string, sources: readonly Source[], now = new Date()): Promise<SourceStatus[]> {
  return Promise.all(sources.map(async (source) => {
    const runs = await listRuns(s3, bucket, source.name, { newestFirst: true, limit: 50 });
    const lastVerified = runs.find((run) => run.status === 'verified');
    const lastRun = runs[0];
    const slot = lastVerified ? runIdToDate(lastVerified.runId) : undefined;
    const ageSeconds = slot ? Math.max(0, (now.getTime() - slot.getTime()) / 1000) : undefined;
    const reasons: string[] = [];
    if (!lastVerified) reasons.push('no verified backup');
    else if ((ageSeconds ?? 0) > source.tier.rpoSeconds) reasons.push(`last verified backup older than the RPO (${formatDuration(source.tier.rpoSeconds)})`);
    if (lastVerified && !lastVerified.offsite) reasons.push('offsite copy not confirmed');
    if (lastRun && lastRun.status === 'failed') reasons.push(`last run ${lastRun.runId} failed verification`);
    const verdict = !lastVerified ? 'NO BACKUP' : reasons.length > 0 ? 'AT RISK' : 'OK';
    return { source, lastVerified, lastRun, ageSeconds, verdict, reasons };
  }));
}

export function renderStatus(statuses: readonly SourceStatus[]): string {
  const rows = statuses.map(({ source, lastVerified, ageSeconds, verdict, reasons }) => {
    const bytes = lastVerified?.manifest?.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0);
    return [
      source.name,
      source.tier.name,
      lastVerified?.runId ?? '-',
      ageSeconds === undefined ? '-' : `${formatDuration(ageSeconds)} / ${formatDuration(source.tier.rpoSeconds)}`,
      bytes === undefined ? '-' : formatSize(bytes),
      lastVerified?.offsite ? `confirmed (${lastVerified.offsite.region}, lag ${formatDuration(lastVerified.offsite.lagSeconds)})` : lastVerified ? 'pending' : '-',
      verdict + (reasons.length > 0 ? ` (${reasons.join('; ')})` : ''),
    ];
  });
  return renderTable(['SOURCE', 'TIER', 'LAST VERIFIED RUN', 'AGE / RPO', 'SIZE', 'OFFSITE', 'VERDICT'], rows);
}
