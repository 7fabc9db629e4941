import { z } from 'zod';
import { parseDocument, serializeDocument } from './json-document';
import { isRunId } from './run-id';

/**
 * offsite.json: the offsite copy of a run is confirmed — every object of the run is present
 * in the offsite bucket with the same checksum. Written to the primary bucket's run prefix
 * (and so replicated too) by the AwaitOffsite step.
 */
export const OFFSITE_SCHEMA_VERSION = 1;

export const offsiteSchema = z.strictObject({
  schemaVersion: z.literal(OFFSITE_SCHEMA_VERSION),
  lifeboatVersion: z.string().min(1),
  source: z.string().min(1),
  runId: z.string().refine(isRunId, { error: 'expected a run id such as 20261126T030000Z' }),
  region: z.string().min(1),
  bucket: z.string().min(1),
  confirmedAt: z.iso.datetime(),
  /** From the manifest's finishedAt to the moment every replica was seen. */
  lagSeconds: z.number().nonnegative(),
  /** Each object confirmed offsite: the replica of that version (CRR keeps version ids). */
  objects: z.array(z.strictObject({ key: z.string().min(1), versionId: z.string().min(1).optional(), bytes: z.number().int().nonnegative(), sha256: z.string() })),
});

export type OffsiteConfirmation = z.infer<typeof offsiteSchema>;

export function parseOffsite(text: string, key = 'offsite.json'): OffsiteConfirmation {
  return parseDocument(offsiteSchema, text, key, 'offsite confirmation', 'InvalidOffsite');
}

export function serializeOffsite(confirmation: OffsiteConfirmation): string {
  return serializeDocument(offsiteSchema, confirmation);
}
