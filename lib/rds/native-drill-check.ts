/**
 * The checker of an RDS point-in-time drill (worker/native-drill-main.ts, state CheckDrill of
 * `<app>-native-drill-<source>`): connects to the restored instance with the backup user's
 * credentials, checks its table set against the latest verified logical dump's manifest when the
 * source has one (the catalog, runs/<source>/), runs the source's drill checks, then reads every
 * table once — a restored volume loads its blocks lazily from S3, so the first full read is what
 * an application would feel: it belongs in the measured RTO and is timed on its own (the
 * `lazy-load-scan` check). The measured RTO runs from the restore API call (passed in) to the
 * end of the checks, against the tier's RTO.
 *
 * Contract: the report (drills/<source>/<drillId>/report.json, engine `rds-native`) is written
 * for every drill that reached the checker, failed ones included; a failed drill then throws an
 * error named for the state machine (DRILL_ERROR_NAMES, or `TargetUnreachable`), which deletes
 * the drill instance either way. Nothing here deletes or changes the restored instance.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Client as PgClient, Query as PgQuery } from 'pg';
import { createConnection, type Connection as MysqlConnection } from 'mysql2';
import { latestVerifiedRun } from '../catalog/catalog';
import type { Source } from '../config/types';
import { DRILL_REPORT_SCHEMA_VERSION, serializeDrillReport, type DrillReport } from '../domain/drill-report';
import { lifeboatError, redact } from '../domain/errors';
import { drillReportKey } from '../domain/layout';
import { formatRunId } from '../domain/run-id';
import type { TlsOptions } from '../domain/tls';
import { LIFEBOAT_VERSION } from '../domain/version';
import { checkRto, checkSql, checkTableSet, drillVerdict, formatSeconds, type DrillJudgement, type TableRef } from '../drill/checks';
import { engineOf } from '../engines/registry';
import type { DrillTarget } from './drill-target';

/** The engine of every native drill's report. */
export const NATIVE_DRILL_ENGINE = 'rds-native';

/** One database of the restored instance, through a driver. */
export interface RemoteDatabase {
  /** One statement whose single value comes back as text (JSON documents, booleans). */
  query(sql: string): Promise<string>;
  /** Reads every row `sql` returns and discards it; resolves the number of rows. */
  scan(sql: string): Promise<number>;
  close(): Promise<void>;
}

export interface RemoteEndpoint {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** Never logged, never in a message. */
  readonly password?: string;
  readonly tls: TlsOptions;
}

export type RemoteConnector = (endpoint: RemoteEndpoint, database: string) => Promise<RemoteDatabase>;

export interface NativeDrillCheckOptions {
  readonly source: Source;
  /** The primary bucket: the catalog read, the report written. */
  readonly s3: S3Client;
  readonly bucket: string;
  readonly endpoint: RemoteEndpoint;
  readonly target: DrillTarget;
  /** When the state machine made the restore call. */
  readonly restoreStartedAt: Date;
  /** The drill instance's (or cluster's) identifier. */
  readonly drillIdentifier: string;
  /** @default - the engine's driver (pg, mysql2) */
  readonly connect?: RemoteConnector;
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
}

const valueText = (value: unknown): string =>
  (value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value));

