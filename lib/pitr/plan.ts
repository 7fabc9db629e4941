/**
 * What a tier asks of a PostgreSQL point-in-time source (pgBackRest): the backup types and
 * their cadence — the seed's week: a full weekly, a differential daily, an incremental at the
 * tier's schedule — and how often the server must hand a WAL segment to the archive
 * (`archive_timeout`) so that the newest archived change is never older than the RPO allows.
 */
import type { Tier } from '../config/types';
import { formatDuration } from '../retention/policy';

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;
const WEEK = 7 * DAY;

/** Below a minute, every forced switch archives a mostly empty 16 MiB segment (PostgreSQL's own advice). */
export const MIN_ARCHIVE_TIMEOUT_SECONDS = MINUTE;
/** An idle server still archives within the hour, so a stalled archive shows in status. */
export const MAX_ARCHIVE_TIMEOUT_SECONDS = HOUR;

export type PitrBackupType = 'full' | 'diff' | 'incr';

export interface PitrBackup {
  readonly type: PitrBackupType;
  readonly everySeconds: number;
}

export interface PitrPlan {
  /** The backups the tier schedules, fullest first. */
  readonly backups: readonly PitrBackup[];
  /** postgresql.conf's archive_timeout, in seconds: at most a third of the RPO. */
  readonly archiveTimeoutSeconds: number;
  /** The archive's newest segment may be this old before the RPO alarm fires: the RPO. */
  readonly archiveAgeAlarmSeconds: number;
}

/**
 * The plan of `tier`, or the reason it cannot be kept by archiving WAL (an RPO under three
 * minutes: archive_timeout would be under a minute).
 */
export function pitrPlan(tier: Pick<Tier, 'name' | 'rpoSeconds' | 'scheduleSeconds'>): { plan?: PitrPlan; problem?: string } {
  const third = Math.floor(tier.rpoSeconds / 3);
  if (third < MIN_ARCHIVE_TIMEOUT_SECONDS) {
    return {
      problem: `tier ${tier.name}: an RPO of ${formatDuration(tier.rpoSeconds)} needs archive_timeout ≤ ${third}s (a third of it), ` +
        `below PostgreSQL's sensible minimum of ${MIN_ARCHIVE_TIMEOUT_SECONDS}s (each switch archives a whole segment); ` +
        `valid: an RPO of at least ${formatDuration(3 * MIN_ARCHIVE_TIMEOUT_SECONDS)} for method 'pitr' (a shorter one needs synchronous replication, not backups)`,
    };
  }
  const schedule = tier.scheduleSeconds;
  const backups: PitrBackup[] = [{ type: 'full', everySeconds: Math.max(WEEK, schedule) }];
  if (schedule < WEEK) backups.push({ type: 'diff', everySeconds: Math.max(DAY, schedule) });
  if (schedule < DAY) backups.push({ type: 'incr', everySeconds: schedule });
  return {
    plan: {
      backups,
      archiveTimeoutSeconds: Math.min(third, MAX_ARCHIVE_TIMEOUT_SECONDS),
      archiveAgeAlarmSeconds: tier.rpoSeconds,
    },
  };
}

/** One line per backup type and the archive, for `lifeboat plan`. */
export function describePitrPlan(plan: PitrPlan): string[] {
  const names: Record<PitrBackupType, string> = { full: 'full', diff: 'differential', incr: 'incremental' };
  return [
    ...plan.backups.map((backup) => `${names[backup.type]} backup every ${formatDuration(backup.everySeconds)}`),
    `WAL archived continuously, archive_timeout = ${plan.archiveTimeoutSeconds}s; alarm when the newest archived segment is older than ${formatDuration(plan.archiveAgeAlarmSeconds)}`,
  ];
}
