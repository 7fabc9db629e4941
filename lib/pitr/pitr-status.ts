/**
 * A PITR source's state for `lifeboat status`, from the bucket alone: its newest full,
 * differential and incremental sets, the archive's age against the RPO, gaps, and the
 * restorable window.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Source } from '../config/types';
import { formatDuration } from '../retention/policy';
import { summarizeArchive, listArchivedSegments, restorableWindow, type ArchiveState, type RestorableWindow } from './archive-state';
import { readBackupSets } from './backup-info';
import type { BackupSet, BackupType } from './pgbackrest-info';
import { pitrPrefix } from './setup';

export interface PitrStatus {
  readonly newest: Partial<Record<BackupType, BackupSet>>;
  readonly archive: ArchiveState;
  readonly window: RestorableWindow;
  /** What puts the RPO or a restore at risk; empty when nothing does. */
  readonly problems: readonly string[];
}

export async function pitrStatus(s3: S3Client, bucket: string, source: Source, now: Date): Promise<PitrStatus> {
  if (!source.pitr) throw Object.assign(new Error(`source ${source.name} has no method 'pitr'`), { name: 'InvalidInput' });
  const location = { s3, bucket, repoPath: `/${pitrPrefix(source.name)}`, stanza: source.pitr.stanza };
  const [sets, segments] = await Promise.all([readBackupSets(location), listArchivedSegments(location)]);
  const archive = summarizeArchive(segments, now);
  const window = restorableWindow(sets, segments);
  const newest: Partial<Record<BackupType, BackupSet>> = {};
  for (const set of sets) newest[set.type] = set;
  const problems: string[] = [];
  if (sets.length === 0) problems.push('no backup set');
  if (archive.ageSeconds === undefined) problems.push('no archived WAL');
  else if (archive.ageSeconds > source.tier.rpoSeconds) problems.push(`archive older than the RPO (${formatDuration(source.tier.rpoSeconds)})`);
  for (const gap of archive.gaps) problems.push(`archive gap at ${gap.missing[0]} (${gap.missingCount} segment(s))`);
  for (const lost of window.unrestorable) problems.push(`set ${lost.set} cannot be restored (lacks ${lost.missing})`);
  return { newest, archive, window, problems };
}

/** The lines `lifeboat status` prints under its table for a PITR source. */
export function describePitrStatus(source: Source, status: PitrStatus): string[] {
  const set = (type: BackupType, name: string) => {
    const found = status.newest[type];
    return `${name} ${found ? `${found.label} (${found.stopTime.toISOString()})` : '-'}`;
  };
  const { archive, window } = status;
  return [
    `${source.name} (pitr, stanza ${source.pitr?.stanza}): ${set('full', 'last full')}, ${set('diff', 'differential')}, ${set('incr', 'incremental')}`,
    `  archive: ${archive.segments} segment(s), newest ${archive.newest?.name ?? '-'}, age ` +
      `${archive.ageSeconds === undefined ? '-' : formatDuration(Math.round(archive.ageSeconds))} / RPO ${formatDuration(source.tier.rpoSeconds)}`,
    `  restorable window: ${window.earliest?.toISOString() ?? '-'} to ${window.latest?.toISOString() ?? '-'}` +
      (archive.gaps.length > 0 ? `, broken at ${archive.gaps.map((gap) => gap.missing[0]).join(', ')}` : ''),
    `  ${status.problems.length === 0 ? 'OK' : `AT RISK (${status.problems.join('; ')})`}`,
  ];
}
