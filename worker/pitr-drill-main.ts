/**
 * The PITR restore drill as a Fargate task (state RunDrill of the restore-drill state machine,
 * with a PITR source's drill task: lib/constructs/drill-task.ts, kind 'pitr'): restores the
 * source's pgBackRest repository, from the primary or the offsite copy, to a point into a
 * throwaway PostgreSQL of the source's major, checks it and writes the report
 * (lib/pitr/drill-run.ts). Same environment, token protocol and exit codes as worker/drill-main.ts.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { chownSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { createS3Client } from '../lib/aws/s3-client';
import { lifeboatError } from '../lib/domain/errors';
import type { DrillReport } from '../lib/domain/drill-report';
import { runPitrDrillRun } from '../lib/pitr/drill-run';
import { pgBackRest } from '../lib/pitr/pgbackrest';
import { completeConfigFiles, pgBinDirFor } from '../lib/pitr/restored-server';
import { startPostgres } from '../lib/servers/postgres';
import { unprivilegedUser } from '../lib/servers/processes';
import { drillJobFromEnv, type DrillJob } from './drill-job';
import { drillSummary, routeByBucket, type DrillOutcome } from './drill-main';
import { pgbackrestEndpointFromEnv, repositoryAsTaskRole, scratchFromEnv, type PgBackRestEndpoint } from './pgbackrest-env';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

export interface PitrDrillJob extends DrillJob {
  readonly pgbackrest: PgBackRestEndpoint;
  readonly scratch: string;
  /** LIFEBOAT_PITR_GAP_SETTLE_SECONDS: how long a gap's later segments must be archived before it counts. @default 300 */
  readonly gapSettleSeconds?: number;
}

export function pitrDrillJobFromEnv(env: Record<string, string | undefined>): PitrDrillJob {
  const job = drillJobFromEnv(env);
  const problems: string[] = [];
  if (!job.source.pitr) problems.push(`the source ${job.source.name} has no method 'pitr' (valid: a PITR source's drill task)`);
  const region = (job.from === 'offsite' ? job.offsiteRegion : job.region) ?? '';
  if (!region) problems.push('AWS_REGION (and the offsite region for a drill from offsite): required');
  const pgbackrest = pgbackrestEndpointFromEnv(env, region, problems);
  const settleText = env.LIFEBOAT_PITR_GAP_SETTLE_SECONDS?.trim();
  const gapSettleSeconds = settleText ? Number(settleText) : undefined;
  if (gapSettleSeconds !== undefined && !(Number.isInteger(gapSettleSeconds) && gapSettleSeconds >= 0)) {
    problems.push(`LIFEBOAT_PITR_GAP_SETTLE_SECONDS: "${settleText}" is not valid (valid: whole seconds, 0 or more)`);
  }
  if (problems.length > 0) throw lifeboatError('InvalidInput', `invalid PITR drill environment:\n  - ${problems.join('\n  - ')}`);
  return { ...job, pgbackrest, scratch: scratchFromEnv(env), ...(gapSettleSeconds !== undefined ? { gapSettleSeconds } : {}) };
}

/** Runs one PITR drill; never throws: the outcome carries the exit code and the error. */
export async function runPitrDrillJob(job: PitrDrillJob, deps: TaskDeps = {}): Promise<DrillOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const primaryS3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  const offsite = job.from === 'offsite';
  const repositoryS3 = offsite ? createS3Client({ region: job.offsiteRegion, endpoint: job.s3Endpoint }) : primaryS3;
  const s3 = offsite ? routeByBucket(repositoryS3, primaryS3, job.bucket) : primaryS3;
  const bucket = offsite ? (job.offsiteBucket as string) : job.bucket;
  const region = (offsite ? job.offsiteRegion : job.region) as string;
  const pitr = job.source.pitr as NonNullable<DrillJob['source']['pitr']>;
  const secrets: string[] = [];
  log(`PITR drill ${job.source.name} from ${job.from} s3://${bucket}/pitr/${job.source.name}/ (report to s3://${job.bucket}/)`);
  const work = async (): Promise<DrillReport> => {
    const repository = await repositoryAsTaskRole(repositoryS3, { bucket, region, path: `/pitr/${job.source.name}`, endpoint: job.pgbackrest }, secrets);
    const scratch = mkdtempSync(join(job.scratch, 'pitr-drill-'));
    // PostgreSQL refuses to run as root: run as root (a local run), the restore and the server are postgres's.
    const owner = unprivilegedUser('postgres');
    if (owner) chownSync(scratch, owner.uid, owner.gid);
    const runner = pgBackRest({
      repository,
      stanza: { name: pitr.stanza, pgPath: join(scratch, 'data') },
      workDir: join(scratch, 'pgbackrest'),
      ...(owner ? { osUser: owner } : {}),
      onLog: (line) => log(line),
    });
    return runPitrDrillRun({
      source: job.source,
      from: job.from,
      s3,
      bucket,
      reportS3: primaryS3,
      reportBucket: job.bucket,
      runner,
      scratch,
      // The server of the restored directory's major (the image carries every major it drills).
      // A Debian host keeps postgresql.conf and pg_hba.conf outside the data directory: minimal ones then.
      startServer: async (dataDir) => {
        for (const file of completeConfigFiles(dataDir)) log(`${job.source.name}: the restored directory had no ${file}: a minimal one was written`);
        return startPostgres({ existingDataDir: dataDir, env: runner.serverEnvironment() });
      },
      pgBinDirFor: (major) => pgBinDirFor(major),
      now: deps.now,
      ...(job.gapSettleSeconds !== undefined ? { gapSettleSeconds: job.gapSettleSeconds } : {}),
      log,
    });
  };
  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work,
    output: (report) => drillSummary(report, job.bucket),
    progress: () => `PITR drill of ${job.source.name} from ${job.from} in progress`,
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    secrets,
    log,
  });
  return { code: outcome.code, report: outcome.result, error: outcome.error };
}

/** The container entrypoint (`node /app/pitr-drill.js`). */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: pitrDrillJobFromEnv,
    what: 'the PITR restore drill (the throwaway server is stopped, a report is still written)',
    run: (job, signal) => runPitrDrillJob(job, { signal }),
    summary: (outcome, job) => outcome.report && drillSummary(outcome.report, job.bucket),
  });
}

exitWithMain(module, main);
