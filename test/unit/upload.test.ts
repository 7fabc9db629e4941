import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  choosePartSize,
  DEFAULT_PART_SIZE,
  DigestStream,
  MAX_PART_SIZE,
  MAX_PARTS,
  MiB,
  MIN_PART_SIZE,
  SIZE_HINT_HEADROOM,
} from '../../worker/upload-parts';

const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** Hints from 1 byte to 16 TiB: powers of two, their neighbours, and decimal sizes. */
const SWEEP = [
  ...Array.from({ length: 45 }, (_, i) => 2 ** i).flatMap((n) => [n - 1, n, n + 1]),
  ...Array.from({ length: 13 }, (_, i) => 10 ** i),
  732e6,
  5 * TiB,
  10 * TiB,
].filter((n) => n > 0);

describe('choosePartSize invariants', () => {
  test.each(SWEEP)('hint %d: a part S3 accepts, in whole MiB', (hint) => {
    const size = choosePartSize(hint);
    expect(size).toBeGreaterThanOrEqual(MIN_PART_SIZE);
    expect(size).toBeLessThanOrEqual(MAX_PART_SIZE);
    expect(size % MiB).toBe(0);
  });

  test.each(SWEEP)('hint %d: a dump 10× the hint fits in 10,000 parts, whenever S3 could hold it at all', (hint) => {
    const size = choosePartSize(hint);
    const grown = hint * SIZE_HINT_HEADROOM;
    if (grown <= MAX_PART_SIZE * MAX_PARTS) {
      expect(Math.ceil(grown / size)).toBeLessThanOrEqual(MAX_PARTS);
    } else {
      expect(size).toBe(MAX_PART_SIZE);
    }
  });

  test.each(SWEEP)('hint %d: the smallest such part (one MiB less would not do)', (hint) => {
    const size = choosePartSize(hint);
    if (size > MIN_PART_SIZE && size < MAX_PART_SIZE) {
      expect(Math.ceil((hint * SIZE_HINT_HEADROOM) / (size - MiB))).toBeGreaterThan(MAX_PARTS);
    }
  });

  test('never shrinks as the hint grows', () => {
    const sizes = [...SWEEP].sort((a, b) => a - b).map((hint) => choosePartSize(hint));
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]).toBeGreaterThanOrEqual(sizes[i - 1]);
  });
});

describe('choosePartSize golden cases', () => {
  test.each([
    ['no hint', undefined, DEFAULT_PART_SIZE],
    ['a zero hint (unknown)', 0, DEFAULT_PART_SIZE],
    ['1 byte', 1, 5 * MiB],
    ['1 GiB', GiB, 5 * MiB],
    ['4.88 GiB (10× fits in 5 MiB parts exactly)', 5 * MiB * 1000, 5 * MiB],
    ['5 GiB', 5 * GiB, 6 * MiB],
    ['the 732 MB benchmark database', 732e6, 5 * MiB],
    ['100 GiB', 100 * GiB, 103 * MiB],
    ['1 TiB', TiB, 1049 * MiB],
    ['5 TiB (S3 largest object): capped', 5 * TiB, MAX_PART_SIZE],
    ['10 TiB: capped', 10 * TiB, MAX_PART_SIZE],
  ])('%s', (_label, hint, expected) => {
    expect(choosePartSize(hint)).toBe(expected);
  });

  test('without a hint, dumps up to 78 GiB fit', () => {
    expect((DEFAULT_PART_SIZE * MAX_PARTS) / GiB).toBeCloseTo(78.1, 1);
  });

  test.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects the hint %d, naming the field', (hint) => {
    expect(() => choosePartSize(hint)).toThrow(/^sizeHintBytes: must be a non-negative number of bytes/);
  });
});

describe('DigestStream', () => {
  test('passes bytes through unchanged while hashing and counting them', async () => {
    const data = randomBytes(3 * MiB + 17);
    const chunks: Buffer[] = [];
    const digest = new DigestStream();
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
    await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000, MiB), data.subarray(MiB)]), digest, sink);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(digest.bytes).toBe(data.length);
    expect(digest.digest()).toBe(createHash('sha256').update(data).digest('hex'));
  });

  test('an empty stream has the SHA-256 of nothing', async () => {
    const digest = new DigestStream();
    await pipeline(Readable.from([]), digest, new Writable({ write: (_c, _e, cb) => cb() }));
    expect(digest.bytes).toBe(0);
    expect(digest.digest()).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});
