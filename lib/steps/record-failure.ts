/**
 * RecordFailure: turns a failed run into the message the person on call reads — which source,
 * which run, which state, what went wrong in words, what it means for protection, and the
 * first thing to check — and emits `BackupFailed` and a `Backup Failed` event.
 *
 * Contract: it is the failure path, so it never throws. Odd input (fields missing, a Cause that
 * is not JSON, an unreadable catalog, EventBridge down) still gives a message; whatever could
 * not be done is said in the message.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import { latestVerifiedRun } from '../catalog/catalog';
import { formatDuration } from '../config/units';
import { formatRunId, runIdToDate } from '../domain/run-id';
import { DEFAULT_EVENT_BUS, putEvent, type EventSender, type MetricsSink } from './telemetry';

/** SNS refuses a subject longer than 100 characters. */
export const SUBJECT_MAX_LENGTH = 100;
const CAUSE_MAX_LENGTH = 2_000;
const EVENT_CAUSE_MAX_LENGTH = 1_000;
const CATALOG_TIMEOUT_MS = 10_000;

/** The first thing to check, per error name the state machine reports. */
export const FIRST_CHECK: Readonly<Record<string, string>> = {
  ClientTooOld:
    "The dump client is older than the database server's major version. PostgreSQL: raise PG_CLIENT_MAJOR in lib/domain/versions.ts (the worker and verifier images take their PostgreSQL major from it) to at least the server's major and redeploy. MySQL: raise MYSQL_SERIES in worker/Dockerfile.",
  ClientNotFound: 'The worker image has no dump client for this engine. Rebuild and redeploy the worker image.',
  AuthenticationFailed:
    "The database refused the credentials. Check that the source's password secret in Secrets Manager holds the user's current password, and that the user may connect from the dump task's subnets.",
  SourceUnreachable:
    "The dump task could not reach the database. Check the network path: the database's security group must allow the dump task's security group on its port; then subnets, route tables, NACLs, the host name, and whether the database is up.",
  TlsRequired:
    "The source's TLS mode (connection.tls: verify-full, the default, or require) needs TLS, and the database server offered none; nothing was sent in plain text and nothing was uploaded. Turn TLS on in the server (PostgreSQL ssl = on; RDS does by default; MariaDB/MySQL ssl_cert and ssl_key), or, accepting that it may send everything in plain text, set connection.tls to \"prefer\" in the Lifeboat config. Not retried.",
  TlsVerifyFailed:
    "The database server's TLS certificate did not verify (connection.tls verify-full); the cause says whether it does not chain to the CA bundle (unknown CA, expired) or does not name the host connected to. Nothing was uploaded. For RDS, use the endpoint's own name (not a CNAME or an IP address); for another server, set connection.tlsCa to the CA bundle that signed its certificate (a path in the worker image or a Secrets Manager secret holding the PEM), or reissue the certificate for the host name; connection.tls \"require\" encrypts without checking who answers. Not retried.",
  DatabaseNotFound: "A database named in the source's config does not exist on the server. Compare the config's databases with the server's.",
  InsufficientPrivileges:
    "The backup user may connect but may not read everything the dump reads; the cause names what is missing (tables, schemas, large objects, SHOW VIEW, TRIGGER, EVENT, …) and the GRANT that fixes it. Nothing was uploaded. Run the SQL that `lifeboat grants SOURCE` prints (as an administrator of the database), then re-run the backup.",
  InvalidDumpOptions: "The source's dump options were refused (compression, excluded tables). Check them in the Lifeboat config.",
  DumpFailed:
    "The dump client failed. Its error is in the dump task's logs (CloudWatch, the worker's log group): look for lock timeouts, a server restart, or the task running out of memory or disk.",
  UploadFailed:
    "The dump task could not write to the primary bucket. Check S3 reachability from its subnets (VPC endpoint or NAT), the bucket policy and the KMS key policy, then re-run.",
  AlreadyCommitted:
    'This slot was already committed by another execution. Nothing is lost; look for duplicate schedules or a manual start for the same slot.',
  DumpTimedOut:
    "The dump did not finish within its schedule interval, so it would overlap the next slot. Has the database grown? Compare its size and the dump throughput of recent runs with the tier's schedule; give the dump task more CPU, compress less, or choose a tier with a longer interval.",
  WorkerError: 'The worker failed in a way it has no name for (a bug, or something unforeseen). Its logs have the stack trace; please report it.',
  Aborted: "The dump task was stopped before it finished (a deployment, a manual stop, capacity). See the ECS task's stopped reason.",
  ChecksumMismatch:
    'An artifact was damaged in transit or in storage: its bytes do not match the checksum recorded at dump time. Re-run the backup; if it happens again, check the bucket for tampering or lifecycle rules touching runs/.',
  SizeMismatch:
    'An artifact was damaged in transit or in storage: its size is not the one recorded at dump time. Re-run the backup; if it happens again, check the bucket for tampering or lifecycle rules touching runs/.',
  ArchiveCorrupt:
    'An artifact was damaged in transit or in storage: the restore tool could not read it to the end. Re-run the backup; if it happens again, compare with the dump task logs.',
  TableSetMismatch:
    'The tables in the archive differ from the tables counted at dump time. Check for schema changes during the dump and the excluded tables in the config.',
  IncompleteDump: 'The archive ends early: the dump was cut off. See the dump task logs for the reason, then re-run.',
  SuspiciousSize:
    'The dump is much smaller than recent runs. Before anything else, check whether data was deleted on the source or the wrong database was dumped.',
  ArtifactMissing: 'An artifact listed in the manifest is not in the bucket. Check lifecycle rules, the pruner and manual deletions under runs/.',
  InvalidManifest: "manifest.json could not be read. Check that the worker and the verifier run the same Lifeboat version, and look at the file itself.",
  NotVerified: "The verifier's result did not vouch for the manifest in the bucket. Compare the Verify step's output with manifest.json in the execution history.",
  OffsiteMissing:
    "The replica did not appear in time. Check the replication status of the listed objects (x-amz-replication-status on the primary: PENDING or FAILED), the replication rule and role, the offsite bucket's policy and KMS key, and the S3 Replication Time Control metrics (ReplicationLatency, OperationsFailedReplication).",
  EventNotDelivered: "EventBridge refused the event. Check the event bus named by LIFEBOAT_EVENT_BUS and the Record function's events:PutEvents permission.",
  InvalidInput: "A step received input it could not use: check the schedule's payload (or the manual execution's input) against docs/backup-run.md.",
  'States.HeartbeatTimeout':
    "The worker stopped sending heartbeats: it died (out of memory, killed, lost its network). See the ECS task's stopped reason and the last lines of its logs.",
  'States.Timeout':
    'The step ran longer than its timeout. Has the database grown? Compare its size with the size hint and the dump throughput of recent runs.',
  'States.TaskFailed':
    "The task could not start or ended without answering (image pull, no free IP addresses in the subnets, Fargate capacity). The cause above carries ECS's reason.",
  'Lambda.Unknown': "The step's Lambda function crashed (out of memory or timeout). See its logs in CloudWatch.",
};

