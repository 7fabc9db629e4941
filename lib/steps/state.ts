/**
 * The backup-run state as the Lambda steps see it (docs/backup-run.md), the errors they
 * raise, and reading their input. Input comes from the state machine: it is checked, and a
 * malformed one fails as `InvalidInput` naming the field, not as a TypeError deep inside.
 */
import { z } from 'zod';
import { isRunId } from '../domain/run-id';
import { verificationSchema, type Verification } from '../domain/verification';

/** Error names the steps raise, besides lib/domain/errors' ERROR_NAMES. */
export type StepErrorName = 'NotVerified' | 'AlreadyCommitted' | 'OffsiteMissing' | 'EventNotDelivered' | 'InvalidInput' | 'InvalidManifest';

export function stepError(name: StepErrorName, message: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  error.name = name;
  return error;
}

const runId = z.string().refine(isRunId, { error: 'expected a run id such as 20261126T030000Z' });

/** `$.dump`: the manifest summary the worker returns with SendTaskSuccess (worker/main.ts manifestSummary). */
export const dumpSummarySchema = z.looseObject({
  source: z.string().min(1),
  runId,
  engine: z.string().optional(),
  bucket: z.string().min(1),
  manifestKey: z.string().min(1),
  /** The version of manifest.json the worker wrote (versioned buckets): what Verify reads. */
  manifestVersionId: z.string().min(1).optional(),
  artifacts: z.array(z.looseObject({
    key: z.string().min(1), bytes: z.number().int().nonnegative(), sha256: z.string(), versionId: z.string().min(1).optional(),
  })).min(1),
  bytes: z.number().nonnegative(),
  tables: z.number().optional(),
  rows: z.number().optional(),
  durationSeconds: z.number().nonnegative(),
});
export type DumpSummary = z.infer<typeof dumpSummarySchema>;

/** `$.offsite`: the AwaitOffsite poll state (seeded `{ attempts: 0, present: false }` by the state machine). */
export const offsitePollSchema = z.looseObject({
  present: z.boolean().optional(),
  attempts: z.number().int().nonnegative().optional(),
  lagSeconds: z.number().nonnegative().optional(),
});
export type OffsitePoll = z.infer<typeof offsitePollSchema>;

/** Parses a step's input; `InvalidInput` names every field that is wrong. */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown, step: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  throw stepError('InvalidInput', `${step}: invalid input (${problems.join('; ')})`);
}

/**
 * The verification document in the verifier's result (`$.verification`). The verifier returns
 * the verification.json it proposes; a result that carries it under `verification` is accepted
 * too. Undefined with the reason when there is no valid document.
 */
export function verificationFromResult(result: unknown): { verification?: Verification; problem?: string } {
  const candidate = (result as { verdict?: unknown } | undefined)?.verdict === undefined
    ? (result as { verification?: unknown } | undefined)?.verification
    : result;
  if (candidate === undefined || candidate === null) return { problem: 'the verifier returned no verification' };
  const parsed = verificationSchema.safeParse(candidate);
  if (parsed.success) return { verification: parsed.data };
  const problems = parsed.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  return { problem: `the verifier's result is not a valid verification (${problems.join('; ')})` };
}

/** HTTP status of an S3 SDK error, if any. */
export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export function isNotFound(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(error) === 404;
}

export function isPreconditionFailed(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'PreconditionFailed' || httpStatus(error) === 412;
}

/**
 * The Object Lock parameters that give a run's JSON document (verification.json, offsite.json)
 * the lock of the run's other objects, as the manifest records it. None when the manifest has
 * none (an unlocked bucket): the bucket's default retention, if any, applies.
 */
export function objectLockParams(manifest: { readonly objectLock?: { readonly mode: 'GOVERNANCE' | 'COMPLIANCE'; readonly retainUntil: string } }):
  { ObjectLockMode?: 'GOVERNANCE' | 'COMPLIANCE'; ObjectLockRetainUntilDate?: Date } {
  if (!manifest.objectLock) return {};
  const until = new Date(manifest.objectLock.retainUntil);
  // A lock date already past (a late retry of an old run) is refused by S3: the default retention applies.
  if (until.getTime() <= Date.now()) return {};
  return { ObjectLockMode: manifest.objectLock.mode, ObjectLockRetainUntilDate: until };
}
