import { z } from 'zod';
import { parseDocument, serializeDocument } from './json-document';
import { isRunId } from './run-id';

/**
 * verification.json: the verifier's verdict on a run. A run counts as a backup (for RPO,
 * retention, restore and drills) only when this file exists and says `ok`.
 */
export const VERIFICATION_SCHEMA_VERSION = 1;

const check = z.strictObject({
  /** e.g. `sha256`, `bytes`, `full-read`, `toc`, `table-set`, `completion-marker`, `size`. */
  name: z.string().min(1),
  ok: z.boolean(),
  /** One line a person understands: what was expected and what was found. */
  detail: z.string(),
});

export const verificationSchema = z.strictObject({
  schemaVersion: z.literal(VERIFICATION_SCHEMA_VERSION),
  lifeboatVersion: z.string().min(1),
  source: z.string().min(1),
  runId: z.string().refine(isRunId, { error: 'expected a run id such as 20261126T030000Z' }),
  verdict: z.enum(['ok', 'failed']),
  verifiedAt: z.iso.datetime(),
  durationMs: z.number().int().nonnegative(),
  /** `lambda` or `fargate`: where the verifier ran (`cli` for `lifeboat verify`, which writes no verdict). */
  verifiedBy: z.string().min(1),
  /**
   * The manifest the verdict is about: its version (versioned buckets) and SHA-256. Readers read
   * that version of manifest.json, and through it the artifact versions it names.
   */
  manifest: z.strictObject({
    key: z.string().min(1),
    versionId: z.string().min(1).optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }).optional(),
  artifacts: z.array(z.strictObject({
    key: z.string().min(1),
    /** The version read (versioned buckets). */
    versionId: z.string().min(1).optional(),
    bytes: z.number().int().nonnegative(),
    sha256: z.string(),
    checks: z.array(check),
    /** PostgreSQL: object counts by TOC entry type (TABLE, TABLE DATA, INDEX, …). */
    objectCounts: z.record(z.string(), z.number().int().nonnegative()).optional(),
  })),
  /** The failure, when verdict is failed: the error name the state machine matched. */
  error: z.strictObject({ name: z.string().min(1), message: z.string() }).optional(),
});

export type Verification = z.infer<typeof verificationSchema>;
export type VerificationCheck = z.infer<typeof check>;

export function parseVerification(text: string, key = 'verification.json'): Verification {
  return parseDocument(verificationSchema, text, key, 'verification', 'InvalidVerification');
}

export function serializeVerification(verification: Verification): string {
  return serializeDocument(verificationSchema, verification);
}
