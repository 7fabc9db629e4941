/**
 * Which run a restore uses. Only a verified run (lib/catalog: manifest.json and an ok
 * verification.json that vouches for it) is ever chosen: a restore from a run the verifier
 * did not read to its end could fail halfway, at 3 a.m., on a truncated archive.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { latestVerifiedRun, listRuns, listSources, readRun, type RunRecord } from '../catalog/catalog';
import { runIdToDate } from '../domain/run-id';
import { restoreError } from './errors';

export interface ChooseRunOptions {
  /** That run, refused (`RunNotVerified`) unless it is verified. */
  readonly runId?: string;
  /** The latest verified run whose slot is at or before this time. */
  readonly at?: Date;
}

/**
 * @default - the latest verified run of the source
 * @throws RunNotVerified (runId given, that run is not verified), NoVerifiedRun (nothing to
 *   choose: the message names the source, the bucket and what runs exist), InvalidInput
 */
export async function chooseRun(s3: S3Client, bucket: string, source: string, opts: ChooseRunOptions = {}): Promise<RunRecord> {
  if (opts.runId !== undefined && opts.at !== undefined) {
    throw restoreError('InvalidInput', 'choose a run either by id or by time, not both');
  }
  if (opts.runId !== undefined) {
    if (!runIdToDate(opts.runId)) {
      throw restoreError('InvalidInput', `run id "${opts.runId}" is not valid (valid: a UTC slot time such as 20261126T030000Z)`);
    }
    const run = await readRun(s3, bucket, source, opts.runId);
    if (run.objects.length === 0) {
      throw restoreError('RunNotVerified',
        `run ${source}/${opts.runId} does not exist in s3://${bucket}/ (nothing under runs/${source}/${opts.runId}/); ${await describeRuns(s3, bucket, source)}`);
    }
    if (run.status !== 'verified') {
      throw restoreError('RunNotVerified',
        `run ${source}/${opts.runId} in s3://${bucket}/ is ${run.status}, not verified: ${run.reason ?? 'no reason recorded'}; ` +
        'only a verified run is restored');
    }
    return run;
  }
  if (opts.at !== undefined && Number.isNaN(opts.at.getTime())) throw restoreError('InvalidInput', 'at: not a valid time');
  const run = await latestVerifiedRun(s3, bucket, source, { at: opts.at });
  if (run) return run;
  const when = opts.at ? ` at or before ${opts.at.toISOString()}` : '';
  throw restoreError('NoVerifiedRun', `no verified run of source ${source}${when} in s3://${bucket}/: ${await describeRuns(s3, bucket, source)}`);
}

/** What the bucket holds for the source, for a message that tells the SRE where to look next. */
export async function describeRuns(s3: S3Client, bucket: string, source: string): Promise<string> {
  const runs = await listRuns(s3, bucket, source, { newestFirst: true });
  if (runs.length === 0) {
    const sources = await listSources(s3, bucket);
    return `the bucket has no run of ${source} at all (sources with runs: ${sources.length > 0 ? sources.join(', ') : 'none'})`;
  }
  const counts = new Map<string, number>();
  for (const run of runs) counts.set(run.status, (counts.get(run.status) ?? 0) + 1);
  const summary = [...counts].map(([status, count]) => `${count} ${status}`).join(', ');
  const newest = runs.slice(0, 3).map((run) => `${run.runId} ${run.status}${run.reason ? ` (${run.reason})` : ''}`);
  const verified = runs.find((run) => run.status === 'verified');
  const oldestVerified = [...runs].reverse().find((run) => run.status === 'verified');
  const range = verified && oldestVerified ? `; verified runs from ${oldestVerified.runId} to ${verified.runId}` : '';
  return `${runs.length} run(s) exist: ${summary}${range}; newest: ${newest.join('; ')}`;
}
