/**
 * A MySQL/MariaDB point-in-time restore drill (issue 15), as the drill task runs it
 * (worker/binlog-drill-main.ts): from the primary or the offsite copy, the source restored to a
 * point chosen alternately — the end of the archive, then a random second of the newest window's
 * last day (lib/binlog/drill.ts) — into a throwaway MariaDB server (lib/drill/servers.ts, as the
 * logical drill's) with restoreBinlogAt (the base dump, then each database's archived binary
 * logs from its coordinates with --stop-datetime), then judged:
 * - the table set equals the base dump's manifest tables;
 * - the manifest's exact row counts, for a target at the base's own finish; at any later point the
 *   counts are reported, not compared (the tables hold the writes since the dump);
 * - the source's drill SQL checks (lib/drill/checks.ts);
 * - the measured RTO (plan + base restore + replay + checks) against the tier's.
 * The report goes to `drills/<source>/<drillId>/report.json` like every drill (engine `binlog`),
 * failed drills too; the failed drill then throws its error (TableSetMismatch, RowCountMismatch,
 * DrillCheckFailed, RtoExceeded, or the restore's own: BinlogGap, ReplayFailed, ArchiveCorrupt…)
 * with the report attached as `report`. No verified dump with coordinates, or no restorable
 * window, is `NoVerifiedRun` before anything is restored (and no report: there is no run to name).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listRuns, readRun, type RunRecord } from '../catalog/catalog';
import { recentDrillReports } from '../catalog/drills';
import type { Source } from '../config/types';
import { DRILL_REPORT_SCHEMA_VERSION, serializeDrillReport, type DrillReport } from '../domain/drill-report';
import { lifeboatError } from '../domain/errors';
import { drillReportKey } from '../domain/layout';
import type { ManifestTable } from '../domain/manifest';
import { formatRunId } from '../domain/run-id';
import { LIFEBOAT_VERSION } from '../domain/version';
import { checkRowCounts, checkRto, checkSql, checkTableSet, drillVerdict, tableDisplayName, tableKey, type DrillJudgement, type TableRef } from '../drill/checks';
import { startDrillServer, type DrillServer, type DrillServerFactory } from '../drill/servers';
import { engineOf } from '../engines/registry';
import { readBinlogArchive } from './archive-read';
import { BINLOG_DRILL_ENGINE, BINLOG_DRILL_NOT_CHECKED, chooseBinlogDrillTarget, countsComparable, targetText, type BinlogDrillTarget } from './drill';
import { basesOf, describeWindows, planBinlogRestore, restoreWindows } from './restore-plan';
import { restoreBinlogAt, type BinlogRestoreResult } from './restore-at';

/** How many of a source's newest drill reports are searched for the previous binlog drill (a source with dumps has logical drills too). */
const DRILL_REPORTS_SEARCHED = 10;
/** Exact counts are read this many tables per query. */
const COUNT_BATCH = 100;
/** How many counted tables a `reported` row-counts detail names. */
const COUNTS_LISTED = 5;

