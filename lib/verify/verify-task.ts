/**
 * The Verify step as the state machine sees it, shared by the Lambda and the Fargate
 * verifier: input `{ source, runId, bucket? }` (from `$.dump`), output the `VerifyResult` at
 * `$.verification`, failures thrown with the names of docs/backup-run.md.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { listRuns } from '../catalog/catalog';
import { lifeboatError } from '../domain/errors';
import { globalsKey } from '../domain/layout';
import { isRunId } from '../domain/run-id';
import type { Verification } from '../domain/verification';
import { TRAILING_RUNS } from './size';
import { verifyRun, type VerifyRunOptions } from './verify-run';

export interface VerifyTaskInput {
  readonly source: string;
  readonly runId: string;
  /** @default - the verifier's configured bucket */
  readonly bucket?: string;
}

/** `$.verification`: what Commit reads. Only ever an ok verdict; a failed one is an error. */
export interface VerifyResult {
  readonly verdict: 'ok';
  readonly source: string;
  readonly runId: string;
  /** Sum of the run's artifacts (globals.sql not included), as the manifest summary's `bytes`. */
  readonly bytes: number;
  readonly durationMs: number;
  /** The run's artifacts (globals.sql not included) as read: key and SHA-256. */
  readonly artifacts: readonly { readonly key: string; readonly sha256: string }[];
  /** The whole verdict, checks included, for the Commit step to write as verification.json. */
  readonly verification: Verification;
}

/** Checks the state's input; throws `InvalidInput` naming every problem. */
export function parseVerifyInput(event: unknown): VerifyTaskInput {
  const input = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  const problems: string[] = [];
  const { source, runId, bucket } = input;
  if (typeof source !== 'string' || !/^[a-z0-9-]+$/.test(source)) {
    problems.push(`source: ${JSON.stringify(source)} is not valid (valid: a-z, 0-9 and "-")`);
  }
  if (typeof runId !== 'string' || !isRunId(runId)) {
    problems.push(`runId: ${JSON.stringify(runId)} is not valid (valid: a UTC slot time such as 20261126T030000Z)`);
  }
  if (bucket !== undefined && (typeof bucket !== 'string' || bucket === '')) {
    problems.push(`bucket: ${JSON.stringify(bucket)} is not valid (valid: a bucket name, or absent)`);
  }
  if (problems.length > 0) throw lifeboatError('InvalidInput', `invalid verify input:\n  - ${problems.join('\n  - ')}`);
  return { source: source as string, runId: runId as string, ...(typeof bucket === 'string' ? { bucket } : {}) };
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
  const verification = await verifyRun({ ...deps, bucket, source: input.source, runId: input.runId, previousVerifiedSizes: previous });
  return verifyResult(verification);
}

export function verifyResult(verification: Verification): VerifyResult {
  const globals = globalsKey(verification.source, verification.runId);
  const artifacts = verification.artifacts.filter((artifact) => artifact.key !== globals);
  return {
    verdict: 'ok',
    source: verification.source,
    runId: verification.runId,
    bytes: artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
    durationMs: verification.durationMs,
    artifacts: artifacts.map(({ key, sha256 }) => ({ key, sha256 })),
    verification,
  };
}
