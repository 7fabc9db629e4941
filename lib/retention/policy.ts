/**
 * Retention as a pure function: (runs, policy, now) → (keep, remove), one reason per run.
 * Modelled on restic's snapshot policy (keep-within, keep-last, keep-daily/weekly/monthly/
 * yearly), with the Lifeboat safety rules on top (DESIGN.md, "Nothing is ever silently lost"):
 *
 * - the newest `minVerified` verified runs are kept whatever the rest of the policy says;
 * - failed and unverified runs never count toward a keep count (they fill no `keepLast` slot
 *   and no calendar bucket) and are removed only once older than `failedGraceSeconds`, so a
 *   run still being dumped or verified is never touched;
 * - `keepWithinSeconds` keeps every verified run not older than it; for failed and unverified
 *   runs the grace period alone decides (a failed run is not a backup worth 90 days);
 * - every run gets exactly one decision; nothing is both kept and removed.
 *
 * Calendar buckets are UTC, from the run id (the slot time), never from S3 timestamps.
 */
import type { RunStatus } from '../catalog/catalog';
import type { Tier } from '../config/types';
import { runIdToDate } from '../domain/run-id';

export interface RetentionPolicy {
  /** Verified runs whose slot is at most this many seconds before `now` are kept. */
  readonly keepWithinSeconds: number;
  /** The newest N verified runs are kept. */
  readonly keepLast: number;
  /** The newest verified run of each of the newest N UTC days that have one. */
  readonly daily: number;
  /** …of each of the newest N ISO weeks (UTC) that have one. */
  readonly weekly: number;
  /** …of each of the newest N UTC calendar months that have one. */
  readonly monthly: number;
  /** …of each of the newest N UTC calendar years that have one. */
  readonly yearly: number;
  /** The newest N verified runs are never removed, whatever the rest of the policy says. */
  readonly minVerified: number;
  /** Failed and unverified runs are removed once their slot is older than this. */
  readonly failedGraceSeconds: number;
}

export interface RunRef {
  readonly runId: string;
  readonly status: RunStatus;
  /**
   * Runs of the same source this one needs to be restored (its manifest's `dependsOn`: an
   * incremental's base, a differential's full). While this run is kept, they are too.
   * @default - none: the run restores on its own (every logical dump does)
   */
  readonly dependsOn?: readonly string[];
}

export interface Decision {
  readonly runId: string;
  readonly status: RunStatus;
  /** Every rule that applied, in the order the rules are listed above; never empty. */
  readonly reasons: readonly string[];
  /** `reasons` joined with "; ". */
  readonly reason: string;
}

export interface RetentionDecision {
  /** Newest first. */
  readonly keep: Decision[];
  /** Newest first. */
  readonly remove: Decision[];
}

export const DEFAULT_MIN_VERIFIED = 3;
export const DEFAULT_FAILED_GRACE_SECONDS = 2 * 86_400;

const DAY = 86_400;
const WEEK = 7 * DAY;
const MONTH = 30 * DAY;
const YEAR = 365 * DAY;

/**
 * The default policy of a tier, derived from its retention and schedule:
 *
 * | field             | derivation                                                         |
 * |-------------------|--------------------------------------------------------------------|
 * | keepWithinSeconds | the retention (also the Object Lock period)                        |
 * | keepLast          | one day of runs, ⌈1 day / schedule⌉, at least `minVerified`         |
 * | daily             | ⌈retention / 1 day⌉ when the schedule is at most daily, else 0      |
 * | weekly            | ⌈retention / 7 days⌉ when the schedule is at most weekly, else 0    |
 * | monthly           | ⌈retention / 30 days⌉ when the retention is at least 30 days, else 0|
 * | yearly            | ⌊retention / 365 days⌋                                              |
 * | minVerified       | 3                                                                  |
 * | failedGraceSeconds| 2 days                                                             |
 *
 * While backups succeed, keep-within alone decides (the calendar counts cover the same span).
 * They matter when backups stop: then the last day of runs, and one run per day, week, month
 * and year as far as the retention reaches, outlive the keep-within window.
 */
export function policyForTier(tier: Pick<Tier, 'retentionSeconds' | 'scheduleSeconds'>): RetentionPolicy {
  const retention = tier.retentionSeconds;
  const schedule = tier.scheduleSeconds;
  if (!(retention > 0) || !(schedule > 0)) {
    throw new RangeError(`retention policy: retention and schedule must be positive (got ${retention}s and ${schedule}s)`);
  }
  return {
    keepWithinSeconds: retention,
    keepLast: Math.max(DEFAULT_MIN_VERIFIED, Math.ceil(DAY / schedule)),
    daily: schedule <= DAY ? Math.ceil(retention / DAY) : 0,
    weekly: schedule <= WEEK ? Math.ceil(retention / WEEK) : 0,
    monthly: retention >= MONTH ? Math.ceil(retention / MONTH) : 0,
    yearly: Math.floor(retention / YEAR),
    minVerified: DEFAULT_MIN_VERIFIED,
    failedGraceSeconds: DEFAULT_FAILED_GRACE_SECONDS,
  };
}

/** A duration in words for reasons: 90d, 36h, 15m, 42s. */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s';
  if (seconds % DAY === 0) return `${seconds / DAY}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** UTC calendar buckets of a slot time. */
export function dayBucket(date: Date): string {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

/** ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday), UTC. */
export function weekBucket(date: Date): string {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday); // the Thursday of this week decides its year
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${pad(week)}`;
}

