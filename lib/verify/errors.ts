/**
 * The verifier's verdict errors: the names the state machine's Verify state matches
 * (docs/backup-run.md). Each means the run must not count as a backup.
 */
export const VERIFY_ERROR_NAMES = [
  /** The manifest or an artifact it lists is not in the bucket. */
  'ArtifactMissing',
  /** manifest.json is not a valid manifest (or not this run's). */
  'InvalidManifest',
  /** The stored object's byte count differs from the manifest's. */
  'SizeMismatch',
  /** The stored object's SHA-256 differs from the manifest's. */
  'ChecksumMismatch',
  /** The archive cannot be read to its end: pg_restore failed, or decompression failed. */
  'ArchiveCorrupt',
  /** A SQL dump without the dump client's completion marker at its end. */
  'IncompleteDump',
  /** The tables in the artifact are not the tables the manifest lists. */
  'TableSetMismatch',
  /** The run is much smaller than the recent verified runs of the source. */
  'SuspiciousSize',
] as const;

export type VerifyErrorName = (typeof VERIFY_ERROR_NAMES)[number];

/**
 * When several checks fail, the verdict names the most basic failure: a wrong size explains a
 * wrong checksum, which explains a corrupt archive, which explains a wrong table set.
 */
export const VERIFY_ERROR_PRIORITY: readonly VerifyErrorName[] = [
  'InvalidManifest',
  'ArtifactMissing',
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