export interface BinlogDrillRunOptions {
  readonly source: Source;
  readonly from: 'primary' | 'offsite';
  /** The client and bucket the runs and the archive are read from (the offsite ones for a drill from offsite). */
  readonly s3: S3Client;
  readonly bucket: string;
  /** Where the report goes and the previous reports are read: the primary bucket. */
  readonly reportS3: S3Client;
  readonly reportBucket: string;
  /** `mariadb-binlog`, or the image's Oracle `mysqlbinlog` for a MySQL source. @default - source.binlog.binlogClient */
  readonly binlogClient?: string;
  /** @default - the engine's first SQL client (mariadb, mysql) */
  readonly sqlClient?: string;
  /** A directory of the task's own: the drill downloads under it and removes what it made. @default - the OS temp dir */
  readonly scratch?: string;
  /** @default - startDrillServer: the installed MariaDB, as the logical drill's */
  readonly startServer?: DrillServerFactory;
  /** A target instead of the alternating choice (operators, tests). @default - chooseBinlogDrillTarget */
  readonly at?: BinlogDrillTarget;
  readonly now?: () => Date;
  /** @default Math.random */
  readonly random?: () => number;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export type BinlogDrillError = Error & { report?: DrillReport };

/** Runs the drill and writes its report; throws the failed drill's error after the report is written. */
export async function runBinlogDrillRun(opts: BinlogDrillRunOptions): Promise<DrillReport> {
  const now = opts.now ?? (() => new Date());
  const log = opts.log ?? (() => undefined);
  const { source } = opts;
  const binlog = source.binlog;
  if (!binlog) throw lifeboatError('InvalidInput', `source ${source.name} archives no binary logs (valid: a MySQL/MariaDB source with method 'pitr')`);
  const startedAt = now();
  const [runs, archive] = await Promise.all([
    listRuns(opts.s3, opts.bucket, source.name),
    readBinlogArchive({ s3: opts.s3, bucket: opts.bucket, source: source.name, signal: opts.signal }),
  ]);
  const bases = basesOf(runs, archive);
  const windows = restoreWindows(bases);
  const newestBase = bases.at(-1);
  if (!newestBase || (windows.length === 0 && !newestBase.missing)) {
    throw lifeboatError('NoVerifiedRun',
      `${source.name}: nothing to drill in the ${opts.from} copy s3://${opts.bucket}/: ${describeWindows(windows)} ` +
      `(verified dumps with binlog coordinates: ${bases.length}, archived binary logs: ${archive.entries.length})`);
  }
  const previous = opts.at === undefined
    ? (await recentDrillReports(opts.reportS3, opts.reportBucket, source.name, DRILL_REPORTS_SEARCHED)).find((report) => report.engine === BINLOG_DRILL_ENGINE)
    : undefined;
  const target = opts.at ?? chooseBinlogDrillTarget(previous?.binlog?.target, windows, opts.random ?? Math.random);
  log(`${source.name}: binlog PITR drill from ${opts.from} to ${targetText(target)}, window ${describeWindows(windows)}`);

  const engine = engineOf(source.engine);
  const scratch = mkdtempSync(join(opts.scratch ?? tmpdir(), 'binlog-drill-'));
  const timings = { planSeconds: 0, downloadSeconds: 0, restoreSeconds: 0, replaySeconds: 0, checkSeconds: 0 };
  const checks: DrillJudgement[] = [];
  let restored: BinlogRestoreResult | undefined;
  let server: DrillServer | undefined;
  let serverInfo: DrillReport['server'];
  let failure: Error | undefined;
  let comparable = false;
  let base: RunRecord | undefined;
  try {
    // The plan first (pure, from what was read): a target no base reaches fails here, before a server starts.
    const plan = planBinlogRestore(source.name, runs, archive, target);
    server = await (opts.startServer ?? startDrillServer)(source.engine, majorOfRun(runs, plan.base.runId));
    const version = (await server.query(engine.sql.versionQuery, engine.sql.adminDatabase)).trim();
    serverInfo = { version: version || 'unknown', major: Number(/^(\d+)/.exec(version)?.[1]) || 1 };
    const workDir = join(scratch, 'restore');
    mkdirSync(workDir);
    restored = await restoreBinlogAt({
      s3: opts.s3, bucket: opts.bucket, source: source.name, target: server.target, at: target,
      binlogClient: opts.binlogClient ?? binlog.binlogClient, sqlClient: opts.sqlClient ?? (engine.sqlClients[0] as string),
      workDir, log, signal: opts.signal,
    });
    const restore = restored.restore;
    timings.planSeconds = restored.timings.planSeconds;
    timings.downloadSeconds = restore ? (restore.downloadMs + restore.verifyMs) / 1000 : 0;
    timings.restoreSeconds = Math.max(0, restored.timings.restoreSeconds - timings.downloadSeconds);
    timings.replaySeconds = restored.timings.replaySeconds;
    const baseRunId = restored.plan.base.runId;
    base = runs.find((run) => run.runId === baseRunId) ?? await readRun(opts.s3, opts.bucket, source.name, baseRunId);
    comparable = countsComparable(target, restored.plan.base.finishedAt);

    const checksStarted = performance.now();
    checks.push(...await inspect(server, base, source, target, comparable, restored.plan.base.finishedAt));
    timings.checkSeconds = (performance.now() - checksStarted) / 1000;
  } catch (error) {
    failure = error as Error;
  } finally {
    await server?.stop().catch((error: unknown) => log(`${source.name}: stopping the throwaway server failed: ${(error as Error).message}`));
    rmSync(scratch, { recursive: true, force: true });
  }

  const measuredRtoSeconds = timings.planSeconds + timings.downloadSeconds + timings.restoreSeconds + timings.replaySeconds + timings.checkSeconds;
  if (!failure) checks.push(checkRto(measuredRtoSeconds, source.tier.rtoSeconds));
  const verdict = drillVerdict(checks);
  const runId = restored?.plan.base.runId ?? newestBase.runId;
  const error = failure
    ? { name: failure.name || 'Error', message: failure.message }
    : verdict && { name: verdict.name, message: `binlog PITR drill of ${source.name} to ${targetText(target)} (base ${runId}) failed: ${verdict.message}` };
  const notChecked = [
    ...(restored && !comparable ? [`row counts: reported, not compared: the target ${targetText(target)} is after the base's finish (${restored.plan.base.finishedAt.toISOString()}), and the manifest's exact counts are those of the dump's snapshot`] : []),
    BINLOG_DRILL_NOT_CHECKED,
  ];
  const report: DrillReport = {
    schemaVersion: DRILL_REPORT_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: source.name,
    drillId: formatRunId(startedAt),
    runId,
    from: opts.from,
    engine: BINLOG_DRILL_ENGINE,
    ...(serverInfo ? { server: serverInfo } : {}),
    startedAt: startedAt.toISOString(),
    finishedAt: now().toISOString(),
    timings,
    binlog: {
      target: targetText(target),
      baseRun: runId,
      files: (restored?.plan.files ?? []).map((file) => `${file.file}${file.partial ? ' (partial)' : ''}`),
      bytes: Math.max(0, restored?.plan.bytes ?? 0),
      replaySeconds: timings.replaySeconds,
      rowCounts: comparable ? 'compared' : 'reported',
      notChecked,
    },
    measuredRtoSeconds,
    rtoTargetSeconds: source.tier.rtoSeconds,
    checks: checks.map(({ name, ok, detail }) => ({ name, ok, detail })),
    verdict: error ? 'failed' : 'ok',
    ...(error ? { error } : {}),
  };
  const key = drillReportKey(source.name, report.drillId);
  // Written once (the bucket refuses writes that could replace an object): a drill id is new.
  await opts.reportS3.send(new PutObjectCommand({
    Bucket: opts.reportBucket, Key: key, Body: serializeDrillReport(report), ContentType: 'application/json', IfNoneMatch: '*',
  }));
  log(`${source.name}: binlog PITR drill ${report.verdict}, report s3://${opts.reportBucket}/${key}`);
  if (error) {
    const thrown: BinlogDrillError = failure ?? new Error(error.message);
    thrown.name = error.name;
    thrown.report = report;
    throw thrown;
  }
  return report;
}

function majorOfRun(runs: readonly RunRecord[], runId: string): number {
  return runs.find((run) => run.runId === runId)?.manifest?.server.major ?? 0;
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`binlog drill: could not read ${what} from the restored server (got ${JSON.stringify(text.slice(0, 200))})`);
  }
}

