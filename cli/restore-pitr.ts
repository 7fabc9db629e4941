/**
 * `lifeboat restore SOURCE --at TIME|latest --target-dir DIR`: a PITR source (pgBackRest) restored
 * to any point of its window into an empty directory on this machine (lib/pitr/restore-at.ts).
 * The plan is printed first; then each phase with its seconds, and how to start the directory.
 *
 * Credentials: the operator's, from the SDK's default chain (the S3 client's), resolved once and
 * handed to pgBackRest as shared keys in its environment only — never on a command line, in a
 * file or in a log line.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { DEFAULT_CONFIG_FILE, formatSize, loadConfig, type LifeboatConfig, type Source } from '../lib/config';
import { lifeboatError, redact } from '../lib/domain/errors';
import { formatTargetTime } from '../lib/pitr/pgbackrest';
import {
  AT_VALID,
  inspectTargetDir,
  parsePitrAt,
  planRestoreAt,
  repositoryEndpoint,
  restoreAt,
  type RepositoryEndpoint,
  type RestoreAtPlan,
  type RestoreAtResult,
  type TargetDir,
} from '../lib/pitr/restore-at';
import type { PitrTarget } from '../lib/pitr/restore-plan';
import { storageNames } from '../lib/stacks/naming';

export const RESTORE_PITR_USAGE = `
       lifeboat restore SOURCE --at TIME|latest --target-dir DIR [options]

Restores a point-in-time source (method 'pitr', pgBackRest) to any moment of its restorable
window into an empty directory on this machine. Prints the plan first (the backup set, the WAL
to replay, the window, the estimate from the last PITR drill), then restores with pgBackRest
as the directory's owner, starts PostgreSQL of the source's major on a free loopback port,
confirms that recovery reached the target, stops it cleanly, and times each phase. The S3
credentials are the AWS SDK's (the default chain), passed to pgBackRest in its environment only.

  --at TIME|latest   an ISO-8601 time with its zone (2026-12-03T15:44:15Z, 2026-12-03T16:44:15.250+01:00),
                     or latest: the end of the archive
  --target-dir DIR   an empty directory, or a new one in an existing directory; as root, owned by
                     the OS user that runs the server (PostgreSQL refuses root)
  --from WHERE       primary | offsite (default primary)
  --bucket BUCKET    default: LIFEBOAT_BUCKET for primary; the config's offsite bucket for offsite
  --config FILE      default ${DEFAULT_CONFIG_FILE} (the source's stanza and OS user)
  --region REGION    default: AWS_REGION, else the config's primary region (offsite: its region)
  --endpoint URL     S3-compatible endpoint for the reads (default: AWS; or LIFEBOAT_S3_ENDPOINT)
  --repo-endpoint URL  pgBackRest's S3 endpoint, https://HOST[:PORT] (default: --endpoint when it is
                     HTTPS to a host name, else the region's)
  --repo-ca-file FILE  CA bundle of that endpoint (default: the system's)
  --pg-bin-dir DIR   PostgreSQL binaries (default: /usr/lib/postgresql/<major>/bin or /usr/pgsql-<major>/bin)
  --dry-run          print the plan and stop; nothing is written

Restoring onto the database host itself (through SSM) is not this command's.
`;

export interface PitrRestoreRequest {
  readonly source: string;
  readonly target: PitrTarget;
  /** Absolute. */
  readonly targetDir: string;
  readonly from: 'primary' | 'offsite';
  readonly bucket?: string;
  readonly region?: string;
  readonly endpoint?: string;
  readonly repoEndpoint?: string;
  readonly repoCaFile?: string;
  readonly pgBinDir?: string;
  readonly configFile: string;
  readonly dryRun: boolean;
}

