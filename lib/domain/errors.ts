/**
 * Errors the state machine matches on. A failure is a thrown Error whose `name` is one of
 * these; the Step Functions Retry/Catch blocks and SendTaskFailure use the same names.
 */
/** The verifier's verdicts (lib/verify): each means the run must not count as a backup. */
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
  /** A point-in-time set: the archive lacks a WAL segment the set needs (lib/pitr/wal.ts). */
  'WalGap',
  /** A point-in-time set written by another pgBackRest than the images run. */
  'VersionMismatch',
] as const;

export const ERROR_NAMES = [
  ...VERIFY_ERROR_NAMES,
  'ClientTooOld',
  'ClientNotFound',
  'AuthenticationFailed',
  'SourceUnreachable',
  'DatabaseNotFound',
  'InsufficientPrivileges',
  // TLS to the database (lib/domain/tls.ts): never retried, a certificate or a server setting must change.
  'TlsRequired',
  'TlsVerifyFailed',
  'InvalidDumpOptions',
  'DumpFailed',
  'UploadFailed',
  'AlreadyCommitted',
  'Aborted',
  'DumpTimedOut',
  'InvalidInput',
  // Restore drills (lib/drill): TableSetMismatch above is shared with the verifier.
  'RowCountMismatch', 'ExtensionMissing', 'DrillCheckFailed', 'RtoExceeded', 'NoVerifiedRun', 'RunNotVerified', 'TargetNotEmpty',
  'NoDrillServer', 'TargetUnreachable', 'RestoreFailed',
  // Point-in-time recovery (lib/pitr): pgBackRest failed, or its host or repository cannot be reached.
  'BackupFailed', 'HostUnreachable',
  // Binary-log archiving (lib/binlog, worker/binlog-*.ts): the archive has a hole, the server cannot be archived,
  // a file differs from its archived copy or is damaged, a replay failed.
  'BinlogGap', 'BinlogDisabled', 'BinlogFormatNotRow', 'BinlogRetentionTooShort', 'ArchiveFailed', 'ArchiveConflict', 'BinlogCorrupt', 'ReplayFailed',
] as const;
export type ErrorName = (typeof ERROR_NAMES)[number];

/** Name used for a failure that is none of the above: a bug, or something unforeseen. */
export const UNEXPECTED_ERROR = 'WorkerError';

export function lifeboatError(name: ErrorName, message: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  error.name = name;
  return error;
}

export function errorName(error: unknown): string {
  const name = (error as Error | undefined)?.name;
  return (ERROR_NAMES as readonly string[]).includes(name ?? '') ? (name as string) : UNEXPECTED_ERROR;
}

/**
 * Replaces every occurrence of each secret with "***". Applied to every message that
 * leaves the worker (logs, task failures, CLI errors) as a second line of defence: the
 * first is that secrets only ever travel in child-process environments.
 */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 3) result = result.split(secret).join('***');
  }
  return result;
}