/** The restored server against the base's manifest and the source's SQL checks. */
async function inspect(
  server: DrillServer, base: RunRecord, source: Source, target: BinlogDrillTarget, comparable: boolean, baseFinishedAt: Date,
): Promise<DrillJudgement[]> {
  const manifest = base.manifest;
  if (!manifest) throw lifeboatError('RunNotVerified', `run ${source.name}/${base.runId} has no manifest`);
  const sql = engineOf(source.engine).drill;
  const databases = [...new Set(manifest.artifacts.map((artifact) => artifact.database))];
  const found: TableRef[] = [];
  for (const database of databases) {
    const rows = parseJson<[string, string][]>(await server.query(sql.listTables, database), `the tables of ${database}`);
    found.push(...rows.map(([schema, name]) => ({ database, schema, name })));
  }
  const expected = manifest.tables.filter((table) => databases.includes(table.database));
  const checks: DrillJudgement[] = [checkTableSet(expected, found)];

  const present = new Set(found.map(tableKey));
  const counted = new Map<string, number>();
  for (const database of databases) {
    const countable = expected.filter((table) => table.database === database && present.has(tableKey(table)));
    for (let start = 0; start < countable.length; start += COUNT_BATCH) {
      const batch = countable.slice(start, start + COUNT_BATCH);
      const rows = parseJson<[number, number | string][]>(await server.query(sql.countRows(batch), database), `row counts of ${database}`);
      for (const [index, count] of rows) counted.set(tableKey(batch[index] as ManifestTable), Number(count));
    }
  }
  if (comparable) {
    checks.push(checkRowCounts(expected, counted));
  } else {
    const listed = expected.filter((table) => counted.has(tableKey(table)))
      .map((table) => `${tableDisplayName(table)} ${counted.get(tableKey(table))} (dump: ${table.exact ? '' : '~'}${table.rows})`);
    const shown = listed.slice(0, COUNTS_LISTED).join(', ') + (listed.length > COUNTS_LISTED ? ` and ${listed.length - COUNTS_LISTED} more` : '');
    checks.push({
      name: 'row-counts',
      ok: true,
      detail: `${listed.length} table(s) counted, not compared: the target ${targetText(target)} is after the base's finish (${baseFinishedAt.toISOString()}), ` +
        `so the tables hold the writes since the dump: ${shown || 'none'}`,
    });
  }
  for (const check of source.drillChecks) {
    const database = check.database ?? source.connection.databases[0] ?? databases[0] as string;
    const outcome = await server.query(check.sql, database).then(
      (output) => ({ output }),
      (error: unknown) => ({ error: (error as Error).message }),
    );
    checks.push(checkSql(check, database, outcome));
  }
  return checks;
}
