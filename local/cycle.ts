import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { renderRunbook } from '../cli/runbook';
import { latestVerifiedRun, readRun } from '../lib/catalog/catalog';
import { latestDrillReport } from '../lib/catalog/drills';
import type { DrillReport } from '../lib/domain/drill-report';
import { runDrill, type DrillError } from '../lib/drill/run-drill';
import { formatDuration, type LifeboatConfig, type Source } from '../lib/config';
import { slotRunId, runIdToDate } from '../lib/domain/run-id';
import { renderStatus, sourceStatuses } from '../cli/status';
import { scheduleInput, stateMachineDefinition } from './definition';
import { heartbeatBodies, postHeartbeats, startHeartbeatReceiver } from './heartbeats';
import { renderHistory } from './history';
import { LocalReplicator } from './replicator';
import { runLocalExecution, type LocalRunHooks, type LocalServices, type LocalTarget } from './runner';
import { startMariaDb } from './servers/mariadb';
import { startPostgres } from './servers/postgres';
import { startLocalStack } from './services';
import { synthPrimaryTemplate } from './synth';
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
    const stack = await startLocalStack({ offsiteRegion: opts.config.offsite.region });
    cleanups.push(() => stack.stop());
    const { services } = stack;
    log(`  local S3-compatible server ${services.endpoint}: buckets ${services.primaryBucket} (primary) and ${services.offsiteBucket} (offsite)`);
    log(`  local SNS topic ${services.alarmTopicArn}; local EventBridge endpoint ${services.eventsEndpoint}`);

    const template = synthPrimaryTemplate(opts.config);
    const definition = stateMachineDefinition(template);
    const asl = validateAsl(definition);
    if (!asl.isValid) throw new Error(`asl-validator rejects the synthesized definition: ${asl.errors.join('; ')}`);
    const states = Object.keys((definition as { States: object }).States).length;
    log(`  synthesized ${opts.config.appName}-Primary: state machine ${opts.config.appName}-backup-run, ${states} states, accepted by asl-validator`);

    const replicator = new LocalReplicator({
      source: services.s3, sourceBucket: services.primaryBucket, destination: services.s3, destinationBucket: services.offsiteBucket,
    });
    replicator.start();
    cleanups.push(() => replicator.stop());
    log(`  ${LocalReplicator.NAME}: copies ${services.primaryBucket} → ${services.offsiteBucket}`);

    const runId = slotRunId(new Date(), source.tier.scheduleSeconds);
    const scheduledTime = runIdToDate(runId) as Date;
    log('');
    log(`Execution ${source.name}-${runId} (slot ${scheduledTime.toISOString()}):`);
    const result = await runLocalExecution({
      definition,
      input: scheduleInput(template, source.name, scheduledTime),
      source,
      target,
      services,
      scheduledTime,
      hooks: opts.hooks,
      rpoSecondsBySource: Object.fromEntries(opts.config.sources.map((candidate) => [candidate.name, candidate.tier.rpoSeconds])),
    });
    log(renderHistory(result.history));
    const alarms = await stack.receiveAlarms();
    if (alarms.length === 0) log('SNS: nothing published to the alarm topic (local SNS): the run succeeded; a failed run publishes its explanation there');
    for (const notification of alarms) {
      log('');
      log(`SNS message on the alarm topic (local SNS) — ${notification.subject ?? ''}`);
      log(notification.message.split('\n').map((line) => `  | ${line}`).join('\n'));
    }
    for (const event of stack.events.events) {
      log(`EventBridge event (local endpoint): ${event.Source} / ${event.DetailType} ${JSON.stringify(event.Detail)}`);
    }
    // What the API destinations would POST to each notifications.heartbeatUrls entry, sent
    // here to a local monitor standing in for healthchecks.io / OneUptime.
    const monitor = await startHeartbeatReceiver();
    cleanups.push(() => monitor.close());
    await postHeartbeats(monitor.url, heartbeatBodies(stack.events.events, `${source.name}-${scheduledTime.toISOString().replace(/[-:.]/g, '')}`));
    for (const heartbeat of monitor.received) log(`Heartbeat (local monitor for each heartbeat URL): POST ${JSON.stringify(heartbeat.body)}`);
    let drillOk = true;
    if (result.history.status === 'SUCCEEDED') drillOk = await drillLocally(source, services, log);
    log('');
    log('Status (lifeboat status):');
    log(renderStatus(await sourceStatuses(services.s3, services.primaryBucket, [source])));
    const runbookFile = path.join(mkdtempSync(path.join(tmpdir(), 'lifeboat-runbook-')), `runbook-${source.name}.md`);
    const [latest, drill] = await Promise.all([
      latestVerifiedRun(services.s3, services.primaryBucket, source.name),
      latestDrillReport(services.s3, services.primaryBucket, source.name),
    ]);
    writeFileSync(runbookFile, renderRunbook({
      config: opts.config, source, bucket: services.primaryBucket, offsiteBucket: services.offsiteBucket, latest, drill,
      drilledRun: drill ? await readRun(services.s3, services.primaryBucket, source.name, drill.runId) : undefined, now: new Date(),
    }));
    log(`Runbook (lifeboat runbook ${source.name}): ${runbookFile}`);
    log('');
    const ok = result.history.status === 'SUCCEEDED' && drillOk;
    log(`Local cycle ${ok ? 'completed' : 'FAILED'} in ${formatDuration((Date.now() - started) / 1000)}.`);
    return ok ? 0 : 1;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

