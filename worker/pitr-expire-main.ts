/**
 * The PITR expiry as a Fargate task (the PITR run's Expire state, after a full set is recorded):
 * Lifeboat's retention applied to one source's pgBackRest repository with the image's
 * pgBackRest (lib/pitr/expire-run.ts). Answers its task token with what it kept and removed.
 *
 * The source's tier comes from the task definition (LIFEBOAT_SOURCES_JSON, the logical pruner's
 * form), never from the execution's input; the repository is the source's own (`pitr/<source>/`).
 * Credentials and pgBackRest's endpoint: worker/pgbackrest-env.ts.
 *
 * Exit codes as worker/main.ts: 0 done (or nothing to do), 1 failed, 2 invalid environment.
 * Safe to retry: a second expiry finds what the first removed gone and decides the rest again.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { createS3Client } from '../lib/aws/s3-client';
import { applyPitrRetention, type PitrExpireResult } from '../lib/pitr/expire-run';
import { pgBackRest } from '../lib/pitr/pgbackrest';
import { pitrPrefix } from '../lib/pitr/setup';
import { parsePruneSources, type PruneSourceSpec } from '../lib/retention/prune';
import { PGBACKREST_ENV, pgbackrestEndpointFromEnv, repositoryAsTaskRole, scratchFromEnv, type PgBackRestEndpoint } from './pgbackrest-env';
import { EnvReader } from './env-reader';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

export const PITR_EXPIRE_ENV = {
  bucket: 'LIFEBOAT_BUCKET',
  /** The PITR sources and their tiers: `[{ name, tier: { retentionSeconds, scheduleSeconds } }]`, as the pruner's. */
  sources: 'LIFEBOAT_SOURCES_JSON',
  source: 'LIFEBOAT_SOURCE',
  stanza: 'LIFEBOAT_PITR_STANZA',
  /** "true" to decide and log only. @default "false" */
  dryRun: 'LIFEBOAT_DRY_RUN',
  taskToken: 'LIFEBOAT_TASK_TOKEN',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
  /** pgBackRest's endpoint and the scratch directory: worker/pgbackrest-env.ts. */
  scratch: PGBACKREST_ENV.scratch,
} as const;

export interface PitrExpireJob {
  readonly bucket: string;
  readonly source: PruneSourceSpec;
  readonly stanza: string;
  /** The source's repository, absolute as in pgbackrest.conf (`/pitr/<source>`). */
  readonly repoPath: string;
  readonly region: string;
  readonly dryRun: boolean;
  readonly taskToken?: string;
  readonly s3Endpoint?: string;
  readonly pgbackrest: PgBackRestEndpoint;
  readonly scratch: string;
}

/** Reads the job, reporting every missing or invalid variable at once (`InvalidInput`). */
export function pitrExpireJobFromEnv(env: Record<string, string | undefined>): PitrExpireJob {
  const E = PITR_EXPIRE_ENV;
  const read = new EnvReader(env, 'PITR expiry');
  const { problems } = read;
  const required = (name: string) => read.required(name);
  const bucket = required(E.bucket);
  const name = required(E.source);
  const sourcesText = required(E.sources);
  let source: PruneSourceSpec | undefined;
  if (sourcesText) {
    try {
      const sources = parsePruneSources(sourcesText);
      source = sources.find((candidate) => candidate.name === name);
      if (name && !source) problems.push(`${E.source}: "${name}" is not one of the PITR sources in ${E.sources} (${sources.map((s) => s.name).join(', ') || 'none'})`);
    } catch (error) {
      problems.push(`${E.sources}: ${(error as Error).message}`);
    }
  }
  const stanza = required(E.stanza);
  if (stanza && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(stanza)) problems.push(`${E.stanza}: "${stanza}" is not valid (valid: letters, digits, ".", "_", "-")`);
  const region = read.region();
  const dryRunText = env[E.dryRun]?.trim() || 'false';
  if (dryRunText !== 'true' && dryRunText !== 'false') problems.push(`${E.dryRun}: "${dryRunText}" is not valid (valid: true, false)`);
  const pgbackrest = pgbackrestEndpointFromEnv(env, region, problems);
  // Without a source a problem was named above (missing, unknown, or unreadable): done() throws.
  read.done();
  const found = source as PruneSourceSpec;
  return {
    bucket, source: found, stanza, region,
    repoPath: `/${pitrPrefix(found.name).replace(/\/$/, '')}`,
    dryRun: dryRunText === 'true',
    taskToken: env[E.taskToken] || undefined,
    s3Endpoint: env[E.s3Endpoint] || undefined,
    pgbackrest,
    scratch: scratchFromEnv(env),
  };
}

/** What the Expire state's output holds: the counts and the removed sets (the kept ones can be thousands). */
export interface PitrExpireSummary {
  readonly source: string;
  readonly dryRun: boolean;
  readonly applied: boolean;
  readonly kept: number;
  readonly removed: readonly string[];
  readonly archiveFulls: number;
}

export function expireSummary(result: PitrExpireResult): PitrExpireSummary {
  return {
    source: result.source, dryRun: result.dryRun, applied: result.applied,
    kept: result.keep.length, removed: result.expire.sets, archiveFulls: result.expire.archiveFulls,
  };
}

export interface PitrExpireOutcome {
  readonly code: number;
  readonly result?: PitrExpireResult;
  readonly error?: { readonly name: string; readonly message: string };
}

/** Runs the step; never throws: the outcome carries the exit code and the error. */
export async function runPitrExpireJob(job: PitrExpireJob, deps: TaskDeps = {}): Promise<PitrExpireOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const s3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  const secrets: string[] = [];
  log(`PITR expiry of ${job.source.name}${job.dryRun ? ' (dry run)' : ''} in s3://${job.bucket}${job.repoPath}`);
  const work = async () => {
    const repository = await repositoryAsTaskRole(s3, { bucket: job.bucket, region: job.region, path: job.repoPath, endpoint: job.pgbackrest }, secrets);
    // Expiry reads and rewrites the repository only; pg1-path is required by the option set, never read.
    const runner = pgBackRest({
      repository,
      stanza: { name: job.stanza, pgPath: '/var/lib/postgresql/data' },
      workDir: mkdtempSync(join(job.scratch, 'pgbackrest-')),
      onLog: (line) => log(line),
    });
    return applyPitrRetention({ s3, bucket: job.bucket, source: job.source, runner, now: (deps.now ?? (() => new Date()))(), dryRun: job.dryRun, log });
  };
  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work,
    output: expireSummary,
    progress: () => 'expiring',
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    secrets,
    log,
  });
  return { code: outcome.code, result: outcome.result, error: outcome.error };
}

/** The container entrypoint (`node /app/pitr-expire.js`). */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: pitrExpireJobFromEnv,
    what: 'the PITR expiry (the sets it has not expired yet stay)',
    run: (job, signal) => runPitrExpireJob(job, { signal }),
    summary: (outcome) => (outcome.result ? expireSummary(outcome.result) : undefined),
  });
}

exitWithMain(module, main);
