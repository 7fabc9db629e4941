/**
 * The verifier's verdict errors: the names the state machine's Verify state matches
 * (docs/backup-run.md). Each means the run must not count as a backup.
 */
import { VERIFY_ERROR_NAMES } from '../domain/errors';

export { VERIFY_ERROR_NAMES };

export type VerifyErrorName = (typeof VERIFY_ERROR_NAMES)[number];

/**
 * When several checks fail, the verdict names the most basic failure: a wrong size explains a
 * wrong checksum, which explains a corrupt archive, which explains a wrong table set.
 */
export const VERIFY_ERROR_PRIORITY: readonly VerifyErrorName[] = [
  'InvalidManifest',
  'VersionMismatch',
  'ArtifactMissing',
  'WalGap',
  'SizeMismatch',
  'ChecksumMismatch',
  'ArchiveCorrupt',
  'IncompleteDump',
  'TableSetMismatch',
  'SuspiciousSize',
];

export function verifyError(name: VerifyErrorName, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

export function isVerifyErrorName(name: string): name is VerifyErrorName {
  return (VERIFY_ERROR_NAMES as readonly string[]).includes(name);
}
