/**
 * The physical backup run's Plan state as a Fargate task (the verifier's image, read-only): what
 * the host is to make for this slot, from the source's PITR catalog alone — a full, or an
 * incremental on the newest verified physical run (its to_lsn is the host's `--incremental-lsn`;
 * with none to build on, a full), and the newest verified full's stream size (sizes the upload's
 * parts). Answers its task token with `{ type, prior, incrementalLsn, expectedSize }` (strings:
 * they go into SSM parameters as they are; empty when not applicable).
 *
 * Exit codes as worker/main.ts: 0 planned, 1 failed, 2 invalid environment.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { createS3Client } from '../lib/aws/s3-client';
import { nextPhysicalBackup, type PhysicalRunRef } from '../lib/binlog/physical';
import { readPhysicalRuns, streamOf } from '../lib/binlog/physical-verify';
import { EnvReader } from './env-reader';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

export const BINLOG_PHYSICAL_PLAN_ENV = {
  bucket: 'LIFEBOAT_BUCKET',
  source: 'LIFEBOAT_SOURCE',
  /** What the schedule asks for: full or incr. */
  type: 'LIFEBOAT_PHYSICAL_TYPE',
  taskToken: 'LIFEBOAT_TASK_TOKEN',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
} as const;

export const BINLOG_PHYSICAL_PLAN_ENTRY = '/app/binlog-physical-plan.js';

export interface PhysicalPlanJob {
  readonly bucket: string;
  readonly source: string;
  readonly type: 'full' | 'incr';
  readonly region: string;
  readonly taskToken?: string;
  readonly s3Endpoint?: string;
}

/** The Plan state's output (every value a string: an SSM parameter). */
export interface PhysicalPlan {
  readonly type: 'full' | 'incr';
  readonly prior: string;
  readonly incrementalLsn: string;
  readonly expectedSize: string;
}

export function physicalPlanJobFromEnv(env: Record<string, string | undefined>): PhysicalPlanJob {
  const E = BINLOG_PHYSICAL_PLAN_ENV;
  const read = new EnvReader(env, 'physical backup plan');
  const bucket = read.required(E.bucket);
  const source = read.required(E.source);
  if (source && !/^[a-z0-9-]+$/.test(source)) read.problems.push(`${E.source}: "${source}" is not valid (valid: a-z, 0-9 and "-")`);
  const type = read.required(E.type);
  if (type && type !== 'full' && type !== 'incr') read.problems.push(`${E.type}: "${type}" is not valid (valid: full, incr)`);
  const region = read.region();
  read.done();
  return { bucket, source, type: type as PhysicalPlanJob['type'], region, taskToken: env[E.taskToken] || undefined, s3Endpoint: env[E.s3Endpoint] || undefined };
}

/** The plan from the catalog's runs (pure). */
export function physicalPlanOf(runs: readonly PhysicalRunRef[], type: 'full' | 'incr'): PhysicalPlan {
  const next = nextPhysicalBackup(runs, type);
  const newestFull = [...runs].sort((a, b) => b.runId.localeCompare(a.runId))
    .find((run) => run.verdict === 'ok' && run.manifest?.physical?.type === 'full');
  return {
    type: next.type,
    prior: next.prior?.runId ?? '',
    incrementalLsn: next.prior?.toLsn ?? '',
    expectedSize: newestFull?.manifest ? String(streamOf(newestFull.manifest).bytes) : '',
  };
}

export async function planPhysicalBackup(s3: S3Client, job: Pick<PhysicalPlanJob, 'bucket' | 'source' | 'type'>): Promise<PhysicalPlan> {
  return physicalPlanOf(await readPhysicalRuns(s3, job.bucket, job.source), job.type);
}

export async function runPhysicalPlanJob(job: PhysicalPlanJob, deps: TaskDeps = {}): Promise<{ code: number; result?: PhysicalPlan; error?: { name: string; message: string } }> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const s3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work: async () => {
      const plan = await planPhysicalBackup(s3, job);
      log(`physical plan ${job.source}: ${plan.type}${plan.prior ? ` on ${plan.prior} (LSN ${plan.incrementalLsn})` : ''}${job.type !== plan.type ? ` (asked: ${job.type}; nothing verified to build on)` : ''}`);
      return plan;
    },
    output: (plan) => plan,
    progress: () => 'planning',
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    secrets: [],
    log,
  });
  return { code: outcome.code, result: outcome.result, error: outcome.error };
}

export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: physicalPlanJobFromEnv,
    what: 'the physical backup plan (nothing is made)',
    run: (job, signal) => runPhysicalPlanJob(job, { signal }),
    summary: (outcome) => outcome.result,
  });
}

exitWithMain(module, main);
