/**
 * Run ids are the UTC time of the schedule slot a run belongs to, e.g. 20261126T030000Z.
 * A retried schedule or execution for the same slot gets the same id, and so writes the
 * same keys: that is what makes a slot idempotent. Ids sort lexicographically by time.
 */

const RUN_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export function isRunId(text: string): boolean {
  return runIdToDate(text) !== undefined;
}

export function formatRunId(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('run id: invalid date');
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** The slot's time, or undefined when the text is not a run id. */
export function runIdToDate(text: string): Date | undefined {
  const match = RUN_ID.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second] = match.map(Number);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Reject ids such as 20261331T250000Z that Date.UTC would silently roll over.
  return formatRunId(date) === text ? date : undefined;
}

/**
 * The run id of the slot that contains `at`, for a schedule every `intervalSeconds`
 * (slots aligned to the Unix epoch, so every scheduler and retry agrees on them).
 */
export function slotRunId(at: Date, intervalSeconds: number): string {
  if (!Number.isInteger(intervalSeconds) || intervalSeconds <= 0) {
    throw new RangeError(`run id: interval must be a positive whole number of seconds (got ${intervalSeconds})`);
  }
  const intervalMs = intervalSeconds * 1000;
  return formatRunId(new Date(Math.floor(at.getTime() / intervalMs) * intervalMs));
}
