import { SFNClient } from '@aws-sdk/client-sfn';
import { createS3Client } from '../lib/aws/s3-client';
import { redact } from '../lib/domain/errors';
import { manifestKey } from '../lib/domain/layout';
import type { Manifest } from '../lib/domain/manifest';
import { jobFromEnv, type BackupJob } from './job';
import { runBackup, type BackupProgress } from './run-backup';
import { containerMain, exitWithMain } from './signals';
import { EXIT, runTask, type TaskDeps } from './task-token';

export { EXIT };

export interface WorkerDeps extends TaskDeps {
  /** Updated as the run goes (phase, bytes uploaded); read by heartbeats, the CLI and tests. */
  readonly progress?: BackupProgress;
}

export interface JobOutcome {
  readonly code: number;
  readonly manifest?: Manifest;
  /** The S3 version of manifest.json (versioned buckets). */
  readonly manifestVersionId?: string;
  /** Error name as the state machine matches it, and a message without secrets. */
  readonly error?: { readonly name: string; readonly message: string };
}

/** What SendTaskSuccess reports: the manifest summary the state machine passes on. */
export function manifestSummary(manifest: Manifest, bucket: string, manifestVersionId?: string) {
  return {
    source: manifest.source,
    runId: manifest.runId,
    engine: manifest.engine,
    bucket,
    manifestKey: manifestKey(manifest.source, manifest.runId),
    ...(manifestVersionId ? { manifestVersionId } : {}),
    artifacts: manifest.artifacts.map(({ key, bytes, sha256, versionId }) => ({ key, bytes, sha256, ...(versionId ? { versionId } : {}) })),
    bytes: manifest.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
    tables: manifest.tables.length,
    rows: manifest.tables.reduce((sum, table) => sum + table.rows, 0),
    durationSeconds: (Date.parse(manifest.finishedAt) - Date.parse(manifest.startedAt)) / 1000,
  };
}

/**
 * Runs one job: under its task token when Step Functions started it, directly otherwise
 * (the operator CLI). Never throws: the outcome carries the exit code and the error.
 */
export async function runJob(job: BackupJob, deps: WorkerDeps = {}): Promise<JobOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const secrets = [job.target.password];
  const safeLog = (line: string) => log(redact(line, secrets));
  const s3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  const progress: BackupProgress = deps.progress ?? { phase: 'preflight', bytesUploaded: 0 };
  safeLog(`backup ${job.source}/${job.runId}: ${job.engine} ${job.target.host}:${job.target.port} → s3://${job.bucket}`);

  const work = (signal: AbortSignal) =>
    runBackup(job, { s3, signal: withDeadline(signal, job.deadlineSeconds), log: safeLog, now: deps.now }, progress);
  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work,
    output: (manifest) => manifestSummary(manifest, job.bucket, progress.manifestVersionId),
    progress: () => `${progress.phase}${progress.database ? ` ${progress.database}` : ''}, ${progress.bytesUploaded} bytes uploaded`,
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    secrets,
    log: safeLog,
  });
  return { code: outcome.code, manifest: outcome.result, manifestVersionId: progress.manifestVersionId, error: outcome.error };
}

/** Aborts with DumpTimedOut once the job's deadline passes (the slot's time is up). */
function withDeadline(signal: AbortSignal, deadlineSeconds: number | undefined): AbortSignal {
  if (deadlineSeconds === undefined) return signal;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(Object.assign(
    new Error(`the run did not finish within its deadline of ${deadlineSeconds} s (the schedule interval): a longer dump would overlap the next slot`),
    { name: 'DumpTimedOut' },
  )), deadlineSeconds * 1000);
  timer.unref();
  return AbortSignal.any([signal, deadline.signal]);
}

/** The container entrypoint: the job comes from the environment ECS sets. */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: jobFromEnv,
    what: 'the backup run (the upload is aborted, nothing is committed)',
    run: (job, signal) => runJob(job, { signal }),
    summary: (outcome, job) => outcome.manifest && manifestSummary(outcome.manifest, job.bucket, outcome.manifestVersionId),
  });
}

exitWithMain(module, main);
