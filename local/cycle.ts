import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readRunbookFacts, renderRunbook } from '../cli/runbook';
import { latestDrillReport } from '../lib/catalog/drills';
import type { DrillReport } from '../lib/domain/drill-report';
import { formatDuration, type LifeboatConfig, type Source } from '../lib/config';
import { slotRunId, runIdToDate } from '../lib/domain/run-id';
import { renderStatus, sourceStatuses } from '../cli/status';
import { restoreBinlogAt } from '../lib/binlog/restore-at';
import { engineOf } from '../lib/engines/registry';
import { operatorPrincipal, startLocalAws, type LocalAws } from './aws';
import { localStackAws, type LocalStackInfo } from './stack';
import { stateMachineDefinition } from './definition';
import { heartbeatBodies, postHeartbeats, startHeartbeatReceiver } from './heartbeats';
import { renderHistory } from './history';
import { LocalReplicator } from './replicator';
import { runLocalDrillExecution, runLocalExecution, runLocalPitrExecution, runLocalScheduledTask, type LocalRunHooks, type LocalTarget } from './runner';
import { startLocalPitrSource } from './pitr-host';
import { LocalSsm } from './ssm';
import { runScheduledSendCommand, sendCommandSchedules } from './scheduler';
import { startMariaDb, type MariaDbServer } from './servers/mariadb';
import { startPostgres } from './servers/postgres';
import type { SynthesizedApp } from './synth';
import { validateAsl } from './validate-asl';

export interface LocalCycleOptions {
  readonly config: LifeboatConfig;
  /** @default - the config's first source */
  readonly sourceName?: string;
  /**
   * The database to back up. @default - a throwaway server of the source's engine, seeded
   * with the demo shop database
   */
  readonly target?: LocalTarget;
  readonly log?: (line: string) => void;
  readonly hooks?: LocalRunHooks;
  /**
   * Evaluate every AWS call against the synthesized policies.
   * @default true
   */
  readonly iam?: boolean;
  /** Changes the synthesized templates before the run (tests re-introduce a defect this way). */
  readonly tamper?: (app: SynthesizedApp) => void;
  /** The slot to back up. @default - the current slot of the source's schedule */
  readonly scheduledTime?: Date;
  /**
   * Called with the local AWS side once the cycle is over, before it is stopped and awaited:
   * the buckets, the local S3 server and the IAM evaluator are still there (tests read the
   * evaluator, or restore from the offsite bucket).
   */
  readonly onFinished?: (aws: LocalAws) => void | Promise<void>;
  /**
   * The local stack of `lifeboat local up`: the run goes into its buckets, which keep it, and
   * the cycle stops after the backup run (list, verify, restore, drill and status are commands
   * of their own then).
   * @default - a throwaway local AWS side, and the whole cycle
   */
  readonly localStack?: LocalStackInfo;
}

/**
 * One whole backup cycle on this machine, the embedded default: a database, the local AWS
 * stand-ins, the synthesized state machine executed with the real worker and Lambda code.
 * Prints the execution history and the status table; returns the exit code.
 */
