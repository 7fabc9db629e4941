/**
 * The WAL archive of a PITR source as the bucket shows it — what the watchdog and `lifeboat
 * status` measure for such a source, read from S3 alone (no host, no pgBackRest): the newest
 * archived segment and its age (the RPO achieved: a change after it exists only on the host),
 * any gap between the oldest and the newest segment of a timeline, and the restorable window
 * (from the end of the oldest set whose WAL is all there, to the newest segment).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { BackupSet } from './pgbackrest-info';
import { parseSegment, segmentName, segmentOfArchiveKey, walContinuity } from './wal';

export interface ArchivedSegment {
  readonly name: string;
  /** When S3 stored it (LastModified): when it reached the archive. */
  readonly archivedAt: Date;
}

export interface ArchiveGap {
  readonly timeline: number;
  /** The first missing segments, oldest first (at most 10). */
  readonly missing: readonly string[];
  readonly missingCount: number;
}

export interface ArchiveState {
  /** Segments of the sequence in the archive (history, backup labels and partial files excluded). */
  readonly segments: number;
  readonly oldest?: ArchivedSegment;
  readonly newest?: ArchivedSegment;
  /** Seconds between the newest segment's arrival and `now`; undefined for an empty archive. */
  readonly ageSeconds?: number;
  /** Holes between the oldest and the newest segment of each timeline: a restore cannot cross them. */
  readonly gaps: readonly ArchiveGap[];
}

export interface ArchiveLocation {
  readonly s3: S3Client;
  readonly bucket: string;
  /** The repository's path in the bucket (pgbackrest.conf's repo1-path, e.g. `/pitr/orders`). */
  readonly repoPath: string;
  readonly stanza: string;
  readonly signal?: AbortSignal;
}

/** A key inside the repository at `repoPath` (pgbackrest.conf's repo1-path, `/pitr/orders`): `pitr/orders/<parts>`. */
export function repositoryKey(repoPath: string, ...parts: readonly string[]): string {
  return [repoPath.replace(/^\/+/, '').replace(/\/+$/, ''), ...parts].join('/');
}

export function archivePrefix(location: Pick<ArchiveLocation, 'repoPath' | 'stanza'>): string {
  return repositoryKey(location.repoPath, 'archive', location.stanza, '');
}

