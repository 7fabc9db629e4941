/**
 * What a restore to a point and a PITR drill both judge on the restored server, once it has
 * started: that recovery has ended (the server promoted), and that it ended where it was asked
 * to — at the target time (the last replayed commit at or before it, and the server's log
 * naming the later commit it stopped before), or at the end of the archive (the last replayed
 * WAL record in the newest segment the plan saw, or after it).
 *
 * Each takes a `psql(sql)` of the restored server (any role can run these queries) and, for a
 * time, the server's log text: so the drill's throwaway server and `lifeboat restore --at`'s own
 * server are judged by the same code.
 */
import { lifeboatError } from '../domain/errors';
import type { PitrTarget } from './restore-plan';
import { DEFAULT_WAL_SEGMENT_BYTES, parseSegment, segmentName } from './wal';

export type Psql = (sql: string) => Promise<string>;

export interface RecoveryCheck {
  readonly name: 'recovery-target';
  readonly ok: boolean;
  readonly detail: string;
  /** The commit time of the last replayed transaction, if any was replayed. */
  readonly lastReplayedCommit?: Date;
  /** The last WAL position replayed (e.g. `0/5000060`). */
  readonly replayedLsn?: string;
}

/** Seconds since a `process.hrtime.bigint()`. */
export const secondsSince = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e9;

/** The last replayed commit, in UTC with microseconds (PostgreSQL prints `.5` for `.500000` otherwise). */
export const LAST_REPLAYED_COMMIT_SQL =
  "SELECT coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')";

const STOPPED = /recovery stopping (before|after) commit of transaction \d+, time ([^\n]+)/;

/** Milliseconds of a timestamp as PostgreSQL logs it (`2026-12-03 18:58:43.445222+00`); NaN when it is not one. */
export function pgTimestamp(text: string): number {
  const match = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d)(?::?(\d\d))?$/.exec(text.trim());
  if (!match) return Number.NaN;
  const fraction = (match[3] ?? '').slice(0, 4);
  return Date.parse(`${match[1]}T${match[2]}${fraction}${match[4]}:${match[5] ?? '00'}`);
}

/** Waits until the server is out of recovery; RestoreFailed after `timeoutSeconds`. */
export async function waitForRecoveryEnd(psql: Psql, timeoutSeconds: number): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  while ((await psql('SELECT pg_is_in_recovery()')).trim() !== 'f') {
    if (Date.now() > deadline) throw lifeboatError('RestoreFailed', `recovery did not end within ${timeoutSeconds}s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Recovery stopped at `time`: the last replayed commit (if any was replayed) is at or before it,
 * and the log says recovery stopped before the first commit after the target. Without that line
 * the archive ended before the target, and the server promoted short of it.
 */
export async function checkRecoveryReachedTime(psql: Psql, log: string, time: Date): Promise<RecoveryCheck> {
  const replayed = (await psql(LAST_REPLAYED_COMMIT_SQL)).trim();
  const replayedLsn = (await psql('SELECT coalesce(pg_last_wal_replay_lsn()::text, \'\')')).trim() || undefined;
  const target = time.toISOString();
  const stopped = STOPPED.exec(log);
  // No commit replayed at all is right when none happened between the set's end and the target:
  // recovery then stopped before the first commit after the target, which the log names.
  const lastOk = replayed === '' ? stopped?.[1] === 'before' : Date.parse(replayed) <= time.getTime();
  const stopOk = stopped !== null && (stopped[1] === 'after' || pgTimestamp(stopped[2]) > time.getTime());
  return {
    name: 'recovery-target',
    ok: lastOk && stopOk,
    detail: stopped
      ? `recovery stopped ${stopped[1]} a commit at ${stopped[2]}; the last replayed commit was at ${replayed || '(none)'}, target ${target}`
      : `recovery ended without reaching the target (no "recovery stopping" in the log): the archive ends before ${target}; last replayed commit ${replayed || '(none)'}`,
    ...(replayed ? { lastReplayedCommit: new Date(replayed) } : {}),
    ...(replayedLsn ? { replayedLsn } : {}),
  };
}

/** The segment an LSN (`X/Y`) lies in, on `timeline`. */
export function segmentOfLsn(lsn: string, timeline: number, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): string {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!match) throw lifeboatError('InvalidInput', `"${lsn}" is not an LSN (X/Y in hex)`);
  const position = BigInt(`0x${match[1]}`) * 0x1_0000_0000n + BigInt(`0x${match[2]}`);
  return segmentName(timeline, Number(position / BigInt(segmentBytes)), segmentBytes);
}

/**
 * Recovery replayed to the end of the archive: the last WAL record replayed lies in `newest`
 * (the newest segment the plan saw in the archive) or after it. Short of it, the server
 * promoted early — a segment could not be fetched and recovery took that for the archive's end.
 */
export async function checkRecoveryReachedEnd(psql: Psql, newest: string, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): Promise<RecoveryCheck> {
  const replayed = (await psql(LAST_REPLAYED_COMMIT_SQL)).trim();
  const replayedLsn = (await psql('SELECT coalesce(pg_last_wal_replay_lsn()::text, \'\')')).trim();
  const expected = parseSegment(newest, segmentBytes);
  const reached = replayedLsn ? parseSegment(segmentOfLsn(replayedLsn, expected.timeline, segmentBytes), segmentBytes) : undefined;
  const ok = reached !== undefined && reached.number >= expected.number;
  return {
    name: 'recovery-target',
    ok,
    detail: reached
      ? `recovery replayed to ${replayedLsn} (segment ${reached.name}); the archive's newest segment was ${newest}${ok ? '' : ': recovery ended short of the end of the archive'}; ` +
        `the last replayed commit was at ${replayed || '(none)'}`
      : 'recovery replayed no WAL at all (pg_last_wal_replay_lsn() is empty)',
    ...(replayed ? { lastReplayedCommit: new Date(replayed) } : {}),
    ...(replayedLsn ? { replayedLsn } : {}),
  };
}

/** The check for `target`: reached the time, or the end of the archive (`newest`, the plan's last segment). */
export function checkRecoveryReached(psql: Psql, log: string, target: PitrTarget, newest: string, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): Promise<RecoveryCheck> {
  return target === 'latest' ? checkRecoveryReachedEnd(psql, newest, segmentBytes) : checkRecoveryReachedTime(psql, log, target.time);
}
