/**
 * A PITR restore drill as the drill task runs it (worker/pitr-drill-main.ts): from the primary
 * or the offsite copy of the source's repository, to a point chosen alternately — the end of
 * the archive (`latest`), then a random second of the last day of the window — into a
 * throwaway server of the source's major (lib/pitr/drill.ts: recovery checked, pg_amcheck,
 * the drill checks, the measured RTO), and the evidence written to
 * `drills/<source>/<drillId>/report.json` like every drill (engine `pgbackrest`), for failed
 * drills too. A failed drill then throws its error (RecoveryTargetMissed is `DrillCheckFailed`,
 * an RTO overrun `RtoExceeded`) so the state machine alarms.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { listRuns } from '../catalog/catalog';
import { recentDrillReports } from '../catalog/drills';
import type { Source } from '../config/types';
import { DRILL_REPORT_SCHEMA_VERSION, serializeDrillReport, type DrillReport } from '../domain/drill-report';
import { lifeboatError } from '../domain/errors';
import { drillReportKey, pitrCatalogName } from '../domain/layout';
import { formatRunId } from '../domain/run-id';
import { LIFEBOAT_VERSION } from '../domain/version';
import type { PgServer } from '../servers/postgres';
import { listArchivedSegments, restorableWindow } from './archive-state';
import { readBackupSets } from './backup-info';
import { runPitrDrill } from './drill';
import { checkMarker } from './marker';
import type { PgBackRest } from './pgbackrest';
import { setForTime } from './pgbackrest-info';
import { planPitrRestore } from './restore-plan';
import { PITR_DRILL_ENGINE } from './restore-at';

const DAY_MS = 86_400_000;
/** As the watchdog's: a gap counts once the segment after it has been in the archive this long. */
export const GAP_SETTLE_SECONDS = 300;

export interface PitrDrillRunOptions {
  readonly source: Source;
  readonly from: 'primary' | 'offsite';
  /** The client and bucket the repository is read from (the offsite ones for a drill from offsite). */
  readonly s3: S3Client;
  readonly bucket: string;
  /** Where the report goes: the primary bucket, the catalog of drills. */
  readonly reportS3: S3Client;
  readonly reportBucket: string;
  /** pgBackRest for the same repository. */
  readonly runner: PgBackRest;
  /** A directory of the task's own: the drill restores under it and removes what it made. */
  readonly scratch: string;
  readonly startServer: (dataDir: string) => Promise<PgServer>;
  /** The bin directory (pg_amcheck) of the set's PostgreSQL major, as its run's manifest names it. */
  readonly pgBinDirFor: (major: number) => Promise<string>;
  readonly now?: () => Date;
  /** @default Math.random */
  readonly random?: () => number;
  /** How long a gap's later segments must have been archived before the gap counts (the watchdog's settle). @default 300 */
  readonly gapSettleSeconds?: number;
  readonly log?: (line: string) => void;
}