const pgConnector: RemoteConnector = async (endpoint, database) => {
  const ssl = endpoint.tls.mode === 'disable' ? false
    : endpoint.tls.mode === 'verify-full' ? { rejectUnauthorized: true, ...(endpoint.tls.caFile ? { ca: (await import('node:fs')).readFileSync(endpoint.tls.caFile, 'utf8') } : {}) }
      : { rejectUnauthorized: false };
  const connect = async (withSsl: typeof ssl) => {
    const client = new PgClient({ host: endpoint.host, port: endpoint.port, user: endpoint.username, password: endpoint.password, database, ssl: withSsl, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  };
  const client = await connect(ssl).catch((error: Error) => {
    if (endpoint.tls.mode === 'prefer' && /does not support SSL/i.test(error.message)) return connect(false);
    throw error;
  });
  return {
    async query(sql) {
      const result = await client.query({ text: sql, rowMode: 'array' });
      return valueText((result.rows[0] as unknown[] | undefined)?.[0]);
    },
    scan: (sql) => new Promise<number>((resolve, reject) => {
      let rows = 0;
      // A Query with a row listener and no callback keeps no rows: the table streams through.
      const query = new PgQuery(sql);
      query.on('row', () => {
        rows += 1;
      });
      query.on('end', () => resolve(rows));
      query.on('error', reject);
      client.query(query);
    }),
    close: () => client.end(),
  };
};

const mysqlConnector: RemoteConnector = async (endpoint, database) => {
  const ssl = endpoint.tls.mode === 'disable' || endpoint.tls.mode === 'prefer' ? undefined
    : endpoint.tls.mode === 'verify-full' ? { rejectUnauthorized: true, ...(endpoint.tls.caFile ? { ca: (await import('node:fs')).readFileSync(endpoint.tls.caFile, 'utf8') } : {}) }
      : { rejectUnauthorized: false };
  const connection: MysqlConnection = createConnection({
    host: endpoint.host, port: endpoint.port, user: endpoint.username, password: endpoint.password, database, connectTimeout: 10_000, ...(ssl ? { ssl } : {}),
  });
  await new Promise<void>((resolve, reject) => connection.connect((error) => (error ? reject(error) : resolve())));
  return {
    query: (sql) => new Promise<string>((resolve, reject) => {
      connection.query({ sql, rowsAsArray: true }, (error, rows) => (error ? reject(error) : resolve(valueText((rows as unknown[][])[0]?.[0]))));
    }),
    scan: (sql) => new Promise<number>((resolve, reject) => {
      let rows = 0;
      connection.query(sql).on('result', () => {
        rows += 1;
      }).on('error', reject).on('end', () => resolve(rows));
    }),
    close: () => new Promise<void>((resolve) => connection.end(() => resolve())),
  };
};

/** Each engine's driver for a remote server: one line per engine. */
const CONNECTORS: Readonly<Record<string, RemoteConnector>> = { postgres: pgConnector, mysql: mysqlConnector, mariadb: mysqlConnector };

function connectorFor(engine: string): RemoteConnector {
  const connector = Object.hasOwn(CONNECTORS, engine) ? CONNECTORS[engine] : undefined;
  if (!connector) throw lifeboatError('InvalidInput', `no driver for engine ${engine} (native drills connect to: ${Object.keys(CONNECTORS).join(', ')})`);
  return connector;
}

/** Runs the checks and writes the report; throws the failed drill's error after the report is written. */
export async function runNativeDrillCheck(opts: NativeDrillCheckOptions): Promise<DrillReport> {
  const now = opts.now ?? (() => new Date());
  const log = opts.log ?? (() => undefined);
  const { source } = opts;
  const secrets = [opts.endpoint.password];
  const engine = engineOf(source.engine);
  const connect = opts.connect ?? connectorFor(source.engine);
  const checkStarted = now();
  const run = await latestVerifiedRun(opts.s3, opts.bucket, source.name);
  const databases = run?.manifest
    ? [...new Set(run.manifest.artifacts.map((artifact) => artifact.database))]
    : [...source.connection.databases];
  const checks: DrillJudgement[] = [];
  let failure: Error | undefined;
  let scanSeconds = 0;
  let scanDone = false;
  let checkSeconds = 0;
  const open = new Map<string, RemoteDatabase>();
  const db = async (database: string): Promise<RemoteDatabase> => {
    const existing = open.get(database);
    if (existing) return existing;
    try {
      const opened = await connect(opts.endpoint, database);
      open.set(database, opened);
      return opened;
    } catch (error) {
      throw lifeboatError('TargetUnreachable', redact(
        `cannot connect to the drill instance ${opts.drillIdentifier} at ${opts.endpoint.host}:${opts.endpoint.port} (database ${database}) as ${opts.endpoint.username}: ${(error as Error).message}`, secrets));
    }
  };
  try {
    const checksStarted = performance.now();
    const found: TableRef[] = [];
    for (const database of databases) {
      const rows = JSON.parse(await (await db(database)).query(engine.drill.listTables)) as [string, string][];
      found.push(...rows.map(([schema, name]) => ({ database, schema, name })));
    }
    if (run?.manifest) {
      const expected = run.manifest.tables.filter((table) => databases.includes(table.database));
      checks.push(checkTableSet(expected, found));
    }
    for (const check of source.drillChecks) {
      const database = check.database ?? source.connection.databases[0] ?? databases[0] as string;
      const outcome = await (await db(database)).query(check.sql).then(
        (output) => ({ output }),
        (error: unknown) => ({ error: redact((error as Error).message, secrets) }),
      );
      checks.push(checkSql(check, database, outcome));
    }
    checkSeconds = (performance.now() - checksStarted) / 1000;

    // The lazy-load scan: every row of every table, once.
    const scanStarted = performance.now();
    let rows = 0;
    for (const table of found) {
      rows += await (await db(table.database)).scan(`SELECT * FROM ${engine.sql.countFrom(table.schema, table.name)}`);
    }
    scanSeconds = (performance.now() - scanStarted) / 1000;
    scanDone = true;
    checks.push({ name: 'lazy-load-scan', ok: true, detail: `read ${rows} row(s) of ${found.length} table(s) once in ${formatSeconds(scanSeconds)} (restored volumes load lazily: the first read is in the measured RTO)` });
  } catch (error) {
    failure = error as Error;
  } finally {
    for (const opened of open.values()) await opened.close().catch(() => undefined);
  }

  const finished = now();
  const measuredRtoSeconds = Math.max(0, (finished.getTime() - opts.restoreStartedAt.getTime()) / 1000);
  const restoreSeconds = Math.max(0, (checkStarted.getTime() - opts.restoreStartedAt.getTime()) / 1000);
  if (!failure) checks.push(checkRto(measuredRtoSeconds, source.tier.rtoSeconds));
  const verdict = drillVerdict(checks);
  const targetText = opts.target.kind === 'latest' ? 'latest' : opts.target.time;
  const error = failure
    ? { name: failure.name || 'Error', message: redact(failure.message, secrets) }
    : verdict && { name: verdict.name, message: `RDS point-in-time drill of ${source.name} to ${targetText} (${opts.drillIdentifier}) failed: ${verdict.message}` };
  const drillId = formatRunId(opts.restoreStartedAt);
  const report: DrillReport = {
    schemaVersion: DRILL_REPORT_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: source.name,
    drillId,
    // The dump whose manifest the table set was checked against; without one, the drill's own id (no Lifeboat run was restored).
    runId: run?.runId ?? drillId,
    from: 'primary',
    engine: NATIVE_DRILL_ENGINE,
    startedAt: opts.restoreStartedAt.toISOString(),
    finishedAt: finished.toISOString(),
    // restore = the restore call until the checker started (RDS restoring, the instance coming up, the task starting).
    timings: { downloadSeconds: 0, restoreSeconds, checkSeconds: checkSeconds + scanSeconds, ...(scanDone ? { lazyLoadSeconds: scanSeconds } : {}) },
    pitr: { target: targetText, set: `${source.rds?.kind ?? 'instance'} ${source.rds?.identifier ?? source.name} → ${opts.drillIdentifier}` },
    measuredRtoSeconds,
    rtoTargetSeconds: source.tier.rtoSeconds,
    checks: checks.map(({ name, ok, detail }) => ({ name, ok, detail })),
    verdict: error ? 'failed' : 'ok',
    ...(error ? { error } : {}),
  };
  const key = drillReportKey(source.name, drillId);
  await opts.s3.send(new PutObjectCommand({ Bucket: opts.bucket, Key: key, Body: serializeDrillReport(report), ContentType: 'application/json', IfNoneMatch: '*' }));
  log(`native drill ${source.name}: ${report.verdict}, measured RTO ${formatSeconds(measuredRtoSeconds)} (lazy-load scan ${formatSeconds(scanSeconds)}), report s3://${opts.bucket}/${key}`);
  if (error) throw Object.assign(new Error(error.message), { name: error.name, report });
  return report;
}

/** The lazy-load scan's seconds: the report's timing, else read back from its check (reports written before the field). */
export function lazyLoadSeconds(report: DrillReport): number | undefined {
  if (report.timings.lazyLoadSeconds !== undefined) return report.timings.lazyLoadSeconds;
  const detail = report.checks.find((check) => check.name === 'lazy-load-scan')?.detail;
  const match = detail ? / in ([\d.]+)s\b/.exec(detail) ?? / \((\d+)s\)/.exec(detail) : null;
  return match ? Number(match[1]) : undefined;
}
