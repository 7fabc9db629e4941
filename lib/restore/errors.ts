/**
 * Errors of a restore. Like the backup run's (lib/domain/errors.ts), a failure is a thrown
 * Error whose `name` says what went wrong; restore drills and the CLI match on these names.
 */
export const RESTORE_ERROR_NAMES = [
  /** The run asked for exists but does not count as a backup (failed, unverified or absent). */
  'RunNotVerified',
  /** The source has no verified run (at or before the time asked for). */
  'NoVerifiedRun',
  /** A downloaded artifact's SHA-256 or byte count differs from the manifest's: nothing was restored. */
  'ChecksumMismatch',
  /** An object the manifest names is not in the bucket (at that version): nothing was restored. */
  'ArtifactMissing',
  /** A target database already holds tables and `clean` was not given: nothing was restored. */
  'TargetNotEmpty',
  /** pg_restore, psql or the mysql/mariadb client is not installed. */
  'ClientNotFound',
  /** The target server refused the connection or the credentials. */
  'TargetUnreachable',
  /** The target's TLS mode needs TLS and the server offers none: nothing was sent in plain text. */
  'TlsRequired',
  /** verify-full: the target's certificate does not chain to the CA bundle or does not name the host. */
  'TlsVerifyFailed',
  /** The restore client failed while writing into the target. */
  'RestoreFailed',
  /** Options that cannot work together, or do not fit the run. */
  'InvalidInput',
  /** The signal was aborted. */
  'Aborted',
] as const;
export type RestoreErrorName = (typeof RESTORE_ERROR_NAMES)[number];

export function restoreError(name: RestoreErrorName, message: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  error.name = name;
  return error;
}
