/**
 * The MySQL/MariaDB point-in-time restore drill as a Fargate task (state RunDrill of the
 * restore-drill state machine, with a binlog source's drill task: lib/constructs/drill-task.ts,
 * kind 'binlog'): restores the source, from the primary or the offsite copy, to a point into a
 * throwaway MariaDB server (the base dump, then its archived binary logs), checks it and writes
 * the report (lib/binlog/drill-run.ts). Same environment, token protocol and exit codes as
 * worker/drill-main.ts; LIFEBOAT_SCRATCH_DIR is where it downloads.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../lib/aws/s3-client';
import { runBinlogDrillRun } from '../lib/binlog/drill-run';
import type { DrillReport } from '../lib/domain/drill-report';
import { lifeboatError } from '../lib/domain/errors';
import type { DrillServerFactory } from '../lib/drill/servers';
import { engineOf } from '../lib/engines/registry';
import { toolPathEnv } from './binlog-archive-main';
import { drillJobFromEnv, type DrillJob } from './drill-job';
import { drillSummary, routeByBucket, type DrillOutcome } from './drill-main';
import { scratchFromEnv } from './pgbackrest-env';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

export interface BinlogDrillJob extends DrillJob {
  /** The binary-log client: the image's own copy when it names one (LIFEBOAT_MYSQLBINLOG: Oracle's mysqlbinlog). */
  readonly binlogClient: string;
  readonly scratch: string;
}

export function binlogDrillJobFromEnv(env: Record<string, string | undefined>): BinlogDrillJob {
  const job = drillJobFromEnv(env);
  const problems: string[] = [];
  const binlog = job.source.binlog;
  if (!binlog) problems.push(`the source ${job.source.name} archives no binary logs (valid: the drill task of a MySQL/MariaDB source with method 'pitr')`);
  const region = (job.from === 'offsite' ? job.offsiteRegion : job.region) ?? '';
  if (!region) problems.push('AWS_REGION (and the offsite region for a drill from offsite): required');
  if (problems.length > 0) throw lifeboatError('InvalidInput', `invalid binlog drill environment:\n  - ${problems.join('\n  - ')}`);
  const tool = (binlog as NonNullable<typeof binlog>).binlogClient;
  return { ...job, binlogClient: env[toolPathEnv(tool)]?.trim() || tool, scratch: scratchFromEnv(env) };
}

export interface BinlogDrillWorkerDeps extends TaskDeps {
  /** Client of the offsite bucket's region (drills from offsite); `s3` is the primary's. */
  readonly offsiteS3?: S3Client;
  readonly startServer?: DrillServerFactory;
  readonly random?: () => number;
}

/** Runs one binlog drill; never throws: the outcome carries the exit code and the error. */
export async function runBinlogDrillJob(job: BinlogDrillJob, deps: BinlogDrillWorkerDeps = {}): Promise<DrillOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const primaryS3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  const offsite = job.from === 'offsite';
  const s3 = offsite
    ? routeByBucket(deps.offsiteS3 ?? createS3Client({ region: job.offsiteRegion, endpoint: job.s3Endpoint }), primaryS3, job.bucket)
    : primaryS3;
  const bucket = offsite ? (job.offsiteBucket as string) : job.bucket;
  log(`binlog PITR drill ${job.source.name} from ${job.from} s3://${bucket}/ (report to s3://${job.bucket}/)`);
  const work = (signal: AbortSignal): Promise<DrillReport> => runBinlogDrillRun({
    source: job.source,
    from: job.from,
    s3,
    bucket,
    reportS3: primaryS3,
    reportBucket: job.bucket,
    binlogClient: job.binlogClient,
    sqlClient: engineOf(job.source.engine).sqlClients[0] as string,
    scratch: job.scratch,
    ...(deps.startServer ? { startServer: deps.startServer } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.random ? { random: deps.random } : {}),
    log,
    signal,
  });
  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work,
    output: (report) => drillSummary(report, job.bucket),
    progress: () => `binlog PITR drill of ${job.source.name} from ${job.from} in progress`,
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    log,
  });
  return { code: outcome.code, report: outcome.result, error: outcome.error };
}

/** The container entrypoint (`node /app/binlog-drill.js`). */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: binlogDrillJobFromEnv,
    what: 'the binlog PITR restore drill (the throwaway server is stopped, a report is still written)',
    run: (job, signal) => runBinlogDrillJob(job, { signal }),
    summary: (outcome, job) => outcome.report && drillSummary(outcome.report, job.bucket),
  });
}

exitWithMain(module, main);
