import { z } from 'zod';
import { parseDocument, serializeDocument } from './json-document';
import { isRunId } from './run-id';

/**
 * drills/<source>/<drillId>/report.json: the evidence of one restore drill — which verified run
 * was restored into a throwaway server, how long it took (the measured RTO), what was checked
 * against the manifest and the verdict. Written for failed drills too. Plain JSON a person can
 * read without Lifeboat; it never holds a secret.
 */
export const DRILL_REPORT_SCHEMA_VERSION = 1;

const runId = z.string().refine(isRunId, { error: 'expected a run id such as 20261126T030000Z' });
const seconds = z.number().nonnegative();

export const drillCheckResultSchema = z.strictObject({
  /** `table-set`, `row-counts`, `extensions`, `sql:<name>`, `rto`. */
  name: z.string().min(1),
  ok: z.boolean(),
  /** One line a person understands: what was expected and what was found. */
  detail: z.string(),
});

export const drillReportSchema = z.strictObject({
  schemaVersion: z.literal(DRILL_REPORT_SCHEMA_VERSION),
  lifeboatVersion: z.string().min(1),
  source: z.string().min(1),
  /** The UTC second the drill started, shaped like a run id: drills of a source sort by time. */
  drillId: runId,
  /** The run that was restored. */
  runId,
  /** Which bucket the run was restored from. */
  from: z.enum(['primary', 'offsite']),
  /** The run's engine, as its manifest names it. */
  engine: z.string().regex(/^[a-z][a-z0-9-]*$/, { error: 'expected an engine name such as postgres, mysql or mariadb' }),
  /** The throwaway server the run was restored into; absent when none could be started. */
  server: z.strictObject({ version: z.string().min(1), major: z.number().int().positive() }).optional(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  timings: z.strictObject({
    /** Fetching the artifacts and checking them against the manifest. */
    downloadSeconds: seconds,
    /** The stock tools restoring the artifacts (and globals). */
    restoreSeconds: seconds,
    /** The drill's own checks on the restored server. */
    checkSeconds: seconds,
    /** Point-in-time recovery: the WAL (or binary logs) replayed after the set's (or base's) restore, up to the target. */
    replaySeconds: seconds.optional(),
    /** Binary-log PITR drills: reading the catalog and the archive's index to plan the restore (part of the measured RTO). */
    planSeconds: seconds.optional(),
    /**
     * RDS/Aurora native drills (engine `rds-native`): the first full read of every table, part of
     * checkSeconds (a restored volume loads its blocks lazily from S3, so an application's first
     * reads are this slow too).
     */
    lazyLoadSeconds: seconds.optional(),
  }),
  /** Point-in-time recovery (engine `pgbackrest`): the target and the set restored. */
  pitr: z.strictObject({
    /** `latest` or an ISO time. */
    target: z.string().min(1),
    set: z.string().min(1),
  }).optional(),
  /**
   * MySQL/MariaDB point-in-time recovery (engine `binlog`, lib/binlog/drill.ts): the target, the
   * base dump restored, the archived binary logs replayed from its coordinates, and what the drill
   * could not check.
   */
  binlog: z.strictObject({
    /** `latest` or an ISO time. */
    target: z.string().min(1),
    /** The verified dump whose coordinates the replay started from (also `runId`). */
    baseRun: runId,
    /** The binary logs replayed, in order (a partial copy of the active file is marked `(partial)`). */
    files: z.array(z.string().min(1)),
    /** Bytes of binary log replayed at most (from the earliest coordinates on). */
    bytes: z.number().int().nonnegative(),
    replaySeconds: seconds,
    /** Whether the manifest's exact row counts were compared (a target at the base's own finish) or only reported. */
    rowCounts: z.enum(['compared', 'reported']),
    /** What this drill does not check, in words (e.g. no marker check exists for MySQL/MariaDB yet). */
    notChecked: z.array(z.string().min(1)),
  }).optional(),
  /** downloadSeconds + restoreSeconds + (replaySeconds) + (planSeconds) + checkSeconds (starting the throwaway server is not counted). */
  measuredRtoSeconds: seconds,
  /** The tier's RTO at the time of the drill. */
  rtoTargetSeconds: seconds,
  checks: z.array(drillCheckResultSchema),
  verdict: z.enum(['ok', 'failed']),
  /** Why the drill failed: the error name the state machine matches, and the message in words. */
  error: z.strictObject({ name: z.string().min(1), message: z.string() }).optional(),
});

export type DrillReport = z.infer<typeof drillReportSchema>;
export type DrillCheckResult = z.infer<typeof drillCheckResultSchema>;

export function parseDrillReport(text: string, key = 'report.json'): DrillReport {
  return parseDocument(drillReportSchema, text, key, 'drill report', 'InvalidDrillReport');
}

export function serializeDrillReport(report: DrillReport): string {
  return serializeDocument(drillReportSchema, report);
}
