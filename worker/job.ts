import { lifeboatError } from '../lib/domain/errors';
import { formatRunId, isRunId } from '../lib/domain/run-id';
import { ENGINE_NAMES, engineOf } from '../lib/engines/registry';
import type { Engine, ObjectLockMode } from '../lib/config/types';
import { defaultCaFile, missingRdsCaHint, TLS_MODES, type TlsMode } from '../lib/domain/tls';

/** One backup run of one source: everything the worker needs, secrets included. */
export interface BackupJob {
  readonly source: string;
  /** A registered engine's name; a job's environment names a built-in one. */
  readonly engine: string;
  readonly tier: string;
  readonly runId: string;
  readonly target: {
    readonly host: string;
    readonly port: number;
    readonly databases: readonly string[];
    readonly username: string;
    /** Never logged, never in an argv, a message or a manifest. */
    readonly password?: string;
    /**
     * TLS to the database (lib/domain/tls.ts). `caPem` is a CA bundle's text (from a secret):
     * the run writes it to a file of its own and hands the clients that file.
     */
    readonly tls: { readonly mode: TlsMode; readonly caFile?: string; readonly caPem?: string };
  };
  readonly bucket: string;
  readonly s3Endpoint?: string;
  readonly region?: string;
  /** Object Lock retention given to every object of the run; none when undefined. */
  readonly retentionSeconds?: number;
  readonly objectLockMode: ObjectLockMode;
  readonly sizeHintBytes?: number;
  readonly compression?: string;
  readonly exactCountMaxBytes?: number;
  readonly excludeTables: readonly string[];
  /**
   * The run gives up (aborting its upload, committing nothing) after this long: a dump that
   * outlives its schedule interval would overlap the next slot.
   */
  readonly deadlineSeconds?: number;
  /** Set when Step Functions started the task with .waitForTaskToken. */
  readonly taskToken?: string;
  /** The dump records its binlog coordinates (JOB_ENV.binlogCoordinates). */
  readonly binlogCoordinates?: boolean;
}

/** The environment variables the task definition sets (and the state machine overrides). */
export const JOB_ENV = {
  source: 'LIFEBOAT_SOURCE',
  engine: 'LIFEBOAT_ENGINE',
  tier: 'LIFEBOAT_TIER',
  runId: 'LIFEBOAT_RUN_ID',
  /** The schedule slot (`<aws.scheduler.scheduled-time>`), when no run id is given. */
  scheduledTime: 'LIFEBOAT_SCHEDULED_TIME',
  host: 'LIFEBOAT_DB_HOST',
  port: 'LIFEBOAT_DB_PORT',
  databases: 'LIFEBOAT_DB_NAMES',
  username: 'LIFEBOAT_DB_USER',
  password: 'LIFEBOAT_DB_PASSWORD',
  /** verify-full, require, prefer or disable; default verify-full. */
  tlsMode: 'LIFEBOAT_DB_TLS_MODE',
  /** verify-full's CA bundle, a file in the image; default: the RDS bundle for RDS endpoints, the public CAs otherwise. */
  tlsCaFile: 'LIFEBOAT_DB_TLS_CA_FILE',
  /** verify-full's CA bundle as PEM text (ECS injects it from the secret connection.tlsCa names). */
  tlsCaPem: 'LIFEBOAT_DB_TLS_CA_PEM',
  bucket: 'LIFEBOAT_BUCKET',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
  retentionSeconds: 'LIFEBOAT_RETENTION_SECONDS',
  objectLockMode: 'LIFEBOAT_OBJECT_LOCK_MODE',
  sizeHintBytes: 'LIFEBOAT_SIZE_HINT_BYTES',
  compression: 'LIFEBOAT_COMPRESSION',
  exactCountMaxBytes: 'LIFEBOAT_EXACT_COUNT_MAX_BYTES',
  excludeTables: 'LIFEBOAT_EXCLUDE_TABLES',
  taskToken: 'LIFEBOAT_TASK_TOKEN',
  deadlineSeconds: 'LIFEBOAT_DEADLINE_SECONDS',
  /** `1`: a point-in-time source's dump records its binlog coordinates (MySQL/MariaDB, method 'pitr'). */
  binlogCoordinates: 'LIFEBOAT_BINLOG_COORDINATES',
} as const;


/**
 * Reads a job from the environment, reporting every missing or invalid variable at once
 * (name, value, what would be valid). The password's value is never echoed.
 */