/** What a failure at each state means for what is protected. */
const MEANING: Readonly<Record<string, string>> = {
  Dump: 'This run produced no backup: nothing was committed.',
  Verify: 'This run was not proven restorable: it does not count as a backup.',
  VerifyOnFargate: 'This run was not proven restorable: it does not count as a backup.',
  Commit: 'This run was not committed: it does not count as a backup.',
  AwaitOffsite:
    'This run is verified and counts as a backup in the primary bucket, but its offsite copy is not confirmed: if the primary region were lost now, this run would be lost with it.',
  Record: 'This run is verified and committed; only recording it (metrics, event) failed.',
  // The PITR run (lib/constructs/pitr-workflow.ts).
  BackupOnHost: 'pgBackRest took no backup on the host: nothing was committed. The WAL archive still covers the RPO if it is current (lifeboat status).',
  PollHost: 'The host\'s backup could not be followed: nothing was committed.',
  ReadHostOutput: 'The host\'s backup failed and its output could not be read: nothing was committed.',
  VerifySet: 'The new pgBackRest set was not proven restorable: it does not count as a backup.',
  Expire: 'This run is verified, committed and confirmed offsite: it counts as a backup. Only expiring older PITR sets failed; the repository keeps more than the policy asks until the next full\'s Expire.',
};

