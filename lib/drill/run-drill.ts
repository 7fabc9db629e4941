/**
 * A restore drill: the latest verified run (or a chosen one) of a source is restored into a
 * throwaway server of at least the source's major version (manifest `server.major`; never an
 * older one: `NoDrillServer` names both) with the restore library, and the result is
 * compared with what the manifest recorded at dump time — the set of tables, every exact row
 * count, the extensions, the source's own SQL checks — and the measured RTO (download +
 * restore + checks) with the tier's. The verifier proves an archive reads to its end; only a
 * drill proves it restores into what was dumped (a manifest the verifier trusts is checked here).
 *
 * Contract: the report (drills/<source>/<drillId>/report.json) is written for every drill that
 * got as far as choosing a run, failed ones included; a failed drill then throws an Error named
 * for the state machine (checks.ts DRILL_ERROR_NAMES, or the restore's or server's own error),
 * with the report attached as `report`. The throwaway server is always stopped.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Source } from '../config/types';
import { engineOf } from '../engines/registry';
import { DRILL_REPORT_SCHEMA_VERSION, serializeDrillReport, type DrillReport } from '../domain/drill-report';
import { lifeboatError } from '../domain/errors';
import { drillReportKey } from '../domain/layout';
import type { Manifest, ManifestTable } from '../domain/manifest';
import { formatRunId } from '../domain/run-id';
import { LIFEBOAT_VERSION } from '../domain/version';
import { chooseRun } from '../restore/choose-run';
import { restoreRun } from '../restore/restore';
import {
  checkExtensions, checkRowCounts, checkRto, checkSql, checkTableSet, drillVerdict, tableKey,
  type DrillJudgement, type SqlOutcome, type TableRef,
} from './checks';
import { startDrillServer, type DrillServer, type DrillServerFactory } from './servers';

export interface RunDrillOptions {
  readonly s3: S3Client;
  /** The bucket the run is restored from. */
  readonly bucket: string;
  readonly source: Source;
  /**
   * Which copy `bucket` is; recorded in the report.
   * @default 'primary'
   */
  readonly from?: 'primary' | 'offsite';
  /** @default - the latest verified run */
  readonly runId?: string;
  /**
   * Where report.json is written.
   * @default - `bucket`
   */
  readonly reportBucket?: string;
  /** @default - startDrillServer: the installed PostgreSQL or the embedded newer one (servers.ts), or the installed MariaDB */
  readonly startServer?: DrillServerFactory;
  /** @default - the clock */
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** Where artifacts are downloaded to. @default - the restore library's temp dir */
  readonly workDir?: string;
}

export type DrillError = Error & { report?: DrillReport };

/** Exact counts are read this many tables per query. */
const COUNT_BATCH = 100;