export async function runLocalCycle(opts: LocalCycleOptions): Promise<number> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const source = pickSource(opts.config, opts.sourceName);
  const started = Date.now();
  const cleanups: (() => Promise<void>)[] = [];
  try {
    log(`Lifeboat local backup cycle for "${source.name}" (${source.engine}, ${source.tier.name}) — no AWS account involved`);
    const target = opts.target ?? (await throwawayDatabase(source, cleanups, log));
    const aws = opts.localStack
      ? await localStackAws(opts.localStack, opts.config, { iam: opts.iam, tamper: opts.tamper })
      : await startLocalAws({ config: opts.config, iam: opts.iam, tamper: opts.tamper });
    cleanups.push(() => aws.stop());
    const { services, app } = aws;
    log(`  ${opts.localStack ? `the local stack's S3-compatible server (lifeboat local up, data in ${opts.localStack.dir})` : 'local S3-compatible server'} ${services.endpoint}: buckets ${services.primaryBucket} (primary, ${app.primary.account} ${app.primary.region}) and ${services.offsiteBucket} (offsite, ${app.offsite.account} ${app.offsite.region}), versioned, Object Lock`);
    log(`  local SNS topic standing in for ${services.alarmTopicArn}; local EventBridge endpoint ${services.eventsEndpoint}`);

    const definition = stateMachineDefinition(app.primary);
    const asl = validateAsl(definition);
    if (!asl.isValid) throw new Error(`asl-validator rejects the synthesized definition: ${asl.errors.join('; ')}`);
    const states = Object.keys((definition as { States: object }).States).length;
    log(`  synthesized ${app.primary.stackName} and ${app.offsite.stackName}: state machine ${opts.config.appName}-backup-run, ${states} states, accepted by asl-validator`);
    log(aws.evaluator
      ? `  IAM-true: every AWS call is evaluated against the synthesized policies of the role that makes it (${aws.model.principals.size} roles, accounts ${[...new Set([app.primary.account, app.offsite.account])].join(' and ')})`
      : '  IAM NOT evaluated (--no-iam): calls are made with one all-powerful local credential');

    const replicator = new LocalReplicator({
      source: services.s3, sourceBucket: services.primaryBucket, destination: services.s3, destinationBucket: services.offsiteBucket,
      iam: aws.evaluator ? { evaluator: aws.evaluator, requests: aws.replicationRequests } : undefined,
      log: (line) => {
        if (line.includes('FAILED') || line.includes('failed')) log(`  ${line}`);
      },
    });
    replicator.start();
    cleanups.push(() => replicator.stop());
    log(`  ${LocalReplicator.NAME}: copies ${services.primaryBucket} → ${services.offsiteBucket} as ${aws.roles.replication}`);

    const runId = slotRunId(opts.scheduledTime ?? new Date(), source.tier.scheduleSeconds);
    const scheduledTime = runIdToDate(runId) as Date;
    log('');
    log(`Execution ${source.name}-${runId} (slot ${scheduledTime.toISOString()}):`);
    const result = await runLocalExecution({ aws, source, target, scheduledTime, hooks: opts.hooks });
    log(renderHistory(result.history));
    const alarms = await aws.stack.receiveAlarms();
    if (alarms.length === 0) log('SNS: nothing published to the alarm topic (local SNS): the run succeeded; a failed run publishes its explanation there');
    for (const notification of alarms) {
      log('');
      log(`SNS message on the alarm topic (local SNS) — ${notification.subject ?? ''}`);
      log(notification.message.split('\n').map((line) => `  | ${line}`).join('\n'));
    }
    for (const event of aws.stack.events.events) {
      log(`EventBridge event (local endpoint): ${event.Source} / ${event.DetailType} ${JSON.stringify(event.Detail)}`);
    }
    // What the API destinations would POST to each notifications.heartbeatUrls entry, sent
    // here to a local monitor standing in for healthchecks.io / OneUptime.
    const monitor = await startHeartbeatReceiver();
    cleanups.push(() => monitor.close());
    await postHeartbeats(monitor.url, heartbeatBodies(aws.stack.events.events));
    for (const heartbeat of monitor.received) log(`Heartbeat (local monitor for each heartbeat URL): POST ${JSON.stringify(heartbeat.body)}`);
    if (opts.localStack) {
      log('');
      logIamSummary(aws, log);
      await opts.onFinished?.(aws);
      const ok = result.history.status === 'SUCCEEDED';
      log(`Backup run ${ok ? 'completed' : 'FAILED'} in ${formatDuration((Date.now() - started) / 1000)}; the run stays in the local stack. Next: lifeboat list ${source.name} --local, lifeboat verify ${source.name} --local, lifeboat drill ${source.name} --local --from offsite`);
      return ok ? 0 : 1;
    }
    let drillOk = true;
    if (result.history.status === 'SUCCEEDED') drillOk = await drillLocally(aws, source, log);
    // Point-in-time recovery: the config's first PITR source (the first source, if it is one).
    const pitrSource = source.pitr ? source : opts.config.sources.find((candidate) => candidate.pitr !== undefined);
    const pitrOk = pitrSource ? await pitrLocally(aws, pitrSource, cleanups, log) : true;
    // Binary-log point-in-time recovery: the config's first MySQL/MariaDB source with method 'pitr'.
    const binlogSource = source.binlog ? source : opts.config.sources.find((candidate) => candidate.binlog !== undefined);
    const binlogOk = binlogSource ? await binlogLocally(aws, binlogSource, cleanups, log) : true;
    log('');
    log('Status (lifeboat status):');
    const operator = operatorPrincipal(aws);
    const shown = [...new Set([source, pitrSource, binlogSource].filter((candidate): candidate is Source => candidate !== undefined))];
    log(renderStatus(await operator.run(() => sourceStatuses(services.s3, services.primaryBucket, shown))));
    // RDS cannot run here: its checks, copies and drills are exercised by the tests, with RDS faked at the SDK edge.
    for (const governed of shown.filter((candidate) => candidate.rds !== undefined)) {
      log(`${governed.name}: native point-in-time recovery of the RDS ${governed.rds?.kind === 'instance' ? 'DB instance' : 'DB cluster'} ${governed.rds?.identifier}: not read here (no RDS in a local stack; in AWS, lifeboat status shows its window)`);
    }
    const runbookFile = path.join(mkdtempSync(path.join(tmpdir(), 'lifeboat-runbook-')), `runbook-${source.name}.md`);
    const facts = await operator.run(() => readRunbookFacts(services.s3, services.primaryBucket, source.name));
    writeFileSync(runbookFile, renderRunbook({
      config: opts.config, source, bucket: services.primaryBucket, offsiteBucket: services.offsiteBucket, ...facts, now: new Date(),
    }));
    log(`Runbook (lifeboat runbook ${source.name}): ${runbookFile}`);
    log('');
    logIamSummary(aws, log);
    await opts.onFinished?.(aws);
    const ok = result.history.status === 'SUCCEEDED' && drillOk && pitrOk && binlogOk;
    log(`Local cycle ${ok ? 'completed' : 'FAILED'} in ${formatDuration((Date.now() - started) / 1000)}.`);
    return ok ? 0 : 1;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

function logIamSummary(aws: LocalAws, log: (line: string) => void): void {
  if (!aws.evaluator) return;
  const { calls, requests, denied, byPrincipal } = aws.evaluator.stats;
  log(`IAM-true: ${calls} AWS calls by ${byPrincipal.size} roles evaluated (${requests} IAM requests) against the synthesized policies of ${aws.app.primary.stackName} and ${aws.app.offsite.stackName}: ${denied === 0 ? 'none denied' : `${denied} DENIED`}`);
  for (const decision of aws.evaluator.denials) log(`  denied: ${decision.request.principal} ${decision.request.action} ${decision.request.resource}: ${decision.explanation}`);
}

/**
 * The restore drill of the run just made, from the offsite bucket (a disaster-recovery drill:
 * the offsite copy alone must be enough): the synthesized restore-drill state machine, its
 * drill task restoring into a throwaway server, as the drill task's role.
 */
async function drillLocally(aws: LocalAws, source: Source, log: (line: string) => void): Promise<boolean> {
  log('');
  log(`Restore drill of ${source.name} from the offsite bucket (the ${aws.app.config.appName}-restore-drill state machine, from: offsite):`);
  const result = await runLocalDrillExecution({ aws, source, from: 'offsite' });
  const report = await latestDrillReport(aws.services.s3, aws.services.primaryBucket, source.name);
  if (report) printDrill(report, log);
  if (result.history.status !== 'SUCCEEDED') {
    log(renderHistory(result.history));
    log(`  drill FAILED: ${result.history.error?.name ?? ''}: ${result.history.error?.cause ?? ''}`);
    return false;
  }
  return report?.verdict === 'ok';
}

/**
 * The PITR cycle of `source` on this machine: PostgreSQL archiving into the primary bucket with
 * pgBackRest (the host), the synthesized PITR run executed for a full and, after more writes,
 * an incremental (the host command through the SSM stand-in), then the synthesized restore drill
 * with the source's PITR drill task, from the offsite copy: a point (alternately the end of the
 * archive and a random second of the last day) restored into a throwaway server of the source's
 * major, recovery checked, pg_amcheck of heap and B-tree indexes, the drill checks, the measured
 * RTO against the tier's, the report under drills/<source>/.
 */
async function pitrLocally(aws: LocalAws, source: Source, cleanups: (() => Promise<void>)[], log: (line: string) => void): Promise<boolean> {
  log('');
  log(`Point-in-time recovery of ${source.name} (pgBackRest, the ${aws.app.config.appName}-pitr-run state machine):`);
  const pitr = await startLocalPitrSource(aws, source, { seedSql: readFileSync(path.join(__dirname, 'demo-seed.sql'), 'utf8') });
  cleanups.push(() => pitr.stop());
  const database = source.connection.databases[0];
  log(`  throwaway PostgreSQL ${pitr.host.source.version} stands in for ${pitr.instanceId} (${LocalSsm.NAME}), archiving its WAL with pgBackRest into s3://${aws.services.primaryBucket}/pitr/${source.name}/ through a local TLS front`);
  // The marker schedule (every 5 minutes in AWS), invoked as Scheduler would, as its role.
  const [markerSchedule] = source.pitr?.marker ? sendCommandSchedules(aws, '-pitr-marker') : [];
  const mark = async () => {
    if (!markerSchedule) return;
    const { status } = await runScheduledSendCommand(aws, markerSchedule, pitr.ssm);
    log(`  ${markerSchedule.name}: SSM SendCommand of the marker document (lifeboat.pitr_marker): ${status}`);
  };
  let slot = Date.now() - (Date.now() % 300_000);
  for (const type of ['full', 'incr'] as const) {
    await mark();
    if (type === 'incr') await pitr.host.source.psql("INSERT INTO public.customers (name, email) SELECT 'Customer ' || g, 'pitr' || g || '@example.com' FROM generate_series(1, 200) g", database);
    const scheduledTime = new Date((slot += 300_000));
    const run = await runLocalPitrExecution({ aws, source, type, scheduledTime, ssm: pitr.ssm, verifierEnv: pitr.verifierEnv });
    log('');
    log(`Execution ${source.name}-${type} (${type} backup, slot ${scheduledTime.toISOString()}):`);
    log(renderHistory(run.history));
    if (run.history.status !== 'SUCCEEDED') return false;
  }
  log('');
  log(`PITR drill of ${source.name} from the offsite bucket (the ${aws.app.config.appName}-restore-drill state machine, its PITR drill task): restore to a point into a throwaway PostgreSQL ${pitr.host.source.version}:`);
  const drill = await runLocalDrillExecution({ aws, source, from: 'offsite', kind: 'pitr', containerEnv: pitr.verifierEnv });
  const report = await latestDrillReport(aws.services.s3, aws.services.primaryBucket, source.name);
  if (report?.engine === 'pgbackrest') printDrill(report, log);
  if (drill.history.status !== 'SUCCEEDED') {
    log(renderHistory(drill.history));
    log(`  PITR drill FAILED: ${drill.history.error?.name ?? ''}: ${drill.history.error?.cause ?? ''}`);
    return false;
  }
  return report?.verdict === 'ok';
}

function printDrill(report: DrillReport, log: (line: string) => void): void {
  if (report.pitr) log(`  target ${report.pitr.target}, set ${report.pitr.set} (run ${report.runId})`);
  for (const check of report.checks) log(`  ${check.ok ? 'ok    ' : 'FAILED'} ${check.name}: ${check.detail}`);
  const { downloadSeconds, restoreSeconds, replaySeconds, checkSeconds } = report.timings;
  const phases = report.pitr
    ? `restore ${restoreSeconds.toFixed(2)} s + WAL replay ${(replaySeconds ?? 0).toFixed(2)} s + checks ${checkSeconds.toFixed(2)} s`
    : `download ${downloadSeconds.toFixed(2)} s + restore ${restoreSeconds.toFixed(2)} s + checks ${checkSeconds.toFixed(2)} s`;
  log(`  ${phases} = measured RTO ${report.measuredRtoSeconds.toFixed(2)} s (target ${formatDuration(report.rtoTargetSeconds)}): ${report.verdict.toUpperCase()}`);
}

/**
 * A MySQL/MariaDB source's point-in-time recovery (lib/binlog): a throwaway MariaDB writing its
 * binary log stands in for the source; its dump through the backup-run state machine records
 * each database's coordinates; writes; the archiver run twice by its schedule (EventBridge
 * Scheduler's ECS RunTask, as the schedule's role; the task as its role); then
 * `lifeboat restore --at latest` as the operator into a second throwaway server, whose row
 * counts must equal the source's.
 */
async function binlogLocally(aws: LocalAws, source: Source, cleanups: (() => Promise<void>)[], log: (line: string) => void): Promise<boolean> {
  log('');
  log(`Point-in-time recovery of ${source.name} (binary logs archived with ${source.binlog?.binlogClient}, the dumps as bases):`);
  const databases = source.connection.databases;
  const server = await startMariaDb({ binlog: { maxSize: 1024 * 1024 } });
  cleanups.push(() => server.stop());
  for (const database of databases) await server.sql(readFileSync(path.join(__dirname, 'demo-seed-mariadb.sql'), 'utf8').replace(/\bshop\b/g, database));
  log(`  throwaway MariaDB ${server.version} at ${server.host}:${server.port} (log_bin, binlog_format=ROW) stands in for ${source.connection.host}, databases ${databases.join(', ')} seeded with demo data`);
  const target: LocalTarget = { host: server.host, port: server.port, username: server.user, tls: { mode: 'disable' } };
  const scheduledTime = runIdToDate(slotRunId(new Date(), source.tier.scheduleSeconds)) as Date;
  const dump = await runLocalExecution({ aws, source, target, scheduledTime });
  log(`  dump of ${source.name} through ${aws.app.config.appName}-backup-run (its manifest records each database's binlog coordinates): ${dump.history.status}`);
  if (dump.history.status !== 'SUCCEEDED') return false;
  const schedule = [...aws.model.schedules.values()].find((candidate) => /:aws-sdk:ecs:runTask$/.test(candidate.targetArn)
    && (JSON.parse(candidate.input ?? '{}') as { TaskDefinition?: string }).TaskDefinition === [...aws.model.taskDefinitions.values()].find((task) => task.family === `lifeboat-binlog-${source.name}`)?.arn);
  if (!schedule) throw new Error(`no archiver schedule of ${source.name} in the synthesized templates`);
  for (const round of [1, 2]) {
    const [first] = databases;
    await server.sql(`INSERT INTO orders (customer_id, cents) SELECT 1 + seq % 5000, 7 * seq FROM seq_1_to_${round * 500}; UPDATE customers SET name = CONCAT(name, ' *') WHERE id % 50 = ${round};`, first);
    // Archiver runs are named after the second they start in.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const run = await runLocalScheduledTask({ aws, schedule, target, scheduledTime: new Date() });
    const state = run.result?.state;
    log(`  ${schedule.name}: ECS RunTask of lifeboat-binlog-${source.name} → ${run.error ? `${run.error.name}: ${run.error.message}` :
      `stored ${state?.stored.length ?? 0} completed file(s), active ${state?.partial?.file} to ${state?.partial?.facts.bytes} bytes (run ${state?.runId})`}`);
    if (run.code !== 0) return false;
  }
  const expected = await rowCounts(server, databases);
  const restored = await startMariaDb();
  cleanups.push(() => restored.stop());
  const engine = engineOf(source.engine);
  log(`  lifeboat restore ${source.name} --at latest --target-url mariadb://root@${restored.host}:${restored.port} (as the operator role):`);
  const result = await operatorPrincipal(aws).run(() => restoreBinlogAt({
    s3: aws.services.s3, bucket: aws.services.primaryBucket, source: source.name, at: 'latest',
    target: { engine: 'mariadb', host: restored.host, port: restored.port, username: restored.user, tls: { mode: 'disable' } },
    binlogClient: source.binlog?.binlogClient ?? 'mariadb-binlog', sqlClient: engine.sqlClients[0] as string, log: (line) => log(`    ${line}`),
  }));
  const actual = await rowCounts(restored, databases);
  const same = JSON.stringify(actual) === JSON.stringify(expected);
  const t = result.timings;
  log(`  restored to latest in ${(t.planSeconds + t.restoreSeconds + t.replaySeconds).toFixed(1)} s (plan ${t.planSeconds.toFixed(1)} s, base ${t.restoreSeconds.toFixed(1)} s, replay ${t.replaySeconds.toFixed(1)} s): ` +
    `row counts ${same ? 'equal the source\'s' : `DIFFER from the source's (${JSON.stringify(actual)} vs ${JSON.stringify(expected)})`} (${Object.entries(expected).map(([table, rows]) => `${table} ${rows}`).join(', ')})`);
  return same;
}

/** Every base table's row count, by `db.table`. */
async function rowCounts(server: MariaDbServer, databases: readonly string[]): Promise<Record<string, number>> {
  const tables = (await server.sql(`SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema IN (${databases.map((d) => `'${d}'`).join(', ')}) ORDER BY 1`)).split('\n').filter(Boolean);
  const counts: Record<string, number> = {};
  for (const table of tables) counts[table] = Number((await server.sql(`SELECT COUNT(*) FROM ${table.split('.').map((part) => `\`${part}\``).join('.')}`)).trim());
  return counts;
}

function pickSource(config: LifeboatConfig, name: string | undefined): Source {
  const source = name === undefined ? config.sources[0] : config.sources.find((candidate) => candidate.name === name);
  if (!source) {
    throw Object.assign(new Error(`unknown source "${name}" (known: ${config.sources.map((candidate) => candidate.name).join(', ')})`), { name: 'InvalidInput' });
  }
  return source;
}

type DemoDatabase = (source: Source, cleanups: (() => Promise<void>)[], log: (line: string) => void) => Promise<LocalTarget>;

/** PostgreSQL: every database the source lists, each seeded with the demo shop data. */
const postgresDemo: DemoDatabase = async (source, cleanups, log) => {
  const databases = source.connection.databases;
  const server = await startPostgres();
  cleanups.push(() => server.stop());
  for (const database of databases) {
    await server.createDatabase(database);
    await server.psql(readFileSync(path.join(__dirname, 'demo-seed.sql'), 'utf8'), database);
  }
  log(`  throwaway PostgreSQL ${server.version} at ${server.host}:${server.port} stands in for ${source.connection.host}, databases ${databases.join(', ')} seeded with the demo shop data`);
  return { host: server.host, port: server.port, username: server.user };
};

/** MySQL and MariaDB: a throwaway MariaDB, every database the source lists seeded with demo data. */
const mariaDbDemo: DemoDatabase = async (source, cleanups, log) => {
  const databases = source.connection.databases;
  const server = await startMariaDb();
  cleanups.push(() => server.stop());
  for (const database of databases) {
    await server.sql(readFileSync(path.join(__dirname, 'demo-seed-mariadb.sql'), 'utf8').replace(/\bshop\b/g, database));
  }
  log(`  throwaway MariaDB ${server.version} at ${server.host}:${server.port} stands in for ${source.connection.host}, databases ${databases.join(', ')} seeded with demo data`);
  return { host: server.host, port: server.port, username: server.user };
};

const DEMO_DATABASES: Readonly<Record<Source['engine'], DemoDatabase>> = { postgres: postgresDemo, mysql: mariaDbDemo, mariadb: mariaDbDemo };

function throwawayDatabase(source: Source, cleanups: (() => Promise<void>)[], log: (line: string) => void): Promise<LocalTarget> {
  return DEMO_DATABASES[source.engine](source, cleanups, log);
}
