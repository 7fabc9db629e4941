import { parseSegment, segmentName, segmentOfArchiveKey, walContinuity } from '../../lib/pitr/wal';

describe('WAL segment names', () => {
  test.each([
    ['000000010000000000000001', 1, 1],
    ['0000000100000000000000FF', 1, 255],
    ['000000010000000100000000', 1, 256],
    ['0000000300000A1E000000FE', 3, 0xa1e * 256 + 0xfe],
  ])('%s is timeline %i, segment %i (16 MiB segments), and back', (name, timeline, number) => {
    expect(parseSegment(name)).toEqual({ name, timeline, number });
    expect(segmentName(timeline, number)).toBe(name);
  });

  test('with 64 MiB segments the low part counts to 63', () => {
    expect(segmentName(1, 64, 64 * 1024 * 1024)).toBe('000000010000000100000000');
    expect(() => parseSegment('000000010000000000000040', 64 * 1024 * 1024)).toThrow('is not a WAL segment name');
  });

  test.each(['00000001000000000000001', '0000000100000000000000fg', '000000010000000000000100', 'backup_label'])('"%s" is refused', (name) => {
    expect(() => parseSegment(name)).toThrow(expect.objectContaining({ name: 'InvalidInput' }));
  });

  test('an invalid segment size is refused, naming it', () => {
    expect(() => parseSegment('000000010000000000000001', 3 * 1024 * 1024)).toThrow('wal_segment_size: 3145728 is not a power of two from 1 MiB to 1 GiB');
  });

  test.each([
    ['archive/main/15-1/0000000100000000/000000010000000000000003-0123456789abcdef0123456789abcdef01234567.zst', '000000010000000000000003'],
    ['archive/main/15-1/0000000100000000/000000010000000000000004-0123456789abcdef0123456789abcdef01234567.gz', '000000010000000000000004'],
    ['archive/main/15-1/0000000100000000/000000010000000000000005', '000000010000000000000005'],
    ['archive/main/15-1/00000002.history', undefined],
    ['archive/main/15-1/0000000100000000/000000010000000000000003.00000028.backup', undefined],
    ['archive/main/15-1/0000000100000000/000000010000000000000007.partial-0123456789abcdef0123456789abcdef01234567.zst', undefined],
    ['archive/main/archive.info', undefined],
  ])('the archive key %s holds segment %s', (key, segment) => {
    expect(segmentOfArchiveKey(key)).toBe(segment);
  });
});

describe('walContinuity', () => {
  const range = (from: number, to: number, timeline = 1) => Array.from({ length: to - from + 1 }, (_, i) => segmentName(timeline, from + i));

  test('a complete range, across the high part\'s step', () => {
    expect(walContinuity(range(250, 260), segmentName(1, 252), segmentName(1, 258))).toEqual({ complete: true, expected: 7, missing: [], missingCount: 0 });
  });

  test('a gap is named by its first segments, oldest first; other timelines and other ranges do not fill it', () => {
    const archived = [...range(250, 260).filter((name) => name !== segmentName(1, 255) && name !== segmentName(1, 256)), segmentName(2, 255), 'not-a-segment'];
    const result = walContinuity(archived, segmentName(1, 250), segmentName(1, 260));
    expect(result).toEqual({ complete: false, expected: 11, missing: ['0000000100000000000000FF', '000000010000000100000000'], missingCount: 2 });
  });

  test('the list of missing segments is bounded, the count is not', () => {
    const result = walContinuity([], segmentName(1, 1), segmentName(1, 100), { limit: 3 });
    expect(result).toMatchObject({ complete: false, expected: 100, missingCount: 100 });
    expect(result.missing).toEqual(range(1, 3));
  });

  test('a range across timelines or backwards is refused', () => {
    expect(() => walContinuity([], segmentName(1, 5), segmentName(2, 6))).toThrow('crosses timelines 1 and 2');
    expect(() => walContinuity([], segmentName(1, 6), segmentName(1, 5))).toThrow('the end is before the start');
  });
});
