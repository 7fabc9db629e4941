/**
 * The verdict on a pgBackRest backup set, as the PITR run's Verify step will give it: the
 * repository read by pgBackRest itself (`pgbackrest verify`: every file of every set and every
 * archived segment against its checksum), and Lifeboat's own check, from the bucket's listing,
 * that the archive holds every WAL segment from the set's start to its stop — without them the
 * set cannot be restored at all (`WalGap`, naming the first missing segments).
 *
 * Like the logical verifier it writes nothing and throws only when it cannot judge (S3 or the
 * repository unreachable).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { VerifyErrorName } from '../verify/errors';
import type { BackupSet, PgBackRest } from './pgbackrest';
import { archivePrefix, listArchivedSegments } from './archive-state';
import { walContinuity } from './wal';

/** The verifier's names (lib/domain/errors.ts) a set's verdict uses. */
export type SetFindingName = Extract<VerifyErrorName, 'WalGap' | 'ArchiveCorrupt' | 'VersionMismatch'>;

export interface SetFinding {
  readonly name: SetFindingName;
  readonly message: string;
}

export interface SetVerdict {
  readonly verdict: 'ok' | 'failed';
  readonly set: string;
  /** The WAL range the set needs, and how many of its segments the archive holds. */
  readonly wal: { readonly from: string; readonly to: string; readonly expected: number; readonly missing: readonly string[]; readonly missingCount: number };
  /** `pgbackrest verify`'s own account. */
  readonly report: string;
  readonly findings: readonly SetFinding[];
}

export interface VerifySetOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** The repository's path in the bucket, as in pgbackrest.conf's repo1-path (`/pitr/orders`). */
  readonly repoPath: string;
  readonly stanza: string;
  readonly runner: PgBackRest;
  /** The set to judge (from `runner.info()`). */
  readonly set: BackupSet;
  /**
   * The pgBackRest Lifeboat's images run (lib/domain/versions.ts PGBACKREST_VERSION): a set
   * written by another one fails `VersionMismatch`, since the host and the images must agree
   * (an older pgBackRest may not read a newer one's repository).
   * @default - not checked
   */
  readonly expectedVersion?: string;
  readonly signal?: AbortSignal;
}

export async function verifySet(opts: VerifySetOptions): Promise<SetVerdict> {
  const { set } = opts;
  const prefix = archivePrefix(opts);
  const archived = (await listArchivedSegments(opts)).map((segment) => segment.name);
  const findings: SetFinding[] = [];
  if (set.walStart === '' || set.walStop === '') {
    findings.push({ name: 'WalGap', message: `set ${set.label} records no WAL range (pgBackRest did not complete it): it cannot be restored` });
  }
  const continuity = findings.length > 0
    ? { complete: true, expected: 0, missing: [], missingCount: 0 }
    : walContinuity(archived, set.walStart, set.walStop);
  if (!continuity.complete) {
    findings.push({
      name: 'WalGap',
      message: `set ${set.label} needs WAL ${set.walStart} to ${set.walStop} (${continuity.expected} segments); ` +
        `${continuity.missingCount} missing from s3://${opts.bucket}/${prefix}: ${continuity.missing.join(', ')}` +
        `${continuity.missingCount > continuity.missing.length ? ', …' : ''}; the set cannot be restored`,
    });
  }
  if (opts.expectedVersion !== undefined && set.writtenBy !== opts.expectedVersion) {
    findings.push({
      name: 'VersionMismatch',
      message: `set ${set.label} was written by pgBackRest ${set.writtenBy ?? '(unknown)'}, Lifeboat's images run ${opts.expectedVersion}: ` +
        `install pgBackRest ${opts.expectedVersion} on the host (lifeboat pitr setup prints the line)`,
    });
  }
  const { ok, report } = await opts.runner.verify();
  if (!ok) {
    findings.push({ name: 'ArchiveCorrupt', message: `pgbackrest verify found the repository damaged: ${verifyProblems(report).join('; ') || report.slice(-500)}` });
  }
  return {
    verdict: findings.length === 0 ? 'ok' : 'failed',
    set: set.label,
    wal: { from: set.walStart, to: set.walStop, expected: continuity.expected, missing: continuity.missing, missingCount: continuity.missingCount },
    report,
    findings,
  };
}

/**
 * What `pgbackrest verify` reported wrong, once each: the files it named (`invalid checksum
 * '<set>/<file>'`), and each invalid set or WAL summary with its counts.
 */
export function verifyProblems(report: string): string[] {
  const found = new Set<string>();
  for (const match of report.matchAll(/(invalid checksum|invalid size|missing) '([^']+)'/g)) found.add(`${match[1]} ${match[2]}`);
  const lines = report.split('\n').map((line) => line.replace(/^.*?INFO:\s*/, '').trim());
  lines.forEach((line, index) => {
    const set = /^backup: (\S+), status: invalid/.exec(line);
    const counts = lines[index + 1] ?? '';
    if (set) found.add(`set ${set[1]} invalid (${counts})`);
    const wal = /^archiveId: (\S+), total WAL checked: (\d+), total valid WAL: (\d+)/.exec(line);
    if (wal && wal[2] !== wal[3]) found.add(`WAL of ${wal[1]}: ${wal[3]} of ${wal[2]} valid (${counts})`);
  });
  return [...found];
}