/** Reads the command line of the PITR form; every problem at once (`InvalidInput`). */
export function parsePitrRestoreArgs(argv: readonly string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): PitrRestoreRequest {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      at: { type: 'string' }, 'target-dir': { type: 'string' }, 'target-url': { type: 'string' }, run: { type: 'string' },
      from: { type: 'string', default: 'primary' }, bucket: { type: 'string' }, config: { type: 'string', default: DEFAULT_CONFIG_FILE },
      region: { type: 'string' }, endpoint: { type: 'string' }, 'repo-endpoint': { type: 'string' }, 'repo-ca-file': { type: 'string' },
      'pg-bin-dir': { type: 'string' }, 'dry-run': { type: 'boolean', default: false },
    },
  });
  const problems: string[] = [];
  const source = positionals[0];
  if (positionals.length !== 1) problems.push(`SOURCE: give exactly one source name (got ${positionals.length === 0 ? 'none' : positionals.join(' ')})`);
  else if (!/^[a-z0-9-]+$/.test(source)) problems.push(`SOURCE: "${source}" is not valid (valid: a-z, 0-9 and "-")`);
  if (values['target-url'] !== undefined) problems.push('--target-url and --target-dir: give one (--target-url restores a logical run into a server, --target-dir a PITR source into a directory)');
  if (values.run !== undefined) problems.push('--run: a PITR restore is to a point, not a run (valid: --at TIME|latest)');
  const target = values.at === undefined ? undefined : parsePitrAt(values.at);
  if (values.at === undefined) problems.push(`--at: required with --target-dir (${AT_VALID})`);
  else if (!target) problems.push(`--at: "${values.at}" is not valid (${AT_VALID})`);
  const targetDir = values['target-dir'] as string;
  if (!targetDir) problems.push('--target-dir: give a directory (valid: an empty directory, or a new one in an existing directory)');
  const from = values.from as string;
  if (from !== 'primary' && from !== 'offsite') problems.push(`--from: "${from}" is not valid (valid: primary, offsite)`);
  for (const flag of ['repo-ca-file', 'pg-bin-dir'] as const) {
    if (values[flag] !== undefined && !values[flag]) problems.push(`--${flag}: give a path`);
  }
  const bucket = values.bucket ?? (from === 'primary' ? env.LIFEBOAT_BUCKET || undefined : undefined);
  if (from === 'primary' && !bucket) {
    problems.push('--bucket: required for --from primary unless LIFEBOAT_BUCKET is set (the primary bucket\'s name is generated by CloudFormation: see the stack outputs)');
  }
  if (problems.length > 0) throw lifeboatError('InvalidInput', `lifeboat restore: invalid arguments:\n  - ${problems.join('\n  - ')}`);
  const endpoint = values.endpoint ?? (env.LIFEBOAT_S3_ENDPOINT || undefined);
  return {
    source,
    target: target as PitrTarget,
    targetDir: resolve(cwd, targetDir),
    from: from as PitrRestoreRequest['from'],
    ...(bucket ? { bucket } : {}),
    ...(values.region ? { region: values.region } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(values['repo-endpoint'] ? { repoEndpoint: values['repo-endpoint'] } : {}),
    ...(values['repo-ca-file'] ? { repoCaFile: resolve(cwd, values['repo-ca-file']) } : {}),
    ...(values['pg-bin-dir'] ? { pgBinDir: resolve(cwd, values['pg-bin-dir']) } : {}),
    configFile: values.config as string,
    dryRun: values['dry-run'] as boolean,
  };
}

/** The source (a PITR one), where to read, and pgBackRest's endpoint; InvalidInput naming what does not fit. */
export function resolvePitrSource(request: PitrRestoreRequest, config: LifeboatConfig, env: NodeJS.ProcessEnv): {
  source: Source; bucket: string; region: string; endpoint: RepositoryEndpoint;
} {
  const source = config.sources.find((candidate) => candidate.name === request.source);
  if (!source) {
    throw lifeboatError('InvalidInput', `SOURCE: ${request.source} is not a source of ${request.configFile} (known: ${config.sources.map((candidate) => candidate.name).join(', ') || 'none'})`);
  }
  if (!source.methods.includes('pitr') || !source.pitr) {
    throw lifeboatError('InvalidInput', `source ${source.name} has no point-in-time recovery (methods: ${source.methods.join(', ')}): --at with --target-dir restores a PITR source; ` +
      `restore a logical run with --target-url URL [--at TIME | --run ID] instead`);
  }
  const region = request.region ?? (request.from === 'offsite' ? config.offsite.region : env.AWS_REGION || config.primary.region);
  const bucket = request.bucket ?? storageNames(config).offsiteBucketName;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw lifeboatError('InvalidInput', `--bucket: the offsite bucket's name depends on the AWS account, which ${request.configFile} does not set (primary.account / offsite.account); give --bucket`);
  }
  const { endpoint, problem } = repositoryEndpoint({ region, ...(request.endpoint ? { endpoint: request.endpoint } : {}), ...(request.repoEndpoint ? { repoEndpoint: request.repoEndpoint } : {}) });
  if (!endpoint) throw lifeboatError('InvalidInput', problem as string);
  return { source, bucket, region, endpoint };
}

