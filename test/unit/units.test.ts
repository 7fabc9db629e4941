import { formatDuration, formatSize, parseDuration, parseSize } from '../../lib/config';

describe('durations', () => {
  test.each([
    ['15m', 900], ['1h', 3600], ['24h', 86_400], ['7d', 604_800], ['2w', 1_209_600], ['1y', 31_536_000], [' 90d ', 7_776_000],
  ])('parseDuration(%j) = %d s', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  test.each(['', '15', 'm', '0m', '1.5h', '15 minutes', '-1d', '1s'])('parseDuration(%j) is invalid', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  test.each([[0, '0s'], [45, '45s'], [900, '15m'], [5400, '1h 30m'], [86_400, '1d'], [90_061, '1d 1h'], [9993.6, '2h 46m']])(
    'formatDuration(%d) = %j', (seconds, text) => {
      expect(formatDuration(seconds)).toBe(text);
    });

  test('format and parse agree on whole units', () => {
    for (const text of ['15m', '1h', '7d']) expect(formatDuration(parseDuration(text) as number)).toBe(text);
  });
});

describe('sizes', () => {
  test.each([
    ['500MB', 500e6], ['20GB', 20e9], ['1.5TB', 1.5e12], ['2GiB', 2 * 1024 ** 3], ['512 KiB', 512 * 1024], ['10B', 10],
  ])('parseSize(%j) = %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each(['', 'huge', '5 gigabytes', '0GB', '-1MB', 'GB'])('parseSize(%j) is invalid', (text) => {
    expect(parseSize(text)).toBeUndefined();
  });

  test.each([[999, '999 B'], [50e6, '50 MB'], [1_234_567_890, '1.23 GB'], [2.5e12, '2.5 TB']])('formatSize(%d) = %j', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});
