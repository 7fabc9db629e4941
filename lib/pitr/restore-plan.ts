/**
 * The plan of a restore to a point, before anything is written (what `lifeboat restore --at`
 * prints first): which set, the WAL to replay from its start to the target, and the window a
 * target must lie in. A target outside the window is refused with the window named — after the
 * newest archived segment, a restore would silently stop short of it — and so is a target past
 * a gap in the archive.
 */
import type { ArchivedSegment, RestorableWindow } from './archive-state';
import { restorableWindow } from './archive-state';
import type { BackupSet } from './pgbackrest-info';
import { DEFAULT_WAL_SEGMENT_BYTES, parseSegment, walContinuity } from './wal';

export type PitrTarget = { readonly time: Date } | 'latest';

export interface PitrRestorePlan {
  readonly target: PitrTarget;
  /** The set restored; its chain (the full, a differential) comes with it. */
  readonly set: BackupSet;
  /** The WAL replayed after the set: from its first segment to the one that reaches the target. */
  readonly wal: { readonly from: string; readonly to: string; readonly segments: number; readonly bytes: number };
  readonly window: RestorableWindow;
  /**
   * What the plan cannot rule out from the bucket: a segment reaches the archive some time after
   * it was written, so the segment that holds the target may be later than the one chosen; a gap
   * after it then stops recovery with an error before anything is promoted (never silently short).
   */
  readonly warnings: readonly string[];
}

const iso = (time: Date | undefined) => time?.toISOString() ?? '(none)';

export function planPitrRestore(
  sets: readonly BackupSet[],
  segments: readonly ArchivedSegment[],
  target: PitrTarget,
  segmentBytes = DEFAULT_WAL_SEGMENT_BYTES,
): { plan?: PitrRestorePlan; problem?: string } {
  const window = restorableWindow(sets, segments);
  const span = `the window is ${iso(window.earliest)} to ${iso(window.latest)}`;
  if (!window.earliest || !window.latest) {
    const gone = window.unrestorable.map((entry) => `${entry.set} lacks ${entry.missing}`).join(', ');
    return { problem: `no set can be restored: ${sets.length === 0 ? 'there is no backup set' : gone} (valid: take a full backup first)` };
  }
  const unrestorable = new Set(window.unrestorable.map((entry) => entry.set));
  const restorable = [...sets].filter((set) => !unrestorable.has(set.label)).sort((a, b) => a.stopTime.getTime() - b.stopTime.getTime());
  const byArrival = [...segments].sort((a, b) => a.archivedAt.getTime() - b.archivedAt.getTime() || (a.name < b.name ? -1 : 1));

  let set: BackupSet;
  let last: ArchivedSegment;
  if (target === 'latest') {
    set = restorable[restorable.length - 1];
    last = byArrival[byArrival.length - 1];
  } else {
    const at = target.time;
    if (at < window.earliest) return { problem: `target ${at.toISOString()} is before the restorable window (${span}; valid: a time in it, or 'latest')` };
    if (at > window.latest) {
      return { problem: `target ${at.toISOString()} is after the newest archived WAL (${iso(window.latest)}): a restore would stop there, short of the target (${span}; valid: a time in it, or 'latest')` };
    }
    set = restorable.filter((candidate) => candidate.stopTime <= at).pop() as BackupSet;
    // The first segment to arrive at or after the target holds it, or the WAL just past it.
    last = byArrival.find((segment) => segment.archivedAt >= at) ?? byArrival[byArrival.length - 1];
  }
  const from = parseSegment(set.walStart, segmentBytes);
  const to = parseSegment(last.name, segmentBytes);
  if (to.timeline !== from.timeline) {
    return { problem: `the target's WAL (${last.name}) is on timeline ${to.timeline}, set ${set.label} on ${from.timeline}: a restore across a timeline switch is not planned by this version (${span})` };
  }
  // The segment that reaches the target, or the set's own last one if it reaches it already.
  const end = to.number >= parseSegment(set.walStop, segmentBytes).number ? last.name : set.walStop;
  const continuity = walContinuity(segments.map((segment) => segment.name), set.walStart, end, { segmentBytes });
  if (!continuity.complete) {
    return { problem: `the WAL from set ${set.label} to the target has a gap at ${continuity.missing[0]} (${continuity.missingCount} segment(s) missing): a restore cannot pass it (${span})` };
  }
  const newestOnTimeline = segments.filter((segment) => parseSegment(segment.name, segmentBytes).timeline === from.timeline)
    .reduce((a, b) => (b.name > a.name ? b : a));
  const beyond = walContinuity(segments.map((segment) => segment.name), set.walStart, newestOnTimeline.name, { segmentBytes });
  const warnings = beyond.complete ? [] : [
    `the archive has a gap at ${beyond.missing[0]}, after the WAL this plan replays: if the target's WAL reached the archive late and lies past it, ` +
      'recovery stops with an error before promoting anything',
  ];
  return {
    plan: {
      warnings,
      target,
      set,
      wal: { from: set.walStart, to: end, segments: continuity.expected, bytes: continuity.expected * segmentBytes },
      window,
    },
  };
}
