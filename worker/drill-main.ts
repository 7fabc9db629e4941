/**
 * The restore drill as a Fargate task (state RunDrill of the restore-drill state machine,
 * lib/constructs/drill-workflow.ts): lib/drill/run-drill.ts restores the latest verified run
 * of the source into a throwaway server inside the task and checks it. Started with
 * `.waitForTaskToken`: heartbeats while it works, SendTaskSuccess with a summary of the report,
 * SendTaskFailure with the drill's error name (RowCountMismatch, RtoExceeded, NoVerifiedRun, …).
 * Without a task token (an operator) it prints the summary and exits.
 *
 * A drill from offsite reads the replica in the offsite region and still writes its report to
 * the primary bucket, where the catalog of drills lives.
 *
 * Exit codes as worker/main.ts: 0 the drill passed, 1 it failed (reported to Step Functions),
 * 2 invalid environment.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../lib/aws/s3-client';
import type { DrillReport } from '../lib/domain/drill-report';
import { drillReportKey } from '../lib/domain/layout';
import { runDrill, type RunDrillOptions } from '../lib/drill/run-drill';
import { drillJobFromEnv, type DrillJob } from './drill-job';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

export interface DrillWorkerDeps extends TaskDeps {
  /** Client of the offsite bucket's region (drills from offsite); `s3` is the primary's. */
  readonly offsiteS3?: S3Client;
  /** @default - lib/drill/run-drill.ts */
  readonly runDrill?: (options: RunDrillOptions) => Promise<DrillReport>;
  readonly startServer?: RunDrillOptions['startServer'];
}

export interface DrillOutcome {
  readonly code: number;
  readonly report?: DrillReport;
  /** The failure's name as the state machine matches it, and its message. */
  readonly error?: { readonly name: string; readonly message: string };
}

/** What SendTaskSuccess reports (`$.drill`): small, the report itself stays in the bucket. */
export function drillSummary(report: DrillReport, reportBucket: string) {
  return {
    source: report.source,
    drillId: report.drillId,
    runId: report.runId,
    from: report.from,
    verdict: report.verdict,
    measuredRtoSeconds: report.measuredRtoSeconds,
    rtoTargetSeconds: report.rtoTargetSeconds,
    checks: report.checks.length,
    bucket: reportBucket,
    reportKey: drillReportKey(report.source, report.drillId),
  };
}

/**
 * One client that reads the offsite bucket in its region and sends every request naming the
 * primary bucket (the report) to the primary region's client: run-drill takes one client.
 */
export function routeByBucket(offsite: S3Client, primary: S3Client, primaryBucket: string): S3Client {
  const send = offsite.send.bind(offsite) as (...args: unknown[]) => Promise<unknown>;
  const primarySend = primary.send.bind(primary) as (...args: unknown[]) => Promise<unknown>;
  const routed = (command: { input?: { Bucket?: string } }, ...rest: unknown[]) =>
    (command.input?.Bucket === primaryBucket ? primarySend(command, ...rest) : send(command, ...rest));
  return Object.assign(offsite, { send: routed as S3Client['send'] });
}

/** Runs one drill; never throws: the outcome carries the exit code and the error. */
export async function runDrillJob(job: DrillJob, deps: DrillWorkerDeps = {}): Promise<DrillOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const primaryS3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  const offsite = job.from === 'offsite';
  const s3 = offsite
    ? routeByBucket(deps.offsiteS3 ?? createS3Client({ region: job.offsiteRegion, endpoint: job.s3Endpoint }), primaryS3, job.bucket)
    : primaryS3;
  const bucket = offsite ? (job.offsiteBucket as string) : job.bucket;
  log(`drill ${job.source.name} from ${job.from} s3://${bucket}/ (report to s3://${job.bucket}/)`);
  const work = (signal: AbortSignal) =>
    (deps.runDrill ?? runDrill)({
      s3,
      bucket,
      reportBucket: job.bucket,
      source: job.source,
      from: job.from,
      runId: job.runId,
      now: deps.now,
      log,
      signal,
      startServer: deps.startServer,
    });

  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work,
    output: (report) => drillSummary(report, job.bucket),
    progress: () => `drill of ${job.source.name} from ${job.from} in progress`,
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    log,
  });
  return { code: outcome.code, report: outcome.result, error: outcome.error };
}

/** The container entrypoint (`node /app/drill.js`): the job comes from the environment. */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: drillJobFromEnv,
    what: 'the restore drill (the throwaway server is stopped, a report is still written)',
    run: (job, signal) => runDrillJob(job, { signal }),
    summary: (outcome, job) => outcome.report && drillSummary(outcome.report, job.bucket),
  });
}

exitWithMain(module, main);
