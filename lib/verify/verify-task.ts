/**
 * The Verify step as the state machine sees it, shared by the Lambda and the Fargate
 * verifier: input `{ source, runId, bucket? }` (from `$.dump`), output the `VerifyResult` at
 * `$.verification`, failures thrown with the names of docs/backup-run.md (lib/verify/errors).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { listRuns } from '../catalog/catalog';
import { lifeboatError } from '../domain/errors';
import { isRunId } from '../domain/run-id';
import type { Verification } from '../domain/verification';
import { DEFAULT_SUSPICIOUS_SHRINK, TRAILING_RUNS } from './size';
import { verifyRun, type VerifyRunOptions } from './verify-run';

export interface VerifyTaskInput {
  readonly source: string;
  readonly runId: string;
  /** @default - the verifier's configured bucket */
  readonly bucket?: string;
  /** The version of manifest.json the worker wrote. @default - the current version */
  readonly manifestVersionId?: string;
}

/**
 * `$.verification`: the verification.json the verifier proposes, verdict ok or failed. Commit
 * checks it against manifest.json and writes it as is (and, for a failed verdict, fails the
 * run with its error). It carries the run (`source`, `runId`), the manifest version judged,
 * `durationMs`, and every object read with its `key`, version, `bytes`, `sha256` and checks;
 * globals.sql is the entry whose key ends in /globals.sql.
 */
export type VerifyResult = Verification;

/** The verifier's configuration from the environment (Lambda and Fargate). */
export interface VerifyConfig {
  readonly bucket: string;
  readonly suspiciousShrink: number;
}

export const VERIFY_CONFIG_ENV = { bucket: 'LIFEBOAT_BUCKET', suspiciousShrink: 'LIFEBOAT_SUSPICIOUS_SHRINK' } as const;

/**
 * Reads the configuration once (at module load in the Lambda); throws `InvalidConfiguration`
 * naming the variable. LIFEBOAT_S3_ENDPOINT is read by createS3Client.
 */
export function verifyConfigFromEnv(env: NodeJS.ProcessEnv): VerifyConfig {
  const problems: string[] = [];
  const bucket = env[VERIFY_CONFIG_ENV.bucket]?.trim() ?? '';
  if (!bucket) problems.push(`${VERIFY_CONFIG_ENV.bucket}: required (the primary bucket)`);
  const shrinkText = env[VERIFY_CONFIG_ENV.suspiciousShrink]?.trim();
  const suspiciousShrink = shrinkText ? Number(shrinkText) : DEFAULT_SUSPICIOUS_SHRINK;
  if (!(suspiciousShrink >= 0 && suspiciousShrink <= 1)) {
    problems.push(`${VERIFY_CONFIG_ENV.suspiciousShrink}: "${shrinkText}" is not valid (valid: a fraction from 0 to 1, default ${DEFAULT_SUSPICIOUS_SHRINK})`);
  }
  if (problems.length > 0) {
    const error = new Error(`invalid verifier environment:\n  - ${problems.join('\n  - ')}`);
    error.name = 'InvalidConfiguration';
    throw error;
  }
  return { bucket, suspiciousShrink };
}

/** Checks the state's input; throws `InvalidInput` naming every problem. */
export function parseVerifyInput(event: unknown): VerifyTaskInput {
  const input = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  const problems: string[] = [];
  const { source, runId, bucket, manifestVersionId } = input;
  if (typeof source !== 'string' || !/^[a-z0-9-]+$/.test(source)) {
    problems.push(`source: ${JSON.stringify(source)} is not valid (valid: a-z, 0-9 and "-")`);
  }
  if (typeof runId !== 'string' || !isRunId(runId)) {
    problems.push(`runId: ${JSON.stringify(runId)} is not valid (valid: a UTC slot time such as 20261126T030000Z)`);
  }
  if (bucket !== undefined && (typeof bucket !== 'string' || bucket === '')) {
    problems.push(`bucket: ${JSON.stringify(bucket)} is not valid (valid: a bucket name, or absent)`);
  }
  if (manifestVersionId !== undefined && (typeof manifestVersionId !== 'string' || manifestVersionId === '')) {
    problems.push(`manifestVersionId: ${JSON.stringify(manifestVersionId)} is not valid (valid: an S3 version id, or absent)`);
  }
  if (problems.length > 0) throw lifeboatError('InvalidInput', `invalid verify input:\n  - ${problems.join('\n  - ')}`);
  return {
    source: source as string, runId: runId as string,
    ...(typeof bucket === 'string' ? { bucket } : {}),
    ...(typeof manifestVersionId === 'string' ? { manifestVersionId } : {}),
  };
}

/**
 * Total artifact bytes of the newest verified runs before `runId`, newest first (at most
 * TRAILING_RUNS): the suspicious-size rule's history. Reads the catalog; failed and
 * unverified runs never count.
 */
export async function previousVerifiedSizes(s3: S3Client, bucket: string, source: string, runId: string): Promise<number[]> {
  // Older runs than this one only: re-verifying an old run compares it with its own past.
  // A few failed runs in between still leave enough verified ones in the window read.
  const runs = await listRuns(s3, bucket, source, { newestFirst: true, limit: TRAILING_RUNS * 3 + 1 });
  return runs
    .filter((run) => run.runId < runId && run.status === 'verified' && run.manifest !== undefined)
    .slice(0, TRAILING_RUNS)
    .map((run) => (run.manifest?.artifacts ?? []).reduce((sum, artifact) => sum + artifact.bytes, 0));
}

export interface VerifyTaskDeps extends Omit<VerifyRunOptions, 'bucket' | 'source' | 'runId' | 'previousVerifiedSizes'> {
  /** The bucket when the input names none. */
  readonly bucket: string;
  /** @default - previousVerifiedSizes from the catalog */
  readonly previousSizes?: (s3: S3Client, bucket: string, source: string, runId: string) => Promise<number[]>;
}

export async function runVerifyTask(input: VerifyTaskInput, deps: VerifyTaskDeps): Promise<VerifyResult> {
  const bucket = input.bucket ?? deps.bucket;
  const previous = await (deps.previousSizes ?? previousVerifiedSizes)(deps.s3, bucket, input.source, input.runId);
  return verifyRun({
    ...deps, bucket, source: input.source, runId: input.runId, manifestVersionId: input.manifestVersionId, previousVerifiedSizes: previous,
  });
}
