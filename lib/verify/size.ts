/**
 * The suspicious-size rule: a run much smaller than the recent verified runs of the same
 * source is more likely a dump of the wrong (or an emptied) database than real shrinkage.
 * Pure: the verifier passes the sizes, the catalog finds them.
 */

/** The rule needs at least this many previous verified runs; with fewer it does not judge. */
export const MIN_PREVIOUS_SIZES = 3;
/** How many of the newest verified runs form the trailing median. */
export const TRAILING_RUNS = 7;
/** A run smaller than half the trailing median is suspicious. */
export const DEFAULT_SUSPICIOUS_SHRINK = 0.5;

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export interface SizeJudgement {
  /** false when there were too few previous sizes to judge (the run then passes). */
  readonly judged: boolean;
  readonly ok: boolean;
  readonly median?: number;
  /** Runs smaller than this many bytes are suspicious. */
  readonly thresholdBytes?: number;
  /** One line: what was compared with what. */
  readonly detail: string;
}

/**
 * `bytes` is suspicious when it is below (1 - shrink) × the median of the newest
 * `TRAILING_RUNS` of `previousSizes` (newest first). `shrink` is a fraction in [0, 1].
 */
export function judgeSize(bytes: number, previousSizes: readonly number[], shrink = DEFAULT_SUSPICIOUS_SHRINK): SizeJudgement {
  if (!(shrink >= 0 && shrink <= 1)) throw new RangeError(`suspiciousShrink: must be a fraction in [0, 1], got ${shrink}`);
  const trailing = previousSizes.slice(0, TRAILING_RUNS);
  if (trailing.length < MIN_PREVIOUS_SIZES) {
    return {
      judged: false,
      ok: true,
      detail: `${bytes} bytes; not compared (${trailing.length} previous verified run(s), the rule needs ${MIN_PREVIOUS_SIZES})`,
    };
  }
  const mid = median(trailing);
  const floor = (1 - shrink) * mid;
  const ok = !(bytes < floor);
  const thresholdBytes = Math.ceil(floor);
  const percent = mid === 0 ? 100 : Math.round((bytes / mid) * 100);
  return {
    judged: true,
    ok,
    median: mid,
    thresholdBytes,
    detail:
      `${bytes} bytes is ${percent}% of the median ${mid} bytes of the last ${trailing.length} verified runs ` +
      `(${ok ? 'at least' : 'below'} the ${thresholdBytes}-byte floor, shrink limit ${Math.round(shrink * 100)}%)`,
  };
}