export interface PitrRestoreDeps {
  /** @default - built with createS3Client from --region/--endpoint; its credentials are the ones pgBackRest gets */
  readonly s3?: S3Client;
  readonly log?: (line: string) => void;
  readonly stderr?: { write(text: string): unknown };
  readonly loadConfig?: (file: string) => LifeboatConfig;
  readonly signal?: AbortSignal;
  /** @default 'pgbackrest' on PATH */
  readonly pgbackrestCommand?: string;
}

const secs = (value: number) => `${value.toFixed(1)} s`;
const iso = (date: Date | undefined) => date?.toISOString() ?? '(none)';
const targetText = (target: PitrTarget) => (target === 'latest' ? 'latest (the end of the archive)' : target.time.toISOString());

/** The plan, as printed before anything is written. */
export function formatRestoreAtPlan(source: Source, planned: RestoreAtPlan, where: { bucket: string; from: string; region: string }, dir: TargetDir): string[] {
  const { plan, drill } = planned;
  const set = plan.set;
  const lines = [
    `plan: restore ${source.name} to ${targetText(plan.target)} from s3://${where.bucket}${planned.repoPath}/ (${where.from}, ${where.region}; stanza ${source.pitr?.stanza})`,
    `  set       ${set.label} (${set.type}, ${iso(set.startTime)} to ${iso(set.stopTime)}; ${formatSize(set.size)}, ${formatSize(set.repoSize)} in the repository)`,
    `  WAL       ${plan.wal.from} to ${plan.wal.to}: ${plan.wal.segments} segment(s), ${formatSize(plan.wal.bytes)} to replay at most`,
    `  window    ${iso(plan.window.earliest)} to ${iso(plan.window.latest)}`,
    ...plan.warnings.map((warning) => `  warning   ${warning}`),
    drill
      ? `  estimate  ~${secs(drill.measuredRtoSeconds)} from the last PITR drill (${drill.drillId}, ${drill.verdict}: restore ${secs(drill.timings.restoreSeconds)}, ` +
        `download ${secs(drill.timings.downloadSeconds)}, checks ${secs(drill.timings.checkSeconds)}), against the tier's RTO of ${secs(source.tier.rtoSeconds)}`
      : `  estimate  none: ${planned.drillProblem ? `the drill reports could not be read (${planned.drillProblem})` : `no PITR drill of ${source.name} has been reported yet`}`,
    `  into      ${dir.path} (${dir.exists ? 'an empty directory' : 'a new directory'}${dir.owner ? `, as ${dir.ownerName}` : ''})` +
      `${planned.pgMajor !== undefined ? `, PostgreSQL ${planned.pgMajor}` : ''}`,
    '  (restoring onto the database host itself, through SSM, is not part of this command)',
  ];
  return lines;
}

