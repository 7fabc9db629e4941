/**
 * A MySQL/MariaDB PITR source's binary-log archive for `lifeboat status`, from the bucket alone
 * (lib/binlog/watch.ts, what the watchdog measures): the newest archiver run and its outcome, the
 * newest archived file, the archive's age against the RPO, the restorable window and its base,
 * and a gap (the window shown broken, naming the missing files).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Source } from '../config/types';
import { formatDuration } from '../retention/policy';
import { binlogCoverage, readBinlogListing, type BinlogArchiveListing, type BinlogCoverage } from './watch';

export interface BinlogStatus {
  readonly listing: BinlogArchiveListing;
  readonly coverage: BinlogCoverage;
  /** What puts the RPO or a restore at risk; empty when nothing does. */
  readonly problems: readonly string[];
}

export async function binlogStatus(s3: S3Client, bucket: string, source: Source, now: Date): Promise<BinlogStatus> {
  if (!source.binlog) throw Object.assign(new Error(`source ${source.name} does not archive binary logs (valid: a MySQL or MariaDB source with method 'pitr')`), { name: 'InvalidInput' });
  const listing = await readBinlogListing({ s3, bucket, source: source.name });
  const coverage = binlogCoverage(listing, now);
  return { listing, coverage, problems: binlogProblems(source, listing, coverage) };
}

function binlogProblems(source: Source, listing: BinlogArchiveListing, coverage: BinlogCoverage): string[] {
  const problems: string[] = [];
  if (!listing.state) problems.push('no archiver run yet');
  else if ((coverage.ageSeconds ?? 0) > source.tier.rpoSeconds) problems.push(`binlog archive older than the RPO (${formatDuration(source.tier.rpoSeconds)})`);
  if (listing.state?.outcome === 'BinlogGap') problems.push(`the newest archiver run ${listing.state.runId} failed BinlogGap`);
  if (coverage.gaps > 0) problems.push(`binlog gap: ${missingWords(coverage)}`);
  if (!listing.newestBase) problems.push('no verified base with binlog coordinates');
  else if (coverage.restorableWindowSeconds === 0 && coverage.gaps === 0) problems.push('no base reaches the newest archived point');
  return problems;
}

function missingWords(coverage: BinlogCoverage): string {
  const more = coverage.missingCount - coverage.missing.length;
  return `${coverage.missing.join(', ')}${more > 0 ? ` and ${more} more` : ''} missing (${coverage.missingCount} file(s))`;
}

/** The lines `lifeboat status` prints under its table for a binary-log source. */
export function describeBinlogStatus(source: Source, status: BinlogStatus): string[] {
  const { listing, coverage } = status;
  const state = listing.state;
  const client = source.binlog?.binlogClient ?? 'binlog client';
  return [
    `${source.name} (pitr, binary logs via ${client}): newest archiver run ${state ? `${state.runId} ${state.outcome}` : '-'}, ` +
      `${listing.archivedFiles.length} archived file(s), newest ${coverage.newestFile ?? '-'}` +
      (state?.partial ? `, partial ${state.partial.file} (${state.partial.facts.bytes} bytes)` : ''),
    `  archive: complete as of ${coverage.newestPoint?.toISOString() ?? '-'}, age ` +
      `${coverage.ageSeconds === undefined ? '-' : formatDuration(coverage.ageSeconds)} / RPO ${formatDuration(source.tier.rpoSeconds)}`,
    `  restorable window: ${coverage.restorableFrom?.toISOString() ?? '-'} to ${coverage.restorableTo?.toISOString() ?? '-'}` +
      (coverage.windowBase ? ` (base ${coverage.windowBase.runId} from ${coverage.windowBase.file}:${coverage.windowBase.position})` : '') +
      (coverage.gaps > 0 ? `, broken: ${missingWords(coverage)}` : ''),
    `  ${status.problems.length === 0 ? 'OK' : `AT RISK (${status.problems.join('; ')})`}`,
  ];
}
