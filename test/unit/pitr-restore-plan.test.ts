import type { ArchivedSegment } from '../../lib/pitr/archive-state';
import type { BackupSet } from '../../lib/pitr/pgbackrest-info';
import { planPitrRestore } from '../../lib/pitr/restore-plan';
import { segmentName } from '../../lib/pitr/wal';

const T0 = Date.parse('2026-12-03T10:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);
/** Segment n of timeline 1 arrives at n × 10 s. */
const archived = (from: number, to: number, skip: number[] = []): ArchivedSegment[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i).filter((n) => !skip.includes(n)).map((n) => ({ name: segmentName(1, n), archivedAt: at(n * 10) }));
const set = (label: string, type: BackupSet['type'], walStart: number, walStop: number, stopSeconds: number): BackupSet => ({
  label, type, startTime: at(stopSeconds - 5), stopTime: at(stopSeconds), startLsn: '0/1', stopLsn: '0/2',
  walStart: segmentName(1, walStart), walStop: segmentName(1, walStop), size: 1, delta: 1, repoSize: 1, repoDelta: 1, checksumErrors: false,
});
const SETS = [set('F', 'full', 2, 3, 30), set('F_I', 'incr', 8, 9, 90), set('F_D', 'diff', 15, 16, 160)];

test('a time between two sets: the older set, and the WAL from its start to the segment that reaches the target', () => {
  const { plan, problem } = planPitrRestore(SETS, archived(1, 30), { time: at(125) });
  expect(problem).toBeUndefined();
  expect(plan?.set.label).toBe('F_I');
  expect(plan?.wal).toEqual({ from: segmentName(1, 8), to: segmentName(1, 13), segments: 6, bytes: 6 * 16 * 1024 ** 2 });
  expect(plan?.window).toMatchObject({ earliest: at(30), latest: at(300) });
});

test('latest: the newest set and every segment after it', () => {
  const { plan } = planPitrRestore(SETS, archived(1, 30), 'latest');
  expect(plan?.set.label).toBe('F_D');
  expect(plan?.wal).toMatchObject({ from: segmentName(1, 15), to: segmentName(1, 30), segments: 16 });
});

test.each([
  ['before the window', at(10), /^target 2026-12-03T10:00:10\.000Z is before the restorable window \(the window is 2026-12-03T10:00:30\.000Z to 2026-12-03T10:05:00\.000Z; valid: a time in it, or 'latest'\)$/],
  ['after the newest archived WAL', at(400), /^target 2026-12-03T10:06:40\.000Z is after the newest archived WAL \(2026-12-03T10:05:00\.000Z\): a restore would stop there, short of the target/],
])('a target %s is refused, naming the window', (_what, time, expected) => {
  expect(planPitrRestore(SETS, archived(1, 30), { time }).problem).toMatch(expected);
});

test('a gap between the set and the target is refused, naming the segment; before the gap the plan stands', () => {
  const segments = archived(1, 30, [11]);
  expect(planPitrRestore(SETS, segments, { time: at(125) }).problem).toMatch(/^the WAL from set F_I to the target has a gap at 00000001000000000000000B \(1 segment\(s\) missing\): a restore cannot pass it/);
  const before = planPitrRestore(SETS, segments, { time: at(95) }).plan;
  expect(before?.wal).toMatchObject({ from: segmentName(1, 8), to: segmentName(1, 10) });
  // What the bucket cannot rule out is said: the target's WAL may have arrived late, past the gap.
  expect(before?.warnings).toEqual([expect.stringMatching(/^the archive has a gap at 00000001000000000000000B, after the WAL this plan replays/)]);
  expect(planPitrRestore(SETS, archived(1, 30), { time: at(95) }).plan?.warnings).toEqual([]);
});

test('a set whose own WAL is gone is skipped: the window starts at the next one', () => {
  const { plan } = planPitrRestore(SETS, archived(5, 30), { time: at(100) });
  expect(plan?.set.label).toBe('F_I');
  expect(plan?.window).toMatchObject({ earliest: at(90), unrestorable: [{ set: 'F', missing: segmentName(1, 2) }] });
  expect(planPitrRestore([], archived(1, 3), 'latest').problem).toBe('no set can be restored: there is no backup set (valid: take a full backup first)');
});

test('a target whose WAL is on another timeline than the set is refused, saying so', () => {
  const segments = [...archived(1, 20), { name: segmentName(2, 21), archivedAt: at(400) }];
  expect(planPitrRestore(SETS, segments, { time: at(350) }).problem).toMatch(/^the target's WAL \(000000020000000000000015\) is on timeline 2, set F_D on 1: a restore across a timeline switch is not planned by this version/);
});
