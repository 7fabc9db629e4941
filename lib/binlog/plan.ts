/**
 * What a tier asks of a MySQL/MariaDB point-in-time source: how often the binary-log archiver
 * runs (a bounded `mariadb-binlog --read-from-remote-server --raw` per run, at most a third of
 * the RPO, so that the newest archived event is never older than the RPO allows), how long the
 * server must keep its binary logs so that a missed run or two loses nothing, and, for a source
 * whose host Lifeboat reaches through SSM, the physical backups (mariadb-backup / xtrabackup):
 * a full weekly, an incremental at the tier's schedule.
 */
import type { Tier } from '../config/types';
import { formatDuration } from '../retention/policy';

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;
const WEEK = 7 * DAY;

/** Below a minute the archiver's task start-up (a Fargate task) is most of each run. */
export const MIN_ARCHIVE_INTERVAL_SECONDS = MINUTE;
/** An idle tier still archives hourly, so a stalled archiver shows in status. */
export const MAX_ARCHIVE_INTERVAL_SECONDS = HOUR;
/** The server's binary-log retention must cover this many archiver intervals (a missed run, a retried one, and one more). */
export const SERVER_RETENTION_INTERVALS = 4;

export type PhysicalBackupType = 'full' | 'incr';

export interface PhysicalBackup {
  readonly type: PhysicalBackupType;
  readonly everySeconds: number;
}

export interface BinlogPlan {
  /** The archiver's cadence: at most a third of the RPO, between a minute and an hour. */
  readonly archiveEverySeconds: number;
  /** The newest archived event may be this old before the RPO alarm fires: the RPO. */
  readonly archiveAgeAlarmSeconds: number;
  /** The server's binlog retention (binlog_expire_logs_seconds / expire_logs_days) must be at least this, or 0 (never expire). */
  readonly minServerRetentionSeconds: number;
  /** The physical backups (sources with `binlog.physical`), fullest first; empty otherwise. */
  readonly physical: readonly PhysicalBackup[];
}

/** The plan of `tier`, or the reason its RPO cannot be kept by archiving binary logs. */
export function binlogPlan(
  tier: Pick<Tier, 'name' | 'rpoSeconds' | 'scheduleSeconds'>,
  physical: boolean,
): { plan?: BinlogPlan; problem?: string } {
  const third = Math.floor(tier.rpoSeconds / 3);
  if (third < MIN_ARCHIVE_INTERVAL_SECONDS) {
    return {
      problem: `tier ${tier.name}: an RPO of ${formatDuration(tier.rpoSeconds)} needs the binary-log archiver every ${third}s (a third of it), ` +
        `below its minimum of ${MIN_ARCHIVE_INTERVAL_SECONDS}s (each run is a task start); ` +
        `valid: an RPO of at least ${formatDuration(3 * MIN_ARCHIVE_INTERVAL_SECONDS)} for method 'pitr' (a shorter one needs replication, not backups)`,
    };
  }
  const archiveEverySeconds = Math.min(third, MAX_ARCHIVE_INTERVAL_SECONDS);
  const schedule = tier.scheduleSeconds;
  const backups: PhysicalBackup[] = physical ? [{ type: 'full', everySeconds: Math.max(WEEK, schedule) }] : [];
  if (physical && schedule < WEEK) backups.push({ type: 'incr', everySeconds: schedule });
  return {
    plan: {
      archiveEverySeconds,
      archiveAgeAlarmSeconds: tier.rpoSeconds,
      minServerRetentionSeconds: SERVER_RETENTION_INTERVALS * archiveEverySeconds,
      physical: backups,
    },
  };
}

/** One line per physical backup type and the archive, for `lifeboat plan`. */
export function describeBinlogPlan(plan: BinlogPlan, client: string): string[] {
  const names: Record<PhysicalBackupType, string> = { full: 'physical full', incr: 'physical incremental' };
  return [
    ...plan.physical.map((backup) => `${names[backup.type]} backup every ${formatDuration(backup.everySeconds)}`),
    `binary logs archived every ${formatDuration(plan.archiveEverySeconds)} (${client} --read-from-remote-server --raw); ` +
      `alarm when the newest archived event is older than ${formatDuration(plan.archiveAgeAlarmSeconds)}; ` +
      `the server must keep its binary logs at least ${formatDuration(plan.minServerRetentionSeconds)}`,
  ];
}
