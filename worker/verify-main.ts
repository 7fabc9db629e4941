/**
 * The verifier as a Fargate task (state VerifyOnFargate): the same lib/verify core as the
 * Verify Lambda, for artifacts whose full read does not fit in Lambda's 15 minutes. Started
 * with `.waitForTaskToken`: heartbeats while it reads, SendTaskSuccess with the same result as
 * the Lambda (the verdict, ok or failed: Commit records it), SendTaskFailure only when it could
 * not judge. Without a task token (an operator, the benchmark) it prints the result and exits.
 *
 * Exit codes as worker/main.ts: 0 verified ok, 1 failed (a failed verdict or an error),
 * 2 invalid environment.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../lib/aws/s3-client';
import { lifeboatError } from '../lib/domain/errors';
import { isRunId } from '../lib/domain/run-id';
import { DEFAULT_SUSPICIOUS_SHRINK } from '../lib/verify/size';
import { runVerifyTask, type VerifyResult } from '../lib/verify/verify-task';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

/** One verification of one run, from the environment the task definition and the state machine set. */
export interface VerifyJob {
  readonly bucket: string;
  readonly source: string;
  readonly runId: string;
  /** The version of manifest.json the worker wrote (from the dump summary). */
  readonly manifestVersionId?: string;
  readonly taskToken?: string;
  readonly s3Endpoint?: string;
  readonly region?: string;
  readonly suspiciousShrink: number;
  /** Directory with pg_restore; PATH when undefined. */
  readonly pgBinDir?: string;
}

export const VERIFY_JOB_ENV = {
  bucket: 'LIFEBOAT_BUCKET',
  source: 'LIFEBOAT_SOURCE',
  runId: 'LIFEBOAT_RUN_ID',
  /** The dump's summary as JSON (`$.dump`), for the manifest's version. */
  dumpSummary: 'LIFEBOAT_DUMP_SUMMARY',
  taskToken: 'LIFEBOAT_TASK_TOKEN',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
  suspiciousShrink: 'LIFEBOAT_SUSPICIOUS_SHRINK',
  pgBinDir: 'LIFEBOAT_PG_BIN_DIR',
} as const;

/** Reads the job, reporting every missing or invalid variable at once (`InvalidInput`). */
export function verifyJobFromEnv(env: Record<string, string | undefined>): VerifyJob {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name}: required`);
    return value ?? '';
  };
  const bucket = required(VERIFY_JOB_ENV.bucket);
  const source = required(VERIFY_JOB_ENV.source);
  if (source && !/^[a-z0-9-]+$/.test(source)) problems.push(`${VERIFY_JOB_ENV.source}: "${source}" is not valid (valid: a-z, 0-9 and "-")`);
  const runId = required(VERIFY_JOB_ENV.runId);
  if (runId && !isRunId(runId)) problems.push(`${VERIFY_JOB_ENV.runId}: "${runId}" is not valid (valid: a UTC slot time such as 20261126T030000Z)`);
  const shrinkText = env[VERIFY_JOB_ENV.suspiciousShrink]?.trim();
  const suspiciousShrink = shrinkText ? Number(shrinkText) : DEFAULT_SUSPICIOUS_SHRINK;
  if (!(suspiciousShrink >= 0 && suspiciousShrink <= 1)) {
    problems.push(`${VERIFY_JOB_ENV.suspiciousShrink}: "${shrinkText}" is not valid (valid: a fraction from 0 to 1)`);
  }
  let manifestVersionId: string | undefined;
  const summaryText = env[VERIFY_JOB_ENV.dumpSummary]?.trim();
  if (summaryText) {
    try {
      const summary = JSON.parse(summaryText) as { manifestVersionId?: unknown };
      if (typeof summary.manifestVersionId === 'string' && summary.manifestVersionId) manifestVersionId = summary.manifestVersionId;
    } catch {
      problems.push(`${VERIFY_JOB_ENV.dumpSummary}: not JSON (valid: the dump's summary, as the state machine passes it)`);
    }
  }
  if (problems.length > 0) throw lifeboatError('InvalidInput', `invalid verifier environment:\n  - ${problems.join('\n  - ')}`);
  return {
    bucket,
    source,
    runId,
    ...(manifestVersionId ? { manifestVersionId } : {}),
    suspiciousShrink,
    taskToken: env[VERIFY_JOB_ENV.taskToken] || undefined,
    s3Endpoint: env[VERIFY_JOB_ENV.s3Endpoint] || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    pgBinDir: env[VERIFY_JOB_ENV.pgBinDir] || undefined,
  };
}

export interface VerifyWorkerDeps extends TaskDeps {
  /** @default - the catalog's previous verified runs */
  readonly previousSizes?: (s3: S3Client, bucket: string, source: string, runId: string) => Promise<number[]>;
}

export interface VerifyOutcome {
  readonly code: number;
  readonly result?: VerifyResult;
  /** The failure's name as the state machine matches it, and its message. */
  readonly error?: { readonly name: string; readonly message: string };
}

/** Runs one verification; never throws: the outcome carries the exit code and the error. */
export async function runVerifyJob(job: VerifyJob, deps: VerifyWorkerDeps = {}): Promise<VerifyOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const s3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  let bytesRead = 0;
  log(`verify ${job.source}/${job.runId} in s3://${job.bucket}`);
  const work = (signal: AbortSignal) =>
    runVerifyTask({ source: job.source, runId: job.runId, manifestVersionId: job.manifestVersionId }, {
      s3,
      bucket: job.bucket,
      suspiciousShrink: job.suspiciousShrink,
      verifiedBy: 'fargate',
      pgBinDir: job.pgBinDir,
      now: deps.now,
      signal,
      log,
      previousSizes: deps.previousSizes,
      onProgress: (bytes) => {
        bytesRead = bytes;
      },
    });

  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work,
    output: (result) => result,
    progress: () => `${bytesRead} bytes read`,
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    log,
  });
  // A failed verdict is delivered (SendTaskSuccess) but is still a failed run for the exit code.
  const code = outcome.code === 0 && outcome.result?.verdict === 'failed' ? 1 : outcome.code;
  return { code, result: outcome.result, error: outcome.error ?? (outcome.result?.error && code !== 0 ? outcome.result.error : undefined) };
}


/** The container entrypoint (`node worker/verify-main.js`): the job comes from the environment. */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: verifyJobFromEnv,
    what: 'the verification (no verdict is recorded)',
    run: (job, signal) => runVerifyJob(job, { signal }),
    summary: (outcome) => outcome.result,
  });
}

exitWithMain(module, main);
