/**
 * The PITR verifier as a Fargate task (the PITR run's VerifySet state): after the host's
 * `pgbackrest backup`, finds the new set, writes its Lifeboat manifest and verifies it with the
 * image's pgBackRest (lib/pitr/run.ts). Answers its task token with `{ dump, verification }`.
 *
 * Credentials and pgBackRest's endpoint: worker/pgbackrest-env.ts.
 *
 * Exit codes as worker/main.ts: 0 verified ok, 1 failed, 2 invalid environment.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { createS3Client } from '../lib/aws/s3-client';
import { isRunId } from '../lib/domain/run-id';
import { pgBackRest } from '../lib/pitr/pgbackrest';
import { PGBACKREST_ENV, pgbackrestEndpointFromEnv, repositoryAsTaskRole, scratchFromEnv, type PgBackRestEndpoint } from './pgbackrest-env';
import { verifyPitrRun, type PitrRunResult } from '../lib/pitr/run';
import { EnvReader } from './env-reader';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

export const PITR_VERIFY_ENV = {
  bucket: 'LIFEBOAT_BUCKET',
  source: 'LIFEBOAT_SOURCE',
  tier: 'LIFEBOAT_TIER',
  runId: 'LIFEBOAT_RUN_ID',
  type: 'LIFEBOAT_PITR_TYPE',
  requestedAt: 'LIFEBOAT_PITR_REQUESTED_AT',
  stanza: 'LIFEBOAT_PITR_STANZA',
  repoPath: 'LIFEBOAT_PITR_REPO_PATH',
  objectLockMode: 'LIFEBOAT_OBJECT_LOCK_MODE',
  retentionSeconds: 'LIFEBOAT_RETENTION_SECONDS',
  taskToken: 'LIFEBOAT_TASK_TOKEN',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
  /** pgBackRest's endpoint and the scratch directory: worker/pgbackrest-env.ts. */
  scratch: PGBACKREST_ENV.scratch,
} as const;

export interface PitrVerifyJob {
  readonly bucket: string;
  readonly source: string;
  readonly tier: string;
  readonly runId: string;
  readonly type: 'full' | 'diff' | 'incr';
  readonly requestedAt: Date;
  readonly stanza: string;
  readonly repoPath: string;
  readonly region: string;
  readonly objectLock?: { readonly mode: 'GOVERNANCE' | 'COMPLIANCE'; readonly retentionSeconds: number };
  readonly taskToken?: string;
  readonly s3Endpoint?: string;
  readonly pgbackrest: PgBackRestEndpoint;
  readonly scratch: string;
}

/** Reads the job, reporting every missing or invalid variable at once (`InvalidInput`). */
export function pitrVerifyJobFromEnv(env: Record<string, string | undefined>): PitrVerifyJob {
  const E = PITR_VERIFY_ENV;
  const read = new EnvReader(env, 'PITR verifier');
  const { problems } = read;
  const required = (name: string) => read.required(name);
  const bucket = required(E.bucket);
  const source = required(E.source);
  if (source && !/^[a-z0-9-]+$/.test(source)) problems.push(`${E.source}: "${source}" is not valid (valid: a-z, 0-9 and "-")`);
  const tier = required(E.tier);
  const runId = required(E.runId);
  if (runId && !isRunId(runId)) problems.push(`${E.runId}: "${runId}" is not valid (valid: a UTC slot time such as 20261126T030000Z)`);
  const type = required(E.type);
  if (type && !['full', 'diff', 'incr'].includes(type)) problems.push(`${E.type}: "${type}" is not valid (valid: full, diff, incr)`);
  const requestedText = required(E.requestedAt);
  const requestedAt = new Date(requestedText);
  if (requestedText && Number.isNaN(requestedAt.getTime())) problems.push(`${E.requestedAt}: "${requestedText}" is not valid (valid: an ISO-8601 time)`);
  const stanza = required(E.stanza);
  const repoPath = required(E.repoPath);
  if (repoPath && !repoPath.startsWith('/')) problems.push(`${E.repoPath}: "${repoPath}" is not valid (valid: an absolute path such as /pitr/orders)`);
  const region = read.region();
  const mode = env[E.objectLockMode]?.trim();
  const retentionText = env[E.retentionSeconds]?.trim();
  let objectLock: PitrVerifyJob['objectLock'];
  if (mode) {
    const retentionSeconds = Number(retentionText);
    if (mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE') problems.push(`${E.objectLockMode}: "${mode}" is not valid (valid: GOVERNANCE, COMPLIANCE)`);
    else if (!(Number.isInteger(retentionSeconds) && retentionSeconds > 0)) problems.push(`${E.retentionSeconds}: "${retentionText ?? ''}" is not valid (valid: whole seconds > 0)`);
    else objectLock = { mode, retentionSeconds };
  }
  const pgbackrest = pgbackrestEndpointFromEnv(env, region, problems);
  read.done();
  return {
    bucket, source, tier, runId, type: type as PitrVerifyJob['type'], requestedAt, stanza, repoPath, region,
    ...(objectLock ? { objectLock } : {}),
    taskToken: env[E.taskToken] || undefined,
    s3Endpoint: env[E.s3Endpoint] || undefined,
    pgbackrest,
    scratch: scratchFromEnv(env),
  };
}

export interface PitrVerifyOutcome {
  readonly code: number;
  readonly result?: PitrRunResult;
  readonly error?: { readonly name: string; readonly message: string };
}

/** Runs the step; never throws: the outcome carries the exit code and the error. */
export async function runPitrVerifyJob(job: PitrVerifyJob, deps: TaskDeps = {}): Promise<PitrVerifyOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const s3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  const secrets: string[] = [];
  log(`PITR verify ${job.source}/${job.runId} (${job.type}) in s3://${job.bucket}${job.repoPath}`);
  const work = async (signal: AbortSignal) => {
    const repository = await repositoryAsTaskRole(s3, { bucket: job.bucket, region: job.region, path: job.repoPath, endpoint: job.pgbackrest }, secrets);
    // The verifier reads the repository only; pg1-path is required by the option set, never read.
    const runner = pgBackRest({
      repository,
      stanza: { name: job.stanza, pgPath: '/var/lib/postgresql/data' },
      workDir: mkdtempSync(join(job.scratch, 'pgbackrest-')),
      onLog: (line) => log(line),
    });
    const version = await runner.version();
    return verifyPitrRun(
      { source: job.source, tier: job.tier, runId: job.runId, type: job.type, requestedAt: job.requestedAt },
      {
        s3, bucket: job.bucket, repoPath: job.repoPath, stanza: job.stanza, runner,
        // The host must run the image's pgBackRest: the one this task runs (`pgBackRest 2.59.1` → 2.59.1).
        expectedVersion: version.text.replace(/^pgBackRest\s+/, '').trim(),
        ...(job.objectLock ? { objectLock: job.objectLock } : {}),
        verifiedBy: 'fargate', log, signal,
      },
    );
  };
  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work,
    output: (result) => result,
    progress: () => 'verifying',
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    secrets,
    log,
  });
  const code = outcome.code === 0 && outcome.result?.verification.verdict === 'failed' ? 1 : outcome.code;
  return { code, result: outcome.result, error: outcome.error ?? (outcome.result?.verification.error && code !== 0 ? outcome.result.verification.error : undefined) };
}

/** The container entrypoint (`node /app/pitr-verify.js`). */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: pitrVerifyJobFromEnv,
    what: 'the PITR verification (no verdict is recorded)',
    run: (job, signal) => runPitrVerifyJob(job, { signal }),
    summary: (outcome) => outcome.result?.verification,
  });
}

exitWithMain(module, main);