/** The phases, the total and how to start the restored directory. */
export function formatRestoreAtResult(source: Source, target: PitrTarget, dir: TargetDir, result: RestoreAtResult): string[] {
  const { timings: t, check } = result;
  const total = t.planSeconds + t.restoreSeconds + t.replaySeconds + t.confirmSeconds;
  const how = target === 'latest' ? '--type=default (to the end of the archive)' : `--type=time --target="${formatTargetTime(target.time)}" --target-action=promote`;
  const asOwner = dir.owner ? `sudo -u ${dir.ownerName} ` : '';
  return [
    `restore   pgbackrest restore --set=${result.set} ${how}: ${secs(t.restoreSeconds)}`,
    `replay    PostgreSQL ${result.pgMajor} (${result.binDir}) on 127.0.0.1:${result.port}: recovery ended, promoted: ${secs(t.replaySeconds)}`,
    `confirm   ${check.detail}; stopped cleanly (${result.stoppedState}): ${secs(t.confirmSeconds)}`,
    ...(result.configWritten.length > 0 ? [`note      the source keeps ${result.configWritten.join(' and ')} outside its data directory: written with defaults (review them)`] : []),
    `restored ${source.name} to ${targetText(target)} into ${dir.path} in ${secs(total)}: ` +
      `plan ${secs(t.planSeconds)}, restore ${secs(t.restoreSeconds)}, replay+start ${secs(t.replaySeconds)}, confirm ${secs(t.confirmSeconds)}`,
    `to start it: ${asOwner}${result.binDir}/pg_ctl -D ${dir.path} -l ${dir.path}.log start`,
    '  (its postgresql.conf is the source\'s: check port and listen_addresses first; archive_mode is off, so it never archives into the source\'s repository: ' +
      'configure archiving before it serves as a primary)',
  ];
}

/** `lifeboat restore SOURCE --at … --target-dir …`: 0 restored (or planned, --dry-run), 1 failed, 2 invalid arguments. */
export async function restorePitrCommand(argv: readonly string[], env: NodeJS.ProcessEnv, deps: PitrRestoreDeps = {}): Promise<number> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const stderr = deps.stderr ?? process.stderr;
  let request: PitrRestoreRequest;
  let resolved: ReturnType<typeof resolvePitrSource>;
  let dir: TargetDir;
  try {
    request = parsePitrRestoreArgs(argv, env);
    resolved = resolvePitrSource(request, (deps.loadConfig ?? ((file) => loadConfig(file)))(request.configFile), env);
    dir = inspectTargetDir(request.targetDir);
  } catch (error) {
    const { name, message } = error as Error;
    stderr.write(`${message}\n`);
    if (name === 'TargetNotEmpty') return 1;
    if (name === 'InvalidInput' || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) stderr.write(`Usage: lifeboat restore${RESTORE_PITR_USAGE}`);
    return name === 'InvalidInput' || name === 'ConfigError' || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
  const { source, bucket, region, endpoint } = resolved;
  const s3 = deps.s3 ?? createS3Client({ region, endpoint: request.endpoint, env });
  let secrets: string[] = [];
  try {
    const planned = await planRestoreAt({ s3, bucket, source, target: request.target, ...(deps.signal ? { signal: deps.signal } : {}) });
    for (const line of formatRestoreAtPlan(source, planned, { bucket, from: request.from, region }, dir)) log(line);
    if (request.dryRun) {
      log('dry run: nothing was written');
      return 0;
    }
    const credentials = await s3.config.credentials();
    secrets = [credentials.secretAccessKey, credentials.sessionToken].filter((value): value is string => !!value);
    const result = await restoreAt({
      planned,
      source,
      targetDir: dir,
      repository: {
        bucket,
        region,
        ...endpoint,
        credentials: { type: 'shared', accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}) },
      },
      ...(request.repoCaFile ? { caFile: request.repoCaFile } : {}),
      ...(request.pgBinDir ? { pgBinDir: request.pgBinDir } : {}),
      ...(deps.pgbackrestCommand ? { pgbackrestCommand: deps.pgbackrestCommand } : {}),
      onLog: (line) => log(`  ${redact(line, secrets).trimStart()}`),
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    for (const line of formatRestoreAtResult(source, request.target, dir, result)) log(line);
    return 0;
  } catch (error) {
    return restoreFailed(error, secrets, stderr);
  } finally {
    if (!deps.s3) s3.destroy();
  }
}

/** A restore that failed: its name and message (secrets removed) on stderr; exit 2 for bad input, else 1. */
export function restoreFailed(error: unknown, secrets: readonly (string | undefined)[], stderr: { write(text: string): unknown }): number {
  const { name, message } = error as Error;
  stderr.write(`restore failed: ${name}: ${redact(message, secrets)}\n`);
  return name === 'InvalidInput' ? 2 : 1;
}