export function jobFromEnv(env: Record<string, string | undefined>): BackupJob {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name}: required`);
    return value ?? '';
  };
  const optionalInt = (name: string, min: number): number | undefined => {
    const text = env[name]?.trim();
    if (!text) return undefined;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < min) {
      problems.push(`${name}: "${text}" is not valid (valid: a whole number ≥ ${min})`);
      return undefined;
    }
    return value;
  };
  const list = (text: string | undefined) => (text ?? '').split(',').map((item) => item.trim()).filter(Boolean);

  const engine = required(JOB_ENV.engine) as Engine;
  if (engine && !ENGINE_NAMES.includes(engine)) problems.push(`${JOB_ENV.engine}: "${engine}" is not valid (valid: ${ENGINE_NAMES.join(', ')})`);
  const runId = runIdFrom(env, problems);
  const source = required(JOB_ENV.source);
  if (source && !/^[a-z0-9-]+$/.test(source)) problems.push(`${JOB_ENV.source}: "${source}" is not valid (valid: a-z, 0-9 and "-")`);
  const databases = list(required(JOB_ENV.databases));
  const lockText = (env[JOB_ENV.objectLockMode] ?? 'GOVERNANCE').trim().toUpperCase();
  if (lockText !== 'GOVERNANCE' && lockText !== 'COMPLIANCE') {
    problems.push(`${JOB_ENV.objectLockMode}: "${env[JOB_ENV.objectLockMode]}" is not valid (valid: GOVERNANCE, COMPLIANCE)`);
  }
  const defaultPort = ENGINE_NAMES.includes(engine) ? engineOf(engine).defaultPort : undefined;
  const host = required(JOB_ENV.host);

  const job: BackupJob = {
    source,
    engine,
    tier: required(JOB_ENV.tier),
    runId,
    target: {
      host,
      port: optionalInt(JOB_ENV.port, 1) ?? (defaultPort as number),
      databases,
      username: required(JOB_ENV.username),
      password: env[JOB_ENV.password] || undefined,
      tls: tlsFrom(env, host, problems),
    },
    bucket: required(JOB_ENV.bucket),
    s3Endpoint: env[JOB_ENV.s3Endpoint] || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    retentionSeconds: optionalInt(JOB_ENV.retentionSeconds, 1),
    objectLockMode: lockText as ObjectLockMode,
    sizeHintBytes: optionalInt(JOB_ENV.sizeHintBytes, 1),
    compression: env[JOB_ENV.compression] || undefined,
    exactCountMaxBytes: optionalInt(JOB_ENV.exactCountMaxBytes, 0),
    excludeTables: list(env[JOB_ENV.excludeTables]),
    deadlineSeconds: optionalInt(JOB_ENV.deadlineSeconds, 1),
    taskToken: env[JOB_ENV.taskToken] || undefined,
    ...(env[JOB_ENV.binlogCoordinates]?.trim() === '1' ? { binlogCoordinates: true } : {}),
  };
  if (problems.length > 0) {
    throw lifeboatError('InvalidInput', `invalid worker environment:\n  - ${problems.join('\n  - ')}`);
  }
  return job;
}

/**
 * The TLS of the run: verify-full unless the environment says otherwise (never prefer by
 * default), its CA a file or PEM text, else the host's default bundle. The PEM is never echoed.
 */
export function tlsFrom(env: Record<string, string | undefined>, host: string, problems: string[]): BackupJob['target']['tls'] {
  const modeText = env[JOB_ENV.tlsMode]?.trim() || 'verify-full';
  const mode = modeText as TlsMode;
  if (!TLS_MODES.includes(mode)) problems.push(`${JOB_ENV.tlsMode}: "${modeText}" is not valid (valid: ${TLS_MODES.join(', ')})`);
  const caFile = env[JOB_ENV.tlsCaFile]?.trim() || undefined;
  const caPem = env[JOB_ENV.tlsCaPem]?.trim() || undefined;
  if (mode !== 'verify-full') {
    for (const name of [caFile && JOB_ENV.tlsCaFile, caPem && JOB_ENV.tlsCaPem].filter(Boolean)) {
      problems.push(`${name}: set, but only ${JOB_ENV.tlsMode}=verify-full checks a CA bundle (it is "${modeText}")`);
    }
    return { mode };
  }
  if (caFile && caPem) problems.push(`${JOB_ENV.tlsCaFile} and ${JOB_ENV.tlsCaPem}: give one CA bundle, not both`);
  if (caPem && !caPem.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push(`${JOB_ENV.tlsCaPem}: not a PEM certificate bundle (valid: the text of one or more "-----BEGIN CERTIFICATE-----" blocks)`);
  }
  if (caPem) return { mode, caPem };
  const file = caFile ?? (host ? defaultCaFile(host) : undefined);
  if (host && file === undefined) {
    problems.push(`${JOB_ENV.tlsCaFile}: required for verify-full to "${host}": ${missingRdsCaHint(host)}`);
  }
  return { mode, ...(file !== undefined ? { caFile: file } : {}) };
}

/** The run id: given, or the UTC slot time the scheduler started the run for. */
function runIdFrom(env: Record<string, string | undefined>, problems: string[]): string {
  const given = env[JOB_ENV.runId]?.trim();
  if (given) {
    if (!isRunId(given)) problems.push(`${JOB_ENV.runId}: "${given}" is not valid (valid: a UTC slot time such as 20261126T030000Z)`);
    return given;
  }
  const scheduled = env[JOB_ENV.scheduledTime]?.trim();
  if (!scheduled) {
    problems.push(`${JOB_ENV.runId}: required (or ${JOB_ENV.scheduledTime}: the schedule's slot time)`);
    return '';
  }
  const time = new Date(scheduled);
  if (Number.isNaN(time.getTime())) {
    problems.push(`${JOB_ENV.scheduledTime}: "${scheduled}" is not valid (valid: an ISO 8601 time such as 2026-11-26T03:00:00Z)`);
    return '';
  }
  return formatRunId(new Date(Math.floor(time.getTime() / 1000) * 1000));
}