export interface Protection {
  /** The newest verified run of the source, if the catalog has one. */
  readonly lastVerified?: { readonly runId: string; readonly dataAsOf: Date };
  /** Whether the catalog was read (false: lastVerified unknown, `problem` says why). */
  readonly known: boolean;
  readonly problem?: string;
  readonly rpoSeconds?: number;
  readonly bucket?: string;
}

export interface FailureReport {
  readonly subject: string;
  readonly message: string;
  /** The `Backup Failed` event's detail. */
  readonly detail: Record<string, unknown>;
  readonly source: string;
}

export interface RecordFailureDeps {
  readonly metrics?: MetricsSink;
  readonly events?: EventSender;
  /** @default 'default' */
  readonly eventBus?: string;
  /** Where the last verified run is looked up; without it the message says the age is unknown. */
  readonly catalog?: { readonly s3: S3Client; readonly bucket: string };
  /** RPO per source, in seconds. */
  readonly rpoSeconds?: Readonly<Record<string, number>>;
  /** @default - the clock */
  readonly now?: () => Date;
  /** Where problems of the failure path itself go. @default console.error */
  readonly log?: (message: string) => void;
}

/** `$.notification` */
export interface Notification {
  readonly subject: string;
  readonly message: string;
}

/** Input: the whole state plus `$.failure` = `{ Error, Cause }` and `$.failedState`. Never throws. */
export async function recordFailure(state: unknown, deps: RecordFailureDeps = {}): Promise<Notification> {
  const log = deps.log ?? ((message: string) => console.error(message));
  try {
    const now = (deps.now ?? (() => new Date()))();
    const facts = failureFacts(state);
    const protection = await lookUpProtection(facts.source, deps);
    const report = describeFailure(state, protection, now);
    const problems: string[] = [];

    try {
      deps.metrics?.addDimension('source', report.source);
      deps.metrics?.addMetadata('runId', facts.runId ?? 'unknown');
      deps.metrics?.addMetadata('failedState', facts.failedState);
      deps.metrics?.addMetadata('error', facts.error);
      deps.metrics?.addMetric('BackupFailed', MetricUnit.Count, 1);
      // Its own metric, so that one alarm can watch every source for it (Metrics Insights).
      if (facts.error === 'SuspiciousSize') deps.metrics?.addMetric('SuspiciousDumpSize', MetricUnit.Count, 1);
    } catch (error) {
      problems.push(`the BackupFailed metric could not be recorded: ${describe(error)}`);
    }
    if (deps.events) {
      try {
        await putEvent(deps.events, deps.eventBus ?? DEFAULT_EVENT_BUS, { detailType: 'Backup Failed', detail: report.detail, time: now });
      } catch (error) {
        problems.push(`the "Backup Failed" EventBridge event could not be sent: ${describe(error)}`);
      }
    }
    for (const problem of problems) log(problem);
    const message = problems.length > 0 ? `${report.message}\n\nAlso: ${problems.join('; ')}.` : report.message;
    return { subject: report.subject, message };
  } catch (error) {
    // A bug in this function must not hide the failure it was reporting.
    log(`RecordFailure could not build its message: ${describe(error)}`);
    return fallbackNotification(state, error);
  }
}

interface FailureFacts {
  readonly source?: string;
  readonly runId?: string;
  /** The run id comes from the dump (a run), or from the schedule (only the slot is known). */
  readonly runKind: 'run' | 'slot' | 'unknown';
  readonly failedState: string;
  readonly error: string;
  readonly cause: string;
  readonly execution?: string;
}