/** Every segment in the archive with its arrival time, oldest name first. */
export async function listArchivedSegments(location: ArchiveLocation): Promise<ArchivedSegment[]> {
  const segments = new Map<string, ArchivedSegment>();
  let token: string | undefined;
  do {
    const page = await location.s3.send(new ListObjectsV2Command({ Bucket: location.bucket, Prefix: archivePrefix(location), ContinuationToken: token }), { abortSignal: location.signal });
    for (const object of page.Contents ?? []) {
      const name = object.Key ? segmentOfArchiveKey(object.Key) : undefined;
      if (name && object.LastModified) segments.set(name, { name, archivedAt: object.LastModified });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return [...segments.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function archiveState(location: ArchiveLocation, now: Date): Promise<ArchiveState> {
  return summarizeArchive(await listArchivedSegments(location), now);
}

export function summarizeArchive(segments: readonly ArchivedSegment[], now: Date): ArchiveState {
  if (segments.length === 0) return { segments: 0, gaps: [] };
  const byTimeline = new Map<number, string[]>();
  for (const segment of segments) {
    const { timeline } = parseSegment(segment.name);
    byTimeline.set(timeline, [...(byTimeline.get(timeline) ?? []), segment.name]);
  }
  const gaps: ArchiveGap[] = [];
  for (const [timeline, names] of byTimeline) {
    const continuity = walContinuity(names, names[0], names[names.length - 1]);
    if (!continuity.complete) gaps.push({ timeline, missing: continuity.missing, missingCount: continuity.missingCount });
  }
  // The newest to arrive, not the highest name: after a timeline switch both are the same segment's successors.
  const newest = segments.reduce((a, b) => (b.archivedAt > a.archivedAt || (b.archivedAt.getTime() === a.archivedAt.getTime() && b.name > a.name) ? b : a));
  return {
    segments: segments.length,
    oldest: segments[0],
    newest,
    ageSeconds: Math.max(0, (now.getTime() - newest.archivedAt.getTime()) / 1000),
    gaps,
  };
}

export interface RestorableWindow {
  /** The end of the oldest set whose WAL is all in the archive. */
  readonly earliest?: Date;
  /** When the newest segment reached the archive: no later change can be restored. */
  readonly latest?: Date;
  /** The sets that cannot be restored, with their first missing segment. */
  readonly unrestorable: readonly { readonly set: string; readonly missing: string }[];
}

/** The window a restore to a point can reach, from the sets (pgbackrest info) and the archive. */
export function restorableWindow(sets: readonly BackupSet[], segments: readonly ArchivedSegment[]): RestorableWindow {
  const names = segments.map((segment) => segment.name);
  const unrestorable: { set: string; missing: string }[] = [];
  let earliest: Date | undefined;
  for (const set of [...sets].sort((a, b) => a.stopTime.getTime() - b.stopTime.getTime())) {
    const continuity = walContinuity(names, set.walStart, set.walStop);
    if (!continuity.complete) {
      unrestorable.push({ set: set.label, missing: continuity.missing[0] });
      continue;
    }
    earliest ??= set.stopTime;
  }
  const latest = segments.length === 0 ? undefined : new Date(Math.max(...segments.map((segment) => segment.archivedAt.getTime())));
  return { ...(earliest ? { earliest } : {}), ...(earliest && latest ? { latest } : {}), unrestorable };
}

/** Consecutive segments missing from the archive, on one timeline. */
export interface WalHole {
  readonly timeline: number;
  /** The first and the last missing segment. */
  readonly first: string;
  readonly last: string;
  readonly missingCount: number;
  /** When the first segment after the hole reached the archive (undefined when a set's own WAL ends in it). */
  readonly nextArrivedAt?: Date;
}

export interface ArchiveCoverage {
  /**
   * Holes in the WAL the sets need: on each timeline, from the oldest set's start segment (on a
   * timeline no set starts on, from its oldest segment) to its newest segment or set stop. WAL
   * before the oldest set, and timelines older than every set, are nobody's concern. Without a
   * set, the holes between the oldest and the newest segment of each timeline.
   */
  readonly holes: readonly WalHole[];
  /**
   * The window a restore can reach up to the newest archived point without crossing a hole:
   * from the stop of the oldest set whose WAL runs unbroken to the newest segment, to that
   * segment's arrival. Absent when no set reaches it (no set, or a hole after every set).
   */
  readonly window?: { readonly earliest: Date; readonly latest: Date; readonly fromSet: string };
}

/**
 * What of the archive the sets can use: the holes in the WAL they need (the watchdog's
 * `ArchiveGaps`) and the unbroken window to the newest point (`RestorableWindowSeconds`). Sets
 * with a start and stop on different timelines are not made by pgBackRest and not handled.
 */
export function archiveCoverage(
  sets: readonly BackupSet[],
  segments: readonly ArchivedSegment[],
  options: {
    /**
     * A hole whose next segment arrived after this may still be filled (pgBackRest's asynchronous
     * archive-push sends several segments in parallel): it is left out, and breaks no window.
     * @default - every hole counts
     */
    readonly settledBefore?: Date;
  } = {},
): ArchiveCoverage {
  const byTimeline = new Map<number, Map<number, ArchivedSegment>>();
  for (const segment of segments) {
    const { timeline, number } = parseSegment(segment.name);
    if (!byTimeline.has(timeline)) byTimeline.set(timeline, new Map());
    byTimeline.get(timeline)!.set(number, segment);
  }
  const ranges = sets.map((set) => ({ set, start: parseSegment(set.walStart), stop: parseSegment(set.walStop) }));
  const lowest = ranges.length === 0 ? -Infinity : Math.min(...ranges.map((range) => range.start.timeline));
  const timelines = [...new Set([...byTimeline.keys(), ...ranges.map((range) => range.start.timeline)])].filter((timeline) => timeline >= lowest).sort((a, b) => a - b);

  const holes: WalHole[] = [];
  for (const timeline of timelines) {
    const present = byTimeline.get(timeline) ?? new Map<number, ArchivedSegment>();
    const onTimeline = ranges.filter((range) => range.start.timeline === timeline);
    // A loop, not Math.min(...): a week of WAL is tens of thousands of segments.
    let [oldest, newest] = [Infinity, -Infinity];
    for (const number of present.keys()) [oldest, newest] = [Math.min(oldest, number), Math.max(newest, number)];
    let from = onTimeline.length > 0 ? Infinity : oldest;
    let to = newest;
    for (const range of onTimeline) [from, to] = [Math.min(from, range.start.number), Math.max(to, range.stop.number)];
    let open: number | undefined;
    for (let number = from; number <= to + 1; number++) {
      const missing = number <= to && !present.has(number);
      if (missing && open === undefined) open = number;
      if (!missing && open !== undefined) {
        holes.push({
          timeline,
          first: segmentName(timeline, open),
          last: segmentName(timeline, number - 1),
          missingCount: number - open,
          ...(present.has(number) ? { nextArrivedAt: present.get(number)!.archivedAt } : {}),
        });
        open = undefined;
      }
    }
  }

  const { settledBefore } = options;
  const settled = settledBefore
    ? holes.filter((hole) => hole.nextArrivedAt === undefined || hole.nextArrivedAt.getTime() <= settledBefore.getTime())
    : holes;
  if (segments.length === 0) return { holes: settled };
  const newest = segments.reduce((a, b) => (b.archivedAt > a.archivedAt ? b : a));
  const reaches = (range: (typeof ranges)[number]) => !settled.some((hole) =>
    hole.timeline > range.start.timeline || (hole.timeline === range.start.timeline && parseSegment(hole.last).number >= range.start.number));
  const from = ranges.filter(reaches).sort((a, b) => a.set.stopTime.getTime() - b.set.stopTime.getTime())[0];
  return from ? { holes: settled, window: { earliest: from.set.stopTime, latest: newest.archivedAt, fromSet: from.set.label } } : { holes: settled };
}
