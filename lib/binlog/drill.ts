/**
 * The judgements of a MySQL/MariaDB point-in-time drill (issue 15), as pure functions: which
 * point a drill restores to, and whether the manifest's exact row counts can be compared there.
 * lib/binlog/drill-run.ts restores and checks; lib/pitr/drill-run.ts is its PostgreSQL twin.
 *
 * The targets alternate: the end of the archive (`latest`), then a random whole second of the
 * newest restorable window's last day. A whole second, because `--stop-datetime` has a second's
 * resolution (lib/binlog/replay.ts); after the second the window starts in, the base dump's
 * finish (never before it: the plan refuses such a target; nor in its second, see countsComparable);
 * never in the archive's last second, whose events may still be arriving.
 */
import type { RestoreWindow } from './restore-plan';

/** The report's engine of a binary-log PITR drill (`drills/<source>/<drillId>/report.json`). */
export const BINLOG_DRILL_ENGINE = 'binlog';

const DAY_MS = 86_400_000;
const SECOND_MS = 1000;

export type BinlogDrillTarget = Date | 'latest';

/** The report's text for a target. */
export function targetText(target: BinlogDrillTarget): string {
  return target === 'latest' ? 'latest' : target.toISOString();
}

/**
 * The next drill's target: `latest` unless the previous binlog drill went there; then a random
 * whole second of the newest window's last day (from its start when it is shorter than a day).
 * `latest` again when that window holds no such second.
 */
export function chooseBinlogDrillTarget(previous: string | undefined, windows: readonly RestoreWindow[], random: () => number): BinlogDrillTarget {
  const window = windows.at(-1);
  if (previous !== 'latest' || !window) return 'latest';
  const from = Math.max(window.from.getTime(), window.to.getTime() - DAY_MS);
  // Whole seconds after the second the window starts in (a target there stops where a target at the base's finish
  // stops: its exact counts would be compared, and writes during the dump would fail them), before its last second.
  const first = Math.ceil(from / SECOND_MS) + 1;
  const last = Math.ceil(window.to.getTime() / SECOND_MS) - 1;
  if (last < first) return 'latest';
  const pick = Math.min(last, first + Math.floor(random() * (last - first + 1)));
  return new Date(pick * SECOND_MS);
}

/**
 * Whether the restored tables must hold exactly the manifest's counts: only for a target in the
 * base dump's own finishing second, up to which the replay applies only what the server wrote
 * while the dump ran (`--stop-datetime` rounds the target up to its second). At any later point
 * the tables hold the writes since, so their counts are reported, not compared.
 */
export function countsComparable(target: BinlogDrillTarget, baseFinishedAt: Date): boolean {
  if (target === 'latest') return false;
  return Math.ceil(target.getTime() / SECOND_MS) === Math.ceil(baseFinishedAt.getTime() / SECOND_MS) && target.getTime() >= baseFinishedAt.getTime();
}

/** What a binlog drill does not check yet, said in its report. */
export const BINLOG_DRILL_NOT_CHECKED = 'marker: the exact PITR marker check (issue 10, pitr.marker) has no MySQL/MariaDB counterpart yet; the target is judged by the table set, the counts and the drill checks only';