/** Runs the drill and writes its report; throws the failed drill's error after the report is written. */
export async function runPitrDrillRun(opts: PitrDrillRunOptions): Promise<DrillReport> {
  const now = opts.now ?? (() => new Date());
  const log = opts.log ?? (() => undefined);
  const pitr = opts.source.pitr;
  if (!pitr) throw lifeboatError('InvalidInput', `source ${opts.source.name} has no method 'pitr'`);
  const startedAt = now();
  const location = { s3: opts.s3, bucket: opts.bucket, repoPath: `/pitr/${opts.source.name}`, stanza: pitr.stanza };
  const [segments, sets] = await Promise.all([listArchivedSegments(location), readBackupSets(location)]);
  const window = restorableWindow(sets, segments);
  if (!window.earliest || !window.latest || segments.length === 0) {
    throw lifeboatError('NoVerifiedRun', `${opts.source.name}: the ${opts.from} repository s3://${opts.bucket}${location.repoPath} has no restorable window (sets: ${sets.length}, archived segments: ${segments.length})`);
  }
  const previous = (await recentDrillReports(opts.reportS3, opts.reportBucket, opts.source.name, 10)).find((report) => report.engine === PITR_DRILL_ENGINE);
  const target = chooseTarget(previous?.pitr?.target, window.earliest, window.latest, opts.random ?? Math.random);
  const set = target === 'latest' ? sets.at(-1) : setForTime(sets, target.time);
  const runs = await listRuns(opts.s3, opts.bucket, pitrCatalogName(opts.source.name));
  const run = runs.find((candidate) => candidate.status === 'verified' && candidate.manifest?.pitr?.label === set?.label);
  if (!set || !run) {
    throw lifeboatError('NoVerifiedRun', `${opts.source.name}: no verified PITR run of set ${set?.label ?? '(none)'} for target ${target === 'latest' ? 'latest' : target.time.toISOString()} in s3://${opts.bucket}/runs/${pitrCatalogName(opts.source.name)}/`);
  }
  const targetText = target === 'latest' ? 'latest' : target.time.toISOString();
  // A restore cannot pass a gap: the drill fails WalGap naming the missing segment, with its report, and restores nothing.
  // A gap whose later segments all arrived within the settle time may be the host's asynchronous push landing out of
  // order (archive-async): the drill then plans on what precedes it, as the watchdog waits before counting it.
  let usable = segments;
  let plan = planPitrRestore(sets, usable, target);
  const gapAt = /gap at ([0-9A-F]{24})/.exec(plan.problem ?? '')?.[1];
  if (gapAt && !segments.some((segment) => segment.name > gapAt && startedAt.getTime() - segment.archivedAt.getTime() >= (opts.gapSettleSeconds ?? GAP_SETTLE_SECONDS) * 1000)) {
    usable = segments.filter((segment) => segment.name < gapAt);
    plan = planPitrRestore(sets, usable, target);
    log(`${opts.source.name}: the archive lacks ${gapAt}, but every later segment arrived in the last ${opts.gapSettleSeconds ?? GAP_SETTLE_SECONDS}s (an asynchronous push may still deliver it): the drill stops before it`);
  }
  if (plan.problem && /\bgap\b/.test(plan.problem)) {
    await writeReport(opts, failedBeforeRestore(opts, startedAt, now(), run.runId, targetText, set.label, { name: 'WalGap', message: `PITR drill of ${opts.source.name} to ${targetText}: ${plan.problem}` }));
    throw lifeboatError('WalGap', `PITR drill of ${opts.source.name} to ${targetText}: ${plan.problem}`);
  }
  log(`${opts.source.name}: PITR drill from ${opts.from} to ${targetText}, set ${set.label} (run ${run.runId}), window ${window.earliest.toISOString()} to ${window.latest.toISOString()}`);
  const drilled = await runPitrDrill({
    runner: opts.runner,
    target,
    dataDir: join(opts.scratch, `pitr-drill-${formatRunId(startedAt)}`),
    startServer: opts.startServer,
    pgBinDir: await opts.pgBinDirFor((run.manifest as NonNullable<typeof run.manifest>).server.major),
    database: opts.source.connection.databases[0],
    drillChecks: opts.source.drillChecks.map((check) => ({ name: check.name, sql: check.sql, ...(check.database ? { database: check.database } : {}) })),
    rtoSeconds: opts.source.tier.rtoSeconds,
    newestSegment: usable.at(-1)?.name,
    ...(pitr.marker ? { extraChecks: async (psql: (sql: string) => Promise<string>) => [await checkMarker(psql, target, window.latest)] } : {}),
  });
  const failedCheck = drilled.checks.find((check) => !check.ok);
  const report: DrillReport = {
    schemaVersion: DRILL_REPORT_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: opts.source.name,
    drillId: formatRunId(startedAt),
    runId: run.runId,
    from: opts.from,
    engine: PITR_DRILL_ENGINE,
    ...(drilled.server ? { server: drilled.server } : {}),
    startedAt: startedAt.toISOString(),
    finishedAt: now().toISOString(),
    timings: { downloadSeconds: 0, restoreSeconds: drilled.timings.restoreSeconds, replaySeconds: drilled.timings.replaySeconds, checkSeconds: drilled.timings.checkSeconds },
    pitr: { target: targetText, set: drilled.set ?? set.label },
    measuredRtoSeconds: drilled.measuredRtoSeconds,
    rtoTargetSeconds: drilled.rtoSeconds,
    checks: drilled.checks.map(({ name, ok, detail }) => ({ name, ok, detail })),
    verdict: drilled.verdict,
    ...(failedCheck ? { error: { name: failedCheck.name === 'rto' ? 'RtoExceeded' : 'DrillCheckFailed', message: `${failedCheck.name}: ${failedCheck.detail}` } } : {}),
  };
  await writeReport(opts, report);
  if (report.error) throw lifeboatError(report.error.name as 'RtoExceeded' | 'DrillCheckFailed', `PITR drill of ${report.source} to ${targetText}: ${report.error.message}`);
  return report;
}

async function writeReport(opts: PitrDrillRunOptions, report: DrillReport): Promise<void> {
  await opts.reportS3.send(new PutObjectCommand({
    Bucket: opts.reportBucket, Key: drillReportKey(report.source, report.drillId), Body: serializeDrillReport(report), ContentType: 'application/json', IfNoneMatch: '*',
  }));
}

/** The report of a drill that failed before restoring anything. */
function failedBeforeRestore(
  opts: PitrDrillRunOptions, startedAt: Date, finishedAt: Date, runId: string, target: string, set: string, error: { name: string; message: string },
): DrillReport {
  return {
    schemaVersion: DRILL_REPORT_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: opts.source.name,
    drillId: formatRunId(startedAt),
    runId,
    from: opts.from,
    engine: PITR_DRILL_ENGINE,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    timings: { downloadSeconds: 0, restoreSeconds: 0, replaySeconds: 0, checkSeconds: 0 },
    pitr: { target, set },
    measuredRtoSeconds: 0,
    rtoTargetSeconds: opts.source.tier.rtoSeconds,
    checks: [{ name: 'wal-continuity', ok: false, detail: error.message }],
    verdict: 'failed',
    error,
  };
}

/**
 * Alternately the end of the archive and a random second of the window's last day (never
 * before its earliest point, never in the archive's last second, which may not be replayable yet).
 */
export function chooseTarget(previous: string | undefined, earliest: Date, latest: Date, random: () => number): { time: Date } | 'latest' {
  if (previous !== 'latest') return 'latest';
  const from = Math.max(earliest.getTime(), latest.getTime() - DAY_MS);
  const to = latest.getTime() - 1000;
  if (to <= from) return 'latest';
  return { time: new Date(Math.floor((from + random() * (to - from)) / 1000) * 1000) };
}