/**
 * The restore drill of the run just made, from the offsite bucket (a disaster-recovery
 * drill: the offsite copy alone must be enough), into a throwaway server.
 */
async function drillLocally(source: Source, services: LocalServices, log: (line: string) => void): Promise<boolean> {
  log('');
  log(`Restore drill of ${source.name} from the offsite bucket (lifeboat drill ${source.name} --local --from offsite):`);
  try {
    const report = await runDrill({
      s3: services.s3, bucket: services.offsiteBucket, reportBucket: services.primaryBucket, source, from: 'offsite',
    });
    printDrill(report, log);
    return true;
  } catch (error) {
    const report = (error as DrillError).report;
    if (report) printDrill(report, log);
    log(`  drill FAILED: ${(error as Error).name}: ${(error as Error).message}`);
    return false;
  }
}

function printDrill(report: DrillReport, log: (line: string) => void): void {
  for (const check of report.checks) log(`  ${check.ok ? 'ok    ' : 'FAILED'} ${check.name}: ${check.detail}`);
  const { downloadSeconds, restoreSeconds, checkSeconds } = report.timings;
  log(`  download ${downloadSeconds.toFixed(2)} s + restore ${restoreSeconds.toFixed(2)} s + checks ${checkSeconds.toFixed(2)} s = measured RTO ${report.measuredRtoSeconds.toFixed(2)} s (target ${formatDuration(report.rtoTargetSeconds)}): ${report.verdict.toUpperCase()}`);
}

function pickSource(config: LifeboatConfig, name: string | undefined): Source {
  const source = name === undefined ? config.sources[0] : config.sources.find((candidate) => candidate.name === name);
  if (!source) {
    throw Object.assign(new Error(`unknown source "${name}" (known: ${config.sources.map((candidate) => candidate.name).join(', ')})`), { name: 'InvalidInput' });
  }
  return source;
}

async function throwawayDatabase(source: Source, cleanups: (() => Promise<void>)[], log: (line: string) => void): Promise<LocalTarget> {
  const database = source.connection.databases[0];
  if (source.engine === 'postgres') {
    const server = await startPostgres();
    cleanups.push(() => server.stop());
    await server.createDatabase(database);
    await server.psql(readFileSync(path.join(__dirname, 'demo-seed.sql'), 'utf8'), database);
    log(`  throwaway PostgreSQL ${server.version} at ${server.host}:${server.port} stands in for ${source.connection.host}, seeded with the demo shop database`);
    return { host: server.host, port: server.port, username: server.user };
  }
  const server = await startMariaDb();
  cleanups.push(() => server.stop());
  await server.sql(readFileSync(path.join(__dirname, 'demo-seed-mariadb.sql'), 'utf8').replace(/\bshop\b/g, database));
  log(`  throwaway MariaDB ${server.version} at ${server.host}:${server.port} stands in for ${source.connection.host}, seeded with a demo database`);
  return { host: server.host, port: server.port, username: server.user };
}