export function monthBucket(date: Date): string {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}`;
}

export function yearBucket(date: Date): string {
  return String(date.getUTCFullYear());
}

interface CalendarRule {
  readonly name: 'daily' | 'weekly' | 'monthly' | 'yearly';
  readonly bucket: (date: Date) => string;
}

const CALENDAR_RULES: readonly CalendarRule[] = [
  { name: 'daily', bucket: dayBucket },
  { name: 'weekly', bucket: weekBucket },
  { name: 'monthly', bucket: monthBucket },
  { name: 'yearly', bucket: yearBucket },
];

export function validatePolicy(policy: RetentionPolicy): void {
  const problems = (Object.entries(policy) as [string, number][])
    .filter(([, value]) => !Number.isFinite(value) || value < 0)
    .map(([field, value]) => `${field}: expected a number of at least 0, got ${value}`);
  if (problems.length > 0) throw new RangeError(`retention policy: ${problems.join('; ')}`);
}

/**
 * Decides every run. `runs` may come in any order; duplicates of a run id are decided once.
 * A run id that is not a slot time (it cannot be aged) is kept, and says so.
 */
export function decide(runs: readonly RunRef[], policy: RetentionPolicy, now: Date): RetentionDecision {
  validatePolicy(policy);
  const byId = new Map<string, RunRef>();
  for (const run of runs) if (!byId.has(run.runId)) byId.set(run.runId, run);
  const newestFirst = [...byId.values()].sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
  const nowMs = now.getTime();
  const within = formatDuration(policy.keepWithinSeconds);
  const grace = formatDuration(policy.failedGraceSeconds);

  const keep: Decision[] = [];
  const remove: Decision[] = [];
  const decided = (list: Decision[], run: RunRef, reasons: string[]) =>
    list.push({ runId: run.runId, status: run.status, reasons, reason: reasons.join('; ') });

  let verifiedSeen = 0;
  const remaining = { daily: policy.daily, weekly: policy.weekly, monthly: policy.monthly, yearly: policy.yearly };
  const lastBucket: Record<CalendarRule['name'], string | undefined> = { daily: undefined, weekly: undefined, monthly: undefined, yearly: undefined };

  for (const run of newestFirst) {
    const slot = runIdToDate(run.runId);
    if (!slot) {
      decided(keep, run, ['not a run id, so its age is unknown: kept']);
      continue;
    }
    const ageSeconds = (nowMs - slot.getTime()) / 1000;

    if (run.status !== 'verified') {
      if (ageSeconds > policy.failedGraceSeconds) decided(remove, run, [`${run.status}, past the ${grace} grace`]);
      else decided(keep, run, [`${run.status} but younger than the ${grace} grace`]);
      continue;
    }

    // Verified runs only from here: only they fill keep counts and calendar buckets.
    const index = verifiedSeen++;
    const reasons: string[] = [];
    if (index < policy.minVerified) reasons.push(`newest verified (${index + 1} of ${policy.minVerified})`);
    if (ageSeconds <= policy.keepWithinSeconds) reasons.push(`within ${within}`);
    if (index < policy.keepLast) reasons.push(`last ${policy.keepLast} (${index + 1} of ${policy.keepLast})`);
    for (const rule of CALENDAR_RULES) {
      const bucket = rule.bucket(slot);
      // Runs arrive newest first, so the first run seen in a bucket is that bucket's newest.
      if (remaining[rule.name] > 0 && bucket !== lastBucket[rule.name]) {
        lastBucket[rule.name] = bucket;
        remaining[rule.name] -= 1;
        reasons.push(`${rule.name} ${bucket}`);
      }
    }
    if (reasons.length > 0) decided(keep, run, reasons);
    else decided(remove, run, [`verified, older than ${within} and outside every keep count`]);
  }
  return keepDependencies({ keep, remove }, byId);
}

/**
 * A kept run keeps every run it depends on, and theirs in turn: removing a base would leave a
 * kept incremental that cannot be restored. A dependency that is not among the runs (already
 * gone) cannot be kept; the verifier and the restore say what it lacks.
 */
function keepDependencies(decision: RetentionDecision, runs: ReadonlyMap<string, RunRef>): RetentionDecision {
  const removed = new Map(decision.remove.map((entry) => [entry.runId, entry]));
  const needed = new Map<string, string[]>();
  const pending = decision.keep.map((entry) => entry.runId);
  while (pending.length > 0) {
    const runId = pending.pop() as string;
    for (const base of runs.get(runId)?.dependsOn ?? []) {
      if (!removed.has(base) && !needed.has(base)) continue;
      const dependents = needed.get(base) ?? [];
      if (!dependents.includes(runId)) dependents.push(runId);
      if (!needed.has(base)) pending.push(base);
      needed.set(base, dependents);
    }
  }
  if (needed.size === 0) return decision;
  const newestFirst = (a: Decision, b: Decision) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0);
  const kept = [...needed].map(([runId, dependents]): Decision => {
    const { status } = removed.get(runId) as Decision;
    const reasons = [`needed by kept run ${dependents.sort().join(', ')}`];
    return { runId, status, reasons, reason: reasons.join('; ') };
  });
  return {
    keep: [...decision.keep, ...kept].sort(newestFirst),
    remove: decision.remove.filter((entry) => !needed.has(entry.runId)),
  };
}
