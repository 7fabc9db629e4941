/**
 * The physical backup verifier as a Fargate task (issue 15): after the host's
 * `<app>-binlog-physical` command, finds the run's stream, checkpoints and info in the bucket,
 * writes its manifest and prepares the chain with the image's mariadb-backup / xtrabackup
 * (lib/binlog/physical-verify.ts). Answers its task token with `{ dump, verification }`, which
 * the run's Commit records, as for every run.
 *
 * Exit codes as worker/main.ts: 0 verified ok, 1 failed, 2 invalid environment.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { tmpdir } from 'node:os';
import { createS3Client } from '../lib/aws/s3-client';
import { verifyPhysicalRun, type PhysicalRunResult } from '../lib/binlog/physical-verify';
import { isRunId } from '../lib/domain/run-id';
import { engineOf } from '../lib/engines/registry';
import { EnvReader } from './env-reader';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

export const BINLOG_PHYSICAL_VERIFY_ENV = {
  bucket: 'LIFEBOAT_BUCKET',
  source: 'LIFEBOAT_SOURCE',
  engine: 'LIFEBOAT_ENGINE',
  tier: 'LIFEBOAT_TIER',
  runId: 'LIFEBOAT_RUN_ID',
  type: 'LIFEBOAT_PHYSICAL_TYPE',
  /** An incremental's prior run (the one whose to_lsn the host was given). */
  prior: 'LIFEBOAT_PHYSICAL_PRIOR',
  objectLockMode: 'LIFEBOAT_OBJECT_LOCK_MODE',
  retentionSeconds: 'LIFEBOAT_RETENTION_SECONDS',
  taskToken: 'LIFEBOAT_TASK_TOKEN',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
  scratch: 'LIFEBOAT_SCRATCH_DIR',
} as const;

/** The verifier's entry point in the worker image. */
export const BINLOG_PHYSICAL_VERIFY_ENTRY = '/app/binlog-physical-verify.js';

export interface PhysicalVerifyJob {
  readonly bucket: string;
  readonly source: string;
  readonly engine: string;
  readonly tool: string;
  readonly streamTool: string;
  readonly tier: string;
  readonly runId: string;
  readonly type: 'full' | 'incr';
  readonly prior?: string;
  readonly region: string;
  readonly objectLock?: { readonly mode: 'GOVERNANCE' | 'COMPLIANCE'; readonly retentionSeconds: number };
  readonly taskToken?: string;
  readonly s3Endpoint?: string;
  readonly scratch: string;
}

/** Reads the job, reporting every missing or invalid variable at once (`InvalidInput`). */
export function physicalVerifyJobFromEnv(env: Record<string, string | undefined>): PhysicalVerifyJob {
  const E = BINLOG_PHYSICAL_VERIFY_ENV;
  const read = new EnvReader(env, 'physical backup verifier');
  const { problems } = read;
  const bucket = read.required(E.bucket);
  const source = read.required(E.source);
  if (source && !/^[a-z0-9-]+$/.test(source)) problems.push(`${E.source}: "${source}" is not valid (valid: a-z, 0-9 and "-")`);
  const engine = read.required(E.engine);
  let tools: { tool: string; streamTool: string } = { tool: '', streamTool: '' };
  if (engine) {
    const binlogTools = (() => {
      try {
        return engineOf(engine).binlogTools;
      } catch {
        return undefined;
      }
    })();
    if (!binlogTools) problems.push(`${E.engine}: "${engine}" is not valid (valid: an engine with binary-log point-in-time recovery, such as mariadb or mysql)`);
    else tools = { tool: binlogTools.physicalTool, streamTool: binlogTools.streamTool };
  }
  const tier = read.required(E.tier);
  const runId = read.required(E.runId);
  if (runId && !isRunId(runId)) problems.push(`${E.runId}: "${runId}" is not valid (valid: a UTC slot time such as 20261126T030000Z)`);
  const type = read.required(E.type);
  if (type && type !== 'full' && type !== 'incr') problems.push(`${E.type}: "${type}" is not valid (valid: full, incr)`);
  const prior = env[E.prior]?.trim() || undefined;
  if (prior && !isRunId(prior)) problems.push(`${E.prior}: "${prior}" is not valid (valid: a run id such as 20261126T030000Z)`);
  if (type === 'incr' && !prior) problems.push(`${E.prior}: required for an incremental (the run whose to_lsn it starts at)`);
  if (type === 'full' && prior) problems.push(`${E.prior}: "${prior}" given for a full (valid: empty)`);
  const region = read.region();
  const mode = env[E.objectLockMode]?.trim();
  const retentionText = env[E.retentionSeconds]?.trim();
  let objectLock: PhysicalVerifyJob['objectLock'];
  if (mode) {
    const retentionSeconds = Number(retentionText);
    if (mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE') problems.push(`${E.objectLockMode}: "${mode}" is not valid (valid: GOVERNANCE, COMPLIANCE)`);
    else if (!(Number.isInteger(retentionSeconds) && retentionSeconds > 0)) problems.push(`${E.retentionSeconds}: "${retentionText ?? ''}" is not valid (valid: whole seconds > 0)`);
    else objectLock = { mode, retentionSeconds };
  }
  read.done();
  return {
    bucket, source, engine, ...tools, tier, runId, type: type as PhysicalVerifyJob['type'], ...(prior ? { prior } : {}), region,
    ...(objectLock ? { objectLock } : {}),
    taskToken: env[E.taskToken] || undefined,
    s3Endpoint: env[E.s3Endpoint] || undefined,
    scratch: env[E.scratch]?.trim() || tmpdir(),
  };
}

export interface PhysicalVerifyOutcome {
  readonly code: number;
  readonly result?: PhysicalRunResult;
  readonly error?: { readonly name: string; readonly message: string };
}

/** Runs the step; never throws: the outcome carries the exit code and the error. */
export async function runPhysicalVerifyJob(job: PhysicalVerifyJob, deps: TaskDeps = {}): Promise<PhysicalVerifyOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const s3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  log(`physical verify ${job.source}/${job.runId} (${job.type}${job.prior ? ` on ${job.prior}` : ''}) in s3://${job.bucket}`);
  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work: (signal) => verifyPhysicalRun(
      { source: job.source, engine: job.engine, tier: job.tier, runId: job.runId, type: job.type, ...(job.prior ? { prior: job.prior } : {}) },
      {
        s3, bucket: job.bucket, tool: job.tool, streamTool: job.streamTool, scratch: job.scratch,
        ...(job.objectLock ? { objectLock: job.objectLock } : {}),
        verifiedBy: 'fargate', log, signal, ...(deps.now ? { now: deps.now } : {}),
      },
    ),
    output: (result) => result,
    progress: () => 'verifying',
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    secrets: [],
    log,
  });
  const code = outcome.code === 0 && outcome.result?.verification.verdict === 'failed' ? 1 : outcome.code;
  return { code, result: outcome.result, error: outcome.error ?? (outcome.result?.verification.error && code !== 0 ? outcome.result.verification.error : undefined) };
}

/** The container entrypoint (`node /app/binlog-physical-verify.js`). */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: physicalVerifyJobFromEnv,
    what: 'the physical backup verification (no verdict is recorded)',
    run: (job, signal) => runPhysicalVerifyJob(job, { signal }),
    summary: (outcome) => outcome.result?.verification,
  });
}

exitWithMain(module, main);
