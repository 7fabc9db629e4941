import type { BackupSet } from '../../lib/pitr/pgbackrest-info';
import { archivePrefix, restorableWindow, summarizeArchive, type ArchivedSegment } from '../../lib/pitr/archive-state';
import { segmentName } from '../../lib/pitr/wal';

const T0 = Date.parse('2026-12-03T10:00:00Z');
/** Segments `from`..`to` of timeline 1, one arriving every 10 s. */
const segments = (from: number, to: number, skip: number[] = [], timeline = 1): ArchivedSegment[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i).filter((n) => !skip.includes(n))
    .map((n) => ({ name: segmentName(timeline, n), archivedAt: new Date(T0 + n * 10_000) }));

const set = (label: string, walStart: number, walStop: number, stopSeconds: number): BackupSet => ({
  label, type: 'full', startTime: new Date(T0), stopTime: new Date(T0 + stopSeconds * 1000), startLsn: '0/1', stopLsn: '0/2',
  walStart: segmentName(1, walStart), walStop: segmentName(1, walStop), size: 1, delta: 1, repoSize: 1, repoDelta: 1, checksumErrors: false,
});

test('the archive\'s newest segment, its age, and no gap in a complete sequence', () => {
  const state = summarizeArchive(segments(1, 20), new Date(T0 + 230_000));
  expect(state).toMatchObject({ segments: 20, oldest: { name: segmentName(1, 1) }, newest: { name: segmentName(1, 20) }, ageSeconds: 30, gaps: [] });
});

test('a hole between the oldest and the newest segment is a gap naming its segments, per timeline', () => {
  const state = summarizeArchive([...segments(1, 20, [7, 8]), ...segments(21, 22, [], 2)], new Date(T0 + 300_000));
  expect(state.gaps).toEqual([{ timeline: 1, missing: [segmentName(1, 7), segmentName(1, 8)], missingCount: 2 }]);
  expect(state.newest?.name).toBe(segmentName(2, 22));
});

test('an empty archive has no age and no window', () => {
  expect(summarizeArchive([], new Date(T0))).toEqual({ segments: 0, gaps: [] });
  expect(restorableWindow([set('F', 1, 2, 5)], [])).toEqual({ unrestorable: [{ set: 'F', missing: segmentName(1, 1) }] });
});

test('the window runs from the end of the oldest restorable set to the newest segment; a set whose WAL is gone is named', () => {
  const window = restorableWindow([set('F1', 2, 3, 40), set('F2', 10, 11, 120)], segments(5, 30));
  expect(window).toEqual({ earliest: new Date(T0 + 120_000), latest: new Date(T0 + 300_000), unrestorable: [{ set: 'F1', missing: segmentName(1, 2) }] });
});

test('the archive prefix of a repository path', () => {
  expect(archivePrefix({ repoPath: '/pitr/orders', stanza: 'main' })).toBe('pitr/orders/archive/main/');
  expect(archivePrefix({ repoPath: 'pitr/orders/', stanza: 'main' })).toBe('pitr/orders/archive/main/');
});
