/**
 * WAL segments as PostgreSQL names them, and the continuity of an archive: the check behind
 * `WalGap`. A segment's name is 24 hex digits — the timeline (8), then the segment number split
 * in a high part (8) and a low part (8) that counts up to 4 GiB ÷ the segment size (256 with
 * the default 16 MiB segments) before the high part moves on.
 *
 * pgBackRest stores a segment under `archive/<stanza>/<pg version>-<id>/<first 16 hex>/` as
 * `<name>-<sha1>[.<compression>]`; `.history` files (timeline switches), `.backup` files (a
 * backup's start and stop) and `.partial` segments (the end of a timeline) are not segments of
 * the sequence.
 */

export const DEFAULT_WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

export interface WalSegment {
  /** 24 hex digits, upper case, as PostgreSQL writes them. */
  readonly name: string;
  readonly timeline: number;
  /** The segment's position in its timeline's sequence. */
  readonly number: number;
}

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

function segmentsPerId(segmentBytes: number): number {
  if (!Number.isInteger(segmentBytes) || segmentBytes < 1024 * 1024 || segmentBytes > 1024 ** 3 || (segmentBytes & (segmentBytes - 1)) !== 0) {
    throw Object.assign(new RangeError(`wal_segment_size: ${segmentBytes} is not a power of two from 1 MiB to 1 GiB`), { name: 'InvalidInput' });
  }
  return 0x1_0000_0000 / segmentBytes;
}

/** The segment a 24-hex-digit name is; InvalidInput otherwise. */
export function parseSegment(name: string, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): WalSegment {
  const match = SEGMENT.exec(name);
  const perId = segmentsPerId(segmentBytes);
  if (!match || parseInt(match[3], 16) >= perId) {
    throw Object.assign(new Error(`"${name}" is not a WAL segment name (24 hex digits: timeline, then the segment number)`), { name: 'InvalidInput' });
  }
  return { name, timeline: parseInt(match[1], 16), number: parseInt(match[2], 16) * perId + parseInt(match[3], 16) };
}

const hex8 = (value: number) => value.toString(16).toUpperCase().padStart(8, '0');

export function segmentName(timeline: number, number: number, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): string {
  const perId = segmentsPerId(segmentBytes);
  return `${hex8(timeline)}${hex8(Math.floor(number / perId))}${hex8(number % perId)}`;
}

/** The segment of an archive object's key, or undefined for what is not a segment of the sequence (history, backup label, partial). */
export function segmentOfArchiveKey(key: string): string | undefined {
  const file = key.slice(key.lastIndexOf('/') + 1);
  const match = /^([0-9A-F]{24})(?:-[0-9a-f]{40})?(?:\.(?:gz|lz4|zst|bz2|xz))?$/.exec(file);
  return match?.[1];
}

export interface WalContinuity {
  /** Every segment from `from` to `to` is in the archive. */
  readonly complete: boolean;
  /** Segments in the range. */
  readonly expected: number;
  /** The missing segments, oldest first (at most `limit`). */
  readonly missing: readonly string[];
  /** How many are missing in all. */
  readonly missingCount: number;
}

/**
 * Whether the archive holds every segment from `from` to `to` (both included, one timeline):
 * what a backup set needs to be consistent (its start to its stop segment), or a restore to
 * replay up to a point.
 */
export function walContinuity(
  archived: Iterable<string>,
  from: string,
  to: string,
  options: { segmentBytes?: number; limit?: number } = {},
): WalContinuity {
  const segmentBytes = options.segmentBytes ?? DEFAULT_WAL_SEGMENT_BYTES;
  const start = parseSegment(from, segmentBytes);
  const stop = parseSegment(to, segmentBytes);
  if (start.timeline !== stop.timeline) {
    throw Object.assign(new Error(`WAL range ${from} to ${to} crosses timelines ${start.timeline} and ${stop.timeline}: check each timeline's part`), { name: 'InvalidInput' });
  }
  if (stop.number < start.number) throw Object.assign(new Error(`WAL range ${from} to ${to}: the end is before the start`), { name: 'InvalidInput' });
  const present = new Set<number>();
  for (const name of archived) {
    if (!SEGMENT.test(name)) continue;
    const segment = parseSegment(name, segmentBytes);
    if (segment.timeline === start.timeline && segment.number >= start.number && segment.number <= stop.number) present.add(segment.number);
  }
  const limit = options.limit ?? 10;
  const missing: string[] = [];
  let missingCount = 0;
  for (let number = start.number; number <= stop.number; number++) {
    if (present.has(number)) continue;
    missingCount++;
    if (missing.length < limit) missing.push(segmentName(start.timeline, number, segmentBytes));
  }
  return { complete: missingCount === 0, expected: stop.number - start.number + 1, missing, missingCount };
}