/** Reads what can be read from the state; every field may be missing. */
export function failureFacts(state: unknown): FailureFacts {
  const root = asObject(state);
  const dump = asObject(root.dump);
  const failure = asObject(root.failure);
  const source = text(dump.source) ?? text(root.source);
  const dumpRunId = text(dump.runId);
  let runId: string | undefined;
  let runKind: FailureFacts['runKind'] = 'unknown';
  if (dumpRunId) {
    runId = dumpRunId;
    runKind = 'run';
  } else if (text(root.runId)) {
    runId = text(root.runId);
    runKind = 'slot';
  } else if (text(root.scheduledTime)) {
    const slot = new Date(text(root.scheduledTime) as string);
    if (!Number.isNaN(slot.getTime())) {
      runId = formatRunId(slot);
      runKind = 'slot';
    }
  }
  return {
    source,
    runId,
    runKind,
    failedState: text(root.failedState) ?? 'an unknown state',
    error: text(failure.Error) ?? text(failure.error) ?? 'UnknownError',
    cause: causeInWords(failure.Cause ?? failure.cause),
    execution: text(root.execution) ?? text(root.executionName),
  };
}

/** Builds subject, message and event detail. Pure. */
export function describeFailure(state: unknown, protection: Protection, now: Date): FailureReport {
  const facts = failureFacts(state);
  const source = facts.source ?? 'unknown source';
  const which = facts.runId ? `${facts.runKind === 'slot' ? 'slot' : 'run'} ${facts.runId}` : 'an unknown run';
  const subject = toSubject(`Lifeboat: ${source} backup failed at ${facts.failedState}: ${facts.error}`);
  const meaning = facts.error === 'AlreadyCommitted'
    ? 'The slot was already committed by an earlier execution: nothing is lost.'
    : MEANING[facts.failedState] ?? 'This run does not count as a backup.';
  const firstCheck = FIRST_CHECK[facts.error]
    ?? (facts.error.startsWith('Lambda.') ? FIRST_CHECK['Lambda.Unknown'] : undefined)
    ?? `Read the cause above, then the logs of the ${facts.failedState} step.`;
  const status = protectionInWords(source, protection, now);

  const lines = [
    `The backup of ${source} failed: ${which}, in the ${facts.failedState} state.`,
    '',
    `Error: ${facts.error}`,
    `Cause: ${facts.cause}`,
    '',
    `What it means: ${meaning} ${status.text}`,
    '',
    `First thing to check: ${firstCheck}`,
  ];
  if (facts.execution) lines.push('', `Execution: ${facts.execution}`);

  const detail: Record<string, unknown> = {
    source,
    runId: facts.runId ?? null,
    failedState: facts.failedState,
    error: facts.error,
    cause: truncate(facts.cause, EVENT_CAUSE_MAX_LENGTH),
    lastVerifiedRunId: protection.lastVerified?.runId ?? null,
    lastVerifiedAgeSeconds: status.ageSeconds ?? null,
    rpoSeconds: protection.rpoSeconds ?? null,
    rpoBreached: status.breached ?? null,
  };
  return { subject, message: lines.join('\n'), detail, source };
}

function protectionInWords(source: string, protection: Protection, now: Date): { text: string; ageSeconds?: number; breached?: boolean } {
  const rpo = protection.rpoSeconds;
  if (!protection.known) {
    return { text: `How old the last verified backup of ${source} is could not be determined${protection.problem ? ` (${protection.problem})` : ''}.` };
  }
  if (!protection.lastVerified) {
    const where = protection.bucket ? ` in s3://${protection.bucket}` : '';
    return { text: `${source} has no verified backup${where}: it is not protected at all.`, breached: rpo === undefined ? undefined : true };
  }
  const ageSeconds = Math.max(0, Math.round((now.getTime() - protection.lastVerified.dataAsOf.getTime()) / 1000));
  let text = `The last verified backup of ${source} is run ${protection.lastVerified.runId}, ${formatDuration(ageSeconds)} old`;
  if (rpo === undefined) return { text: `${text}.`, ageSeconds };
  const breached = ageSeconds > rpo;
  text += breached
    ? `; the RPO is ${formatDuration(rpo)}: it is breached by ${formatDuration(ageSeconds - rpo)}.`
    : `; the RPO is ${formatDuration(rpo)}: it will be breached in ${formatDuration(rpo - ageSeconds)} unless a backup succeeds.`;
  return { text, ageSeconds, breached };
}

