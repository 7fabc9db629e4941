/**
 * Human-friendly durations ("15m", "24h", "90d", "1y") and sizes ("500MB", "2GiB") used in
 * the config file, and their inverse for messages and the plan view.
 */

const DURATION = /^(\d+)(m|h|d|w|y)$/;
const DURATION_UNITS: Record<string, number> = { m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };
export const DURATION_HINT = 'a whole number followed by m, h, d, w or y, e.g. "15m", "24h", "7d", "1y"';

/** Seconds in a duration string, or undefined when the string is not a valid duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * DURATION_UNITS[match[2]];
  return seconds > 0 ? seconds : undefined;
}

/** "1h 30m", "7d", "15m": the largest two units, for messages and tables. */
export function formatDuration(totalSeconds: number): string {
  const units: [string, number][] = [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = Math.round(totalSeconds);
  for (const [unit, size] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    } else if (parts.length > 0) {
      break;
    }
  }
  return parts.length > 0 ? parts.join(' ') : '0s';
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/;
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};
export const SIZE_HINT = 'a number followed by B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, e.g. "500MB", "20GiB"';

/** Bytes in a size string, or undefined when the string is not a valid size. */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  const bytes = Math.round(Number(match[1]) * SIZE_UNITS[match[2]]);
  return bytes > 0 ? bytes : undefined;
}

/** "1.5 GB": decimal units, three significant digits. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : Number(value.toPrecision(3))} ${units[unit]}`;
}