export async function runDrill(opts: RunDrillOptions): Promise<DrillReport> {
  const now = opts.now ?? (() => new Date());
  const log = opts.log ?? (() => undefined);
  const startServer = opts.startServer ?? startDrillServer;
  const started = now();
  const source = opts.source;
  const run = await chooseRun(opts.s3, opts.bucket, source.name, { runId: opts.runId });
  const manifest = run.manifest as Manifest;
  log(`drill ${source.name}: restoring run ${run.runId} (${manifest.engine} ${manifest.server.version}) from ${opts.from ?? 'primary'} s3://${opts.bucket}/`);

  const timings = { downloadSeconds: 0, restoreSeconds: 0, checkSeconds: 0 };
  const checks: DrillJudgement[] = [];
  let serverInfo: DrillReport['server'];
  let failure: Error | undefined;
  let server: DrillServer | undefined;
  try {
    server = await startServer(manifest.engine, manifest.server.major).catch((error: unknown) => {
      throw (error as Error).name === 'NoDrillServer'
        ? lifeboatError('NoDrillServer', `run ${source.name}/${run.runId} was dumped from ${manifest.engine} ${manifest.server.version}: ${(error as Error).message}`, error)
        : error;
    });
    // Before the restore: only the server's own database exists.
    const engine = engineOf(manifest.engine);
    const version = (await server.query(engine.sql.versionQuery, engine.sql.adminDatabase)).trim();
    const major = majorOf(version);
    serverInfo = { version: version || 'unknown', major: major ?? manifest.server.major };
    log(`drill ${source.name}: throwaway ${manifest.engine} ${serverInfo.version} on port ${server.target.port} (the source was ${manifest.engine} ${manifest.server.version})`);
    // Whatever server the factory started: a PostgreSQL dump is never restored into an older
    // major than its source's (a pass there would prove nothing about the real recovery).
    // MySQL and MariaDB majors do not compare (a MariaDB server restores MySQL dumps). A source
    // before 10 has a two-part major (9.6): its first part is what a server's major compares with.
    if (engine.majorsOrdered && (major === undefined || major < Math.floor(manifest.server.major))) {
      throw lifeboatError('NoDrillServer',
        `run ${source.name}/${run.runId} was dumped from postgres ${manifest.server.version} (major ${manifest.server.major}); ` +
          `the throwaway server is postgres ${serverInfo.version} (major ${major ?? 'unknown'}), older: a drill never restores into an older major than the source's`);
    }

    // The roles first, as a real recovery would: the restored objects keep their owners.
    const globals = engine.hasGlobals && manifest.globals !== undefined;
    const restored = await restoreRun({ s3: opts.s3, bucket: opts.bucket, run, target: server.target, globals, log, signal: opts.signal, workDir: opts.workDir });
    timings.downloadSeconds = (restored.downloadMs + restored.verifyMs) / 1000;
    timings.restoreSeconds = (restored.restoreMs + (restored.globalsMs ?? 0)) / 1000;

    const checksStarted = performance.now();
    checks.push(...await inspectRestore(server, manifest, source));
    timings.checkSeconds = (performance.now() - checksStarted) / 1000;
  } catch (error) {
    failure = error as Error;
  } finally {
    await server?.stop().catch((error: unknown) => log(`drill ${source.name}: stopping the throwaway server failed: ${(error as Error).message}`));
  }

  const measuredRtoSeconds = timings.downloadSeconds + timings.restoreSeconds + timings.checkSeconds;
  if (!failure) checks.push(checkRto(measuredRtoSeconds, source.tier.rtoSeconds));
  const verdict = drillVerdict(checks);
  const error = failure
    ? { name: failure.name || 'Error', message: failure.message }
    : verdict && { name: verdict.name, message: `restore drill of ${source.name} (run ${run.runId}) failed: ${verdict.message}` };
  const report: DrillReport = {
    schemaVersion: DRILL_REPORT_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: source.name,
    drillId: formatRunId(started),
    runId: run.runId,
    from: opts.from ?? 'primary',
    engine: manifest.engine,
    ...(serverInfo ? { server: serverInfo } : {}),
    startedAt: started.toISOString(),
    finishedAt: now().toISOString(),
    timings,
    measuredRtoSeconds,
    rtoTargetSeconds: source.tier.rtoSeconds,
    checks: checks.map(({ name, ok, detail }) => ({ name, ok, detail })),
    verdict: error ? 'failed' : 'ok',
    ...(error ? { error } : {}),
  };
  const key = drillReportKey(source.name, report.drillId);
  const reportBucket = opts.reportBucket ?? opts.bucket;
  // Written once (the bucket refuses writes that could replace an object): a drill id is new.
  await opts.s3.send(new PutObjectCommand({
    Bucket: reportBucket, Key: key, Body: serializeDrillReport(report), ContentType: 'application/json', IfNoneMatch: '*',
  }));
  log(`drill ${source.name}: ${report.verdict}, report s3://${reportBucket}/${key}`);

  if (error) {
    const thrown: DrillError = failure ?? new Error(error.message);
    thrown.name = error.name;
    thrown.report = report;
    throw thrown;
  }
  return report;
}

function majorOf(version: string): number | undefined {
  const major = Number(/^(\d+)/.exec(version)?.[1]);
  return Number.isInteger(major) && major > 0 ? major : undefined;
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`drill: could not read ${what} from the restored server (got ${JSON.stringify(text.slice(0, 200))})`);
  }
}

/** Reads the restored server and judges it against the manifest and the source's SQL checks. */
async function inspectRestore(server: DrillServer, manifest: Manifest, source: Source): Promise<DrillJudgement[]> {
  const engine = engineOf(manifest.engine).drill;
  const databases = [...new Set(manifest.artifacts.map((artifact) => artifact.database))];
  const found: TableRef[] = [];
  for (const database of databases) {
    const rows = parseJson<[string, string][]>(await server.query(engine.listTables, database), `the tables of ${database}`);
    found.push(...rows.map(([schema, name]) => ({ database, schema, name })));
  }
  const expected = manifest.tables.filter((table) => databases.includes(table.database));
  const checks = [checkTableSet(expected, found)];

  const present = new Set(found.map(tableKey));
  const foundRows = new Map<string, number>();
  for (const database of databases) {
    const countable = expected.filter((table) => table.database === database && present.has(tableKey(table)));
    for (let start = 0; start < countable.length; start += COUNT_BATCH) {
      const batch = countable.slice(start, start + COUNT_BATCH);
      const counted = parseJson<[number, number | string][]>(await server.query(engine.countRows(batch), database), `row counts of ${database}`);
      for (const [index, rows] of counted) foundRows.set(tableKey(batch[index] as ManifestTable), Number(rows));
    }
  }
  checks.push(checkRowCounts(expected, foundRows));

  if (engine.listExtensions !== undefined) {
    const extensions: { database: string; name: string }[] = [];
    for (const database of databases) {
      const names = parseJson<string[]>(await server.query(engine.listExtensions, database), `the extensions of ${database}`);
      extensions.push(...names.map((name) => ({ database, name })));
    }
    checks.push(checkExtensions(manifest.extensions, extensions));
  } else if (manifest.extensions.length > 0) {
    checks.push(checkExtensions(manifest.extensions, []));
  }

  for (const check of source.drillChecks) {
    const database = check.database ?? source.connection.databases[0] ?? databases[0] as string;
    const outcome: SqlOutcome = await server.query(check.sql, database).then(
      (output) => ({ output }),
      (error: unknown) => ({ error: (error as Error).message }),
    );
    checks.push(checkSql(check, database, outcome));
  }
  return checks;
}