async function lookUpProtection(source: string | undefined, deps: RecordFailureDeps): Promise<Protection> {
  const rpoSeconds = source ? deps.rpoSeconds?.[source] : undefined;
  if (!deps.catalog) return { known: false, problem: 'no catalog configured', rpoSeconds };
  if (!source) return { known: false, problem: 'the source is not known', rpoSeconds };
  const { s3, bucket } = deps.catalog;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from S3 within ${CATALOG_TIMEOUT_MS / 1000} s`)), CATALOG_TIMEOUT_MS);
    });
    const latest = await Promise.race([latestVerifiedRun(s3, bucket, source), timeout]);
    if (!latest) return { known: true, rpoSeconds, bucket };
    const startedAt = latest.manifest ? new Date(latest.manifest.startedAt) : undefined;
    const dataAsOf = startedAt && !Number.isNaN(startedAt.getTime()) ? startedAt : (runIdToDate(latest.runId) as Date);
    return { known: true, lastVerified: { runId: latest.runId, dataAsOf }, rpoSeconds, bucket };
  } catch (error) {
    return { known: false, problem: `the catalog in s3://${bucket} could not be read: ${describe(error)}`, rpoSeconds, bucket };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The Cause in words. Lambda failures arrive as `{"errorType","errorMessage","trace"}`, ECS task
 * failures as the task description (StoppedReason, containers' exit codes), task-token failures
 * as the worker's own message.
 */
export function causeInWords(cause: unknown): string {
  const raw = typeof cause === 'string' ? cause.trim() : cause === undefined || cause === null ? '' : JSON.stringify(cause);
  if (!raw) return 'no cause was given';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return truncate(raw, CAUSE_MAX_LENGTH);
  }
  const json = asObject(parsed);
  if (text(json.errorMessage)) return truncate(text(json.errorMessage) as string, CAUSE_MAX_LENGTH);
  if (text(json.StoppedReason)) {
    const containers = Array.isArray(json.Containers) ? json.Containers.map(asObject) : [];
    const exits = containers
      .map((container) => `${text(container.Name) ?? 'container'} exited ${container.ExitCode ?? '?'}${text(container.Reason) ? ` (${text(container.Reason)})` : ''}`)
      .join(', ');
    return truncate(`ECS stopped the task: ${text(json.StoppedReason)}${exits ? `; ${exits}` : ''}`, CAUSE_MAX_LENGTH);
  }
  if (text(json.message)) return truncate(text(json.message) as string, CAUSE_MAX_LENGTH);
  return truncate(raw, CAUSE_MAX_LENGTH);
}

/** SNS subjects: printable ASCII, no line breaks, at most 100 characters. */
export function toSubject(textValue: string): string {
  const ascii = textValue.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim();
  return ascii.length <= SUBJECT_MAX_LENGTH ? ascii : `${ascii.slice(0, SUBJECT_MAX_LENGTH - 3)}...`;
}

function fallbackNotification(state: unknown, error: unknown): Notification {
  let dumped: string;
  try {
    dumped = truncate(JSON.stringify(state), CAUSE_MAX_LENGTH);
  } catch {
    dumped = String(state);
  }
  return {
    subject: 'Lifeboat: backup run failed',
    message: `A backup run failed, and explaining it failed too (${describe(error)}). The state was: ${dumped}`,
  };
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function truncate(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
