/**
 * The restore drill's judgements, as pure functions: what the restored server holds (read by
 * run-drill.ts) against what the manifest recorded when the run was dumped, and the measured
 * RTO against the tier's. Each returns one report check; a failed check carries the error name
 * the drill state machine matches.
 */
import type { DrillCheck } from '../config/types';
import type { DrillCheckResult } from '../domain/drill-report';
import type { Manifest, ManifestTable } from '../domain/manifest';

/**
 * The names a failed drill throws, in the order the verdict picks from when several checks
 * fail: a missing table explains a wrong count, which is more basic than a slow restore.
 */
export const DRILL_ERROR_NAMES = ['TableSetMismatch', 'RowCountMismatch', 'ExtensionMissing', 'DrillCheckFailed', 'RtoExceeded'] as const;
export type DrillErrorName = (typeof DRILL_ERROR_NAMES)[number];

export interface DrillJudgement extends DrillCheckResult {
  /** Set when `ok` is false. */
  readonly error?: DrillErrorName;
}

export interface TableRef {
  readonly database: string;
  readonly schema: string;
  readonly name: string;
}

/** How many names a detail line lists before it says "and N more". */
const MAX_LISTED = 5;

/** `shop: public.orders` for PostgreSQL, `shop.orders` for MySQL/MariaDB (where the schema is the database). */
export function tableDisplayName(table: TableRef): string {
  return table.schema === table.database ? `${table.database}.${table.name}` : `${table.database}: ${table.schema}.${table.name}`;
}

export function tableKey(table: TableRef): string {
  return JSON.stringify([table.database, table.schema, table.name]);
}

function listSome(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `${shown} and ${items.length - MAX_LISTED} more` : shown;
}

function judged(name: string, ok: boolean, detail: string, error: DrillErrorName): DrillJudgement {
  return ok ? { name, ok, detail } : { name, ok, detail, error };
}

/** The restored tables are exactly the manifest's, database by database. */
export function checkTableSet(expected: readonly TableRef[], found: readonly TableRef[]): DrillJudgement {
  const foundKeys = new Set(found.map(tableKey));
  const expectedKeys = new Set(expected.map(tableKey));
  const missing = expected.filter((table) => !foundKeys.has(tableKey(table))).map(tableDisplayName);
  const unexpected = found.filter((table) => !expectedKeys.has(tableKey(table))).map(tableDisplayName);
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`${missing.length} table(s) of the manifest missing after the restore: ${listSome(missing)}`);
  if (unexpected.length > 0) problems.push(`${unexpected.length} table(s) restored that the manifest does not list: ${listSome(unexpected)}`);
  const detail = problems.length > 0 ? problems.join('; ') : `${expected.length} table(s), the manifest's set`;
  return judged('table-set', problems.length === 0, detail, 'TableSetMismatch');
}

/**
 * Every exact count of the manifest equals the restored table's rows. Estimated counts (large
 * tables) are reported, not compared; a table the restore lacks is the table-set check's
 * business and is skipped here.
 */
export function checkRowCounts(expected: readonly ManifestTable[], foundRows: ReadonlyMap<string, number>): DrillJudgement {
  const mismatches: string[] = [];
  const estimates: string[] = [];
  let compared = 0;
  for (const table of expected) {
    const found = foundRows.get(tableKey(table));
    if (found === undefined) continue;
    if (!table.exact) {
      estimates.push(`${tableDisplayName(table)} ~${table.rows} estimated, ${found} restored`);
      continue;
    }
    compared++;
    if (found !== table.rows) mismatches.push(`${tableDisplayName(table)}: expected ${table.rows} rows (manifest), found ${found}`);
  }
  const parts = mismatches.length > 0
    ? [`${mismatches.length} of ${compared} exact count(s) differ: ${listSome(mismatches)}`]
    : [`${compared} exact count(s) equal the manifest's`];
  if (estimates.length > 0) parts.push(`${estimates.length} estimated count(s) not compared: ${listSome(estimates)}`);
  return judged('row-counts', mismatches.length === 0, parts.join('; '), 'RowCountMismatch');
}

/** Every extension the manifest records is installed in the restored database. */
export function checkExtensions(
  expected: Manifest['extensions'],
  found: readonly { readonly database: string; readonly name: string }[],
): DrillJudgement {
  const present = new Set(found.map((extension) => JSON.stringify([extension.database, extension.name])));
  const missing = expected
    .filter((extension) => !present.has(JSON.stringify([extension.database, extension.name])))
    .map((extension) => `${extension.name} ${extension.version} (database ${extension.database})`);
  const detail = missing.length > 0
    ? `${missing.length} extension(s) of the manifest missing after the restore: ${listSome(missing)}`
    : `${expected.length} extension(s) present`;
  return judged('extensions', missing.length === 0, detail, 'ExtensionMissing');
}

/** What a configured SQL check gave: its single value as text, or the error the server raised. */
export type SqlOutcome = { readonly output: string } | { readonly error: string };

const TRUE_VALUES = new Set(['t', 'true', '1']);

/** A configured check passes when its query returns a single true (`t`, `true` or `1`). */
export function checkSql(check: DrillCheck, database: string, outcome: SqlOutcome): DrillJudgement {
  const name = `sql:${check.name}`;
  if ('error' in outcome) return judged(name, false, `failed on database ${database}: ${outcome.error}`, 'DrillCheckFailed');
  const value = outcome.output.trim();
  const ok = TRUE_VALUES.has(value.toLowerCase());
  const shown = value === '' ? 'no row' : value.includes('\n') ? `${value.split('\n').length} rows` : value;
  return judged(name, ok, ok ? `true on database ${database}` : `returned ${shown} on database ${database}, expected true`, 'DrillCheckFailed');
}

/** Seconds as a person reads them: milliseconds for short figures, whole units for long ones. */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Number(seconds.toFixed(3))}s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return [h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', s > 0 ? `${s}s` : ''].filter(Boolean).join(' ') + ` (${Math.round(seconds)}s)`;
}

/** The measured RTO (download + restore + checks) is within the tier's RTO. */
export function checkRto(measuredSeconds: number, targetSeconds: number): DrillJudgement {
  const ok = measuredSeconds <= targetSeconds;
  const detail = ok
    ? `measured RTO ${formatSeconds(measuredSeconds)} within the tier's RTO of ${formatSeconds(targetSeconds)}`
    : `measured RTO ${formatSeconds(measuredSeconds)} exceeds the tier's RTO of ${formatSeconds(targetSeconds)}`;
  return judged('rto', ok, detail, 'RtoExceeded');
}

/** The error a set of checks amounts to: the most basic failure by DRILL_ERROR_NAMES, or undefined when all pass. */
export function drillVerdict(checks: readonly DrillJudgement[]): { name: DrillErrorName; message: string } | undefined {
  const failed = checks.filter((check) => !check.ok);
  if (failed.length === 0) return undefined;
  const rank = (check: DrillJudgement) => DRILL_ERROR_NAMES.indexOf(check.error ?? 'DrillCheckFailed');
  const first = [...failed].sort((a, b) => rank(a) - rank(b))[0] as DrillJudgement;
  return { name: first.error ?? 'DrillCheckFailed', message: failed.map((check) => `${check.name}: ${check.detail}`).join('; ') };
}
