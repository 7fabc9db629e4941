/**
 * The checker of an RDS point-in-time drill as a Fargate task (state CheckDrill of
 * `<app>-native-drill-<source>`, lib/constructs/native-drill.ts): connects to the restored
 * instance the state machine passes (host, port), checks it and writes the report
 * (lib/rds/native-drill-check.ts), and answers its task token. The state machine deletes the
 * drill instance afterwards either way. Same token protocol and exit codes as worker/drill-main.ts.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { createS3Client } from '../lib/aws/s3-client';
import type { Source } from '../lib/config/types';
import { lifeboatError } from '../lib/domain/errors';
import type { DrillReport } from '../lib/domain/drill-report';
import { defaultCaFile, TLS_MODES, type TlsMode, type TlsOptions } from '../lib/domain/tls';
import { NATIVE_DRILL_ENV, parseDrillTarget, type DrillTarget } from '../lib/rds/drill-target';
import { runNativeDrillCheck, type RemoteConnector } from '../lib/rds/native-drill-check';
import { drillSummary } from './drill-main';
import { containerMain, exitWithMain } from './signals';
import { runTask, type TaskDeps } from './task-token';

export interface NativeDrillJob {
  readonly bucket: string;
  readonly source: Source;
  readonly host: string;
  readonly port: number;
  readonly password?: string;
  readonly tls: TlsOptions;
  readonly target: DrillTarget;
  readonly restoreStartedAt: Date;
  readonly drillIdentifier: string;
  readonly taskToken?: string;
  readonly s3Endpoint?: string;
  readonly region?: string;
}

/** Reads the job, every problem named at once (`InvalidInput`); the password's value is never echoed. */
export function nativeDrillJobFromEnv(env: Record<string, string | undefined>): NativeDrillJob {
  const problems: string[] = [];
  const value = (name: string) => env[name]?.trim() || undefined;
  const required = (name: string) => {
    const text = value(name);
    if (!text) problems.push(`${name}: required`);
    return text ?? '';
  };
  const bucket = required(NATIVE_DRILL_ENV.bucket);
  let source: Source | undefined;
  try {
    source = JSON.parse(required(NATIVE_DRILL_ENV.sourceConfig) || 'null') as Source | undefined;
    if (source && !source.rds) problems.push(`${NATIVE_DRILL_ENV.sourceConfig}: the source ${source.name} has no rds (valid: an RDS/Aurora source's drill checker)`);
  } catch {
    problems.push(`${NATIVE_DRILL_ENV.sourceConfig}: not valid JSON`);
  }
  const host = required(NATIVE_DRILL_ENV.host);
  const portText = required(NATIVE_DRILL_ENV.port);
  const port = Number(portText);
  if (portText && !(Number.isInteger(port) && port > 0 && port < 65536)) problems.push(`${NATIVE_DRILL_ENV.port}: "${portText}" is not valid (valid: a TCP port)`);
  const targetText = required(NATIVE_DRILL_ENV.target);
  const target = parseDrillTarget(targetText);
  if (targetText && !target) problems.push(`${NATIVE_DRILL_ENV.target}: "${targetText}" is not valid (valid: {"kind":"latest"} or {"kind":"time","time":"<ISO>"})`);
  const startedText = required(NATIVE_DRILL_ENV.restoreStartedAt);
  const restoreStartedAt = new Date(startedText);
  if (startedText && Number.isNaN(restoreStartedAt.getTime())) problems.push(`${NATIVE_DRILL_ENV.restoreStartedAt}: "${startedText}" is not valid (valid: an ISO time)`);
  const drillIdentifier = required(NATIVE_DRILL_ENV.drillIdentifier);
  const modeText = value(NATIVE_DRILL_ENV.tlsMode) ?? source?.connection?.tls ?? 'verify-full';
  if (!TLS_MODES.includes(modeText as TlsMode)) problems.push(`${NATIVE_DRILL_ENV.tlsMode}: "${modeText}" is not valid (valid: ${TLS_MODES.join(', ')})`);
  const caFile = value(NATIVE_DRILL_ENV.tlsCaFile) ?? (source?.connection?.tlsCa?.kind === 'file' ? source.connection.tlsCa.path : undefined) ?? (host ? defaultCaFile(host) : undefined);
  if (problems.length > 0) throw lifeboatError('InvalidInput', `invalid native drill environment:\n  - ${problems.join('\n  - ')}`);
  return {
    bucket,
    source: source as Source,
    host,
    port,
    password: env[NATIVE_DRILL_ENV.password] || undefined,
    tls: { mode: modeText as TlsMode, ...(modeText === 'verify-full' && caFile ? { caFile } : {}) },
    target: target as DrillTarget,
    restoreStartedAt,
    drillIdentifier,
    taskToken: value(NATIVE_DRILL_ENV.taskToken),
    s3Endpoint: value(NATIVE_DRILL_ENV.s3Endpoint),
    region: value('AWS_REGION') ?? value('AWS_DEFAULT_REGION'),
  };
}

export interface NativeDrillOutcome {
  readonly code: number;
  readonly report?: DrillReport;
  readonly error?: { readonly name: string; readonly message: string };
}

/** Runs the checker; never throws: the outcome carries the exit code and the error. */
export async function runNativeDrillJob(job: NativeDrillJob, deps: TaskDeps & { readonly connect?: RemoteConnector } = {}): Promise<NativeDrillOutcome> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const s3 = deps.s3 ?? createS3Client({ region: job.region, endpoint: job.s3Endpoint });
  log(`native drill check ${job.source.name}: ${job.drillIdentifier} at ${job.host}:${job.port}, target ${job.target.kind === 'latest' ? 'latest' : job.target.time}`);
  const outcome = await runTask({
    taskToken: job.taskToken,
    sfn: () => deps.sfn ?? new SFNClient({ region: job.region }),
    work: () => runNativeDrillCheck({
      source: job.source,
      s3,
      bucket: job.bucket,
      endpoint: { host: job.host, port: job.port, username: job.source.connection.username, password: job.password, tls: job.tls },
      target: job.target,
      restoreStartedAt: job.restoreStartedAt,
      drillIdentifier: job.drillIdentifier,
      ...(deps.connect ? { connect: deps.connect } : {}),
      now: deps.now,
      log,
    }),
    output: (report) => drillSummary(report, job.bucket),
    progress: () => `native drill check of ${job.source.name} in progress`,
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    signal: deps.signal,
    secrets: [job.password],
    log,
  });
  return { code: outcome.code, report: outcome.result, error: outcome.error };
}

/** The container entrypoint (`node /app/native-drill.js`). */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return containerMain({
    env,
    parse: nativeDrillJobFromEnv,
    what: 'the RDS point-in-time drill check (the state machine deletes the drill instance)',
    run: (job, signal) => runNativeDrillJob(job, { signal }),
    summary: (outcome, job) => outcome.report && drillSummary(outcome.report, job.bucket),
  });
}

exitWithMain(module, main);
