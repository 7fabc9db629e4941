import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { restoreBinlogAt } from '../lib/binlog/restore-at';
import { binlogStatePrefix } from '../lib/domain/layout';
import { DEFAULT_CONFIG_FILE, formatSize, loadConfig, type LifeboatConfig } from '../lib/config';
import { engineOf, engineOfUrl } from '../lib/engines/registry';
import { runIdToDate } from '../lib/domain/run-id';
import { tlsFromUrl, type TlsOptions } from '../lib/domain/tls';
import { chooseRun } from '../lib/restore/choose-run';
import { restoreError } from '../lib/restore/errors';
import { restoreRun, type RestoreProgress, type RestoreTarget } from '../lib/restore/restore';
import { storageNames } from '../lib/stacks/naming';
import { RESTORE_PITR_USAGE, restoreFailed, restorePitrCommand, type PitrRestoreDeps } from './restore-pitr';

export const RESTORE_USAGE = `Usage: lifeboat restore SOURCE --target-url URL [options]
       lifeboat restore SOURCE --at TIME|latest --target-dir DIR [options]   (a PITR source, below)

Restores a verified run of SOURCE into a database server. Every artifact is downloaded and its
SHA-256 checked against the manifest before the target is touched; a target database that
already holds tables is refused unless --clean. The password is read from the environment
(LIFEBOAT_DB_PASSWORD, or PGPASSWORD / MYSQL_PWD), never from the command line.

  --target-url URL   postgres://user@host:port[/db] or mysql://… / mariadb://… (no password);
                     /db restores a one-database run under that name (PostgreSQL);
                     TLS: ?sslmode=verify-full|require|prefer|disable&sslrootcert=/path/ca.pem
                     (default verify-full: the RDS bundle for RDS endpoints, the public CAs
                     otherwise; prefer for 127.0.0.1, ::1 and localhost)
  --run ID           that run, e.g. 20261126T030000Z (refused unless verified)
  --at TIME          the latest verified run at or before TIME (ISO 8601 or a run id)
                     (default: the latest verified run). A MySQL/MariaDB source whose binary
                     logs are archived (method 'pitr') is restored to TIME itself: the newest
                     verified dump before it, then the binary logs from its coordinates replayed
                     up to TIME (or --at latest: the archive's end), into an empty server; the
                     plan is printed first (--dry-run: only the plan)
  --from WHERE       primary | offsite (default primary)
  --bucket BUCKET    default: LIFEBOAT_BUCKET for primary; the config's offsite bucket for offsite
  --config FILE      default ${DEFAULT_CONFIG_FILE} (read only for --from offsite defaults)
  --region REGION    default: the config's offsite region for offsite, else AWS_REGION
  --endpoint URL     S3-compatible endpoint (default: AWS; or LIFEBOAT_S3_ENDPOINT)
  --jobs N           pg_restore --jobs (default: the CPU count)
  --clean            replace what is in a non-empty target database (drops what the artifact replaces)
  --globals          PostgreSQL: create the source's roles from globals.sql first
  --no-owner         PostgreSQL: pg_restore --no-owner --no-privileges
${RESTORE_PITR_USAGE}`;


export interface RestoreRequest {
  readonly source: string;
  readonly target: RestoreTarget;
  /** The URL's database: the target name of a one-database run. */
  readonly targetDatabase?: string;
  readonly runId?: string;
  readonly at?: Date;
  /** `--at latest`: the end of a point-in-time source's archive. */
  readonly atLatest?: boolean;
  /** `--dry-run`: a point-in-time restore's plan, nothing written. */
  readonly dryRun?: boolean;
  readonly from: 'primary' | 'offsite';
  /** Set when known from the arguments or the environment; else resolved from the config. */
  readonly bucket?: string;
  readonly region?: string;
  readonly endpoint?: string;
  readonly configFile: string;
  readonly jobs?: number;
  readonly clean: boolean;
  readonly globals: boolean;
  readonly noOwner: boolean;
}

/** `--at`: an ISO 8601 time (with a zone, or UTC when none is given) or a run id. */
export function parseAt(text: string): Date | undefined {
  const asRunId = runIdToDate(text);
  if (asRunId) return asRunId;
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(text) || /^\d{4}-\d{2}-\d{2}$/.test(text) ? text : `${text}Z`;
  const date = new Date(zoned);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Reads the command line and the environment; every problem at once (`InvalidInput`). */
export function parseRestoreArgs(argv: readonly string[], env: NodeJS.ProcessEnv): RestoreRequest {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'target-url': { type: 'string' }, run: { type: 'string' }, at: { type: 'string' }, from: { type: 'string', default: 'primary' },
      config: { type: 'string', default: DEFAULT_CONFIG_FILE }, bucket: { type: 'string' }, region: { type: 'string' },
      endpoint: { type: 'string' }, jobs: { type: 'string' }, clean: { type: 'boolean', default: false },
      globals: { type: 'boolean', default: false }, 'no-owner': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  const problems: string[] = [];
  const source = positionals[0];
  if (positionals.length !== 1) problems.push(`SOURCE: give exactly one source name (got ${positionals.length === 0 ? 'none' : positionals.join(' ')})`);
  else if (!/^[a-z0-9-]+$/.test(source)) problems.push(`SOURCE: "${source}" is not valid (valid: a-z, 0-9 and "-")`);

  let url: URL | undefined;
  try {
    url = new URL(values['target-url'] ?? '');
  } catch {
    problems.push(`--target-url: ${values['target-url'] === undefined ? 'required' : 'not a URL'} (valid: postgres://user@host:5432/db)`);
  }
  const engine = url ? engineOfUrl(url)?.name : undefined;
  if (url && !engine) problems.push(`--target-url: unknown scheme "${url.protocol}" (valid: postgres://, mysql://, mariadb://)`);
  if (url?.password) {
    // Report without echoing the URL: it holds the password.
    problems.push('--target-url: contains a password; put it in LIFEBOAT_DB_PASSWORD instead (command lines are visible to every user of the machine)');
  }
  if (url && !url.hostname) problems.push('--target-url: no host (valid: postgres://user@host:5432/db)');
  const targetDatabase = url ? decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined : undefined;
  let tls: TlsOptions = { mode: 'verify-full' };
  if (url) {
    const parsed = tlsFromUrl(url, '--target-url');
    tls = parsed.tls;
    problems.push(...parsed.problems);
  }

  if (values.run !== undefined && values.at !== undefined) problems.push('--run and --at: give one of them, not both');
  if (values.run !== undefined && !runIdToDate(values.run)) problems.push(`--run: "${values.run}" is not valid (valid: a run id such as 20261126T030000Z)`);
  const latest = values.at === 'latest';
  const at = values.at !== undefined && !latest ? parseAt(values.at) : undefined;
  if (values.at !== undefined && !latest && !at) problems.push(`--at: "${values.at}" is not valid (valid: 2026-11-26T03:00:00Z, 2026-11-26, a run id, or latest)`);
  const from = values.from as string;
  if (from !== 'primary' && from !== 'offsite') problems.push(`--from: "${from}" is not valid (valid: primary, offsite)`);
  let jobs: number | undefined;
  if (values.jobs !== undefined) {
    jobs = Number(values.jobs);
    if (!/^\d+$/.test(values.jobs) || jobs < 1) problems.push(`--jobs: "${values.jobs}" is not valid (valid: a whole number of at least 1)`);
  }
  const facts = engine ? engineOf(engine) : undefined;
  if (facts && !facts.hasGlobals && (values.globals || values['no-owner'])) problems.push('--globals and --no-owner: PostgreSQL only');
  if (facts && !facts.restoresUnderAnotherName && targetDatabase) {
    problems.push('--target-url: a MySQL/MariaDB artifact recreates its database under its own name; give no /db (valid: mariadb://user@host:3306)');
  }
  const bucket = values.bucket ?? (from === 'primary' ? env.LIFEBOAT_BUCKET || undefined : undefined);
  if (from === 'primary' && !bucket) {
    problems.push('--bucket: required for --from primary unless LIFEBOAT_BUCKET is set (the primary bucket\'s name is generated by CloudFormation: see the stack outputs)');
  }
  if (problems.length > 0) throw restoreError('InvalidInput', `lifeboat restore: invalid arguments:\n  - ${problems.join('\n  - ')}`);

  const u = url as URL;
  return {
    source,
    target: {
      engine: engine as RestoreTarget['engine'],
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: u.port ? Number(u.port) : (facts as NonNullable<typeof facts>).defaultPort,
      username: decodeURIComponent(u.username) || (facts as NonNullable<typeof facts>).defaultUser,
      password: env.LIFEBOAT_DB_PASSWORD || env[(facts as NonNullable<typeof facts>).passwordEnv] || undefined,
      tls,
    },
    ...(targetDatabase ? { targetDatabase } : {}),
    ...(values.run !== undefined ? { runId: values.run } : {}),
    ...(at ? { at } : {}),
    ...(latest ? { atLatest: true } : {}),
    ...(values['dry-run'] ? { dryRun: true } : {}),
    from: from as RestoreRequest['from'],
    ...(bucket ? { bucket } : {}),
    ...(values.region ?? (from === 'primary' ? env.AWS_REGION : undefined) ? { region: values.region ?? env.AWS_REGION } : {}),
    ...(values.endpoint ?? env.LIFEBOAT_S3_ENDPOINT ? { endpoint: values.endpoint ?? env.LIFEBOAT_S3_ENDPOINT } : {}),
    configFile: values.config as string,
    ...(jobs !== undefined ? { jobs } : {}),
    clean: values.clean as boolean,
    globals: values.globals as boolean,
    noOwner: values['no-owner'] as boolean,
  };
}

/**
 * Where to read from. Offsite defaults come from the config: the deterministic offsite bucket
 * name and region, so a restore works with the primary region (and its stack outputs) gone.
 */
export function resolveBucket(request: RestoreRequest, load: (file: string) => LifeboatConfig): { bucket: string; region?: string } {
  if (request.from === 'primary' || (request.bucket && request.region)) {
    return { bucket: request.bucket as string, ...(request.region ? { region: request.region } : {}) };
  }
  const config = load(request.configFile);
  const region = request.region ?? config.offsite.region;
  if (request.bucket) return { bucket: request.bucket, region };
  const name = storageNames(config).offsiteBucketName;
  if (!/^[a-z0-9.-]+$/.test(name)) {
    throw restoreError('InvalidInput',
      `--bucket: the offsite bucket's name depends on the AWS account, which ${request.configFile} does not set (primary.account / offsite.account); give --bucket`);
  }
  return { bucket: name, region };
}

export interface RestoreDeps {
  /** @default - built with createS3Client from --region/--endpoint */
  readonly s3?: S3Client;
  /** Results and the chosen run (stdout). */
  readonly log?: (line: string) => void;
  /** Progress and errors (stderr). */
  readonly stderr?: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly loadConfig?: (file: string) => LifeboatConfig;
  readonly signal?: AbortSignal;
}

/** `--target-dir` on the command line: the PITR form (cli/restore-pitr.ts). */
const isPitrForm = (argv: readonly string[]) => argv.some((arg) => arg === '--target-dir' || arg.startsWith('--target-dir='));

/**
 * `lifeboat restore`: returns the exit code (0 restored, 1 failed, 2 invalid arguments). With
 * `--target-dir`, a PITR source to a point (cli/restore-pitr.ts); else a logical run into a server.
 */
export async function restoreCommand(argv: readonly string[], env: NodeJS.ProcessEnv, deps: RestoreDeps & PitrRestoreDeps = {}): Promise<number> {
  if (isPitrForm(argv)) return restorePitrCommand(argv, env, deps);
  const log = deps.log ?? ((line: string) => console.log(line));
  const stderr = deps.stderr ?? process.stderr;
  let request: RestoreRequest;
  let location: { bucket: string; region?: string };
  try {
    request = parseRestoreArgs(argv, env);
    location = resolveBucket(request, deps.loadConfig ?? ((file) => loadConfig(file)));
  } catch (error) {
    stderr.write(`${(error as Error).message}\n${RESTORE_USAGE}`);
    return 2;
  }
  const secrets = [request.target.password];
  const s3 = deps.s3 ?? createS3Client({ region: location.region, endpoint: request.endpoint, env });
  try {
    // A source whose binary logs are archived restores to the very moment: its base dump, then the binary logs.
    if ((request.at || request.atLatest) && (await hasBinlogArchive(s3, location.bucket, request.source))) {
      return await restoreBinlogCommand(request, location, s3, { log, signal: deps.signal });
    }
    if (request.atLatest) {
      throw restoreError('InvalidInput', `--at latest: ${request.source} has no binary-log archive in s3://${location.bucket} (binlog/${request.source}/); ` +
        'latest is the end of a point-in-time archive (valid: --at TIME, --run ID, or no --at for the latest verified run)');
    }
    if (request.dryRun) throw restoreError('InvalidInput', '--dry-run: only a point-in-time restore (--at, with an archive) has a plan to print');
    const run = await chooseRun(s3, location.bucket, request.source, { runId: request.runId, at: request.at });
    const manifest = run.manifest!;
    let databases: Record<string, string> | undefined;
    if (request.targetDatabase) {
      if (manifest.artifacts.length !== 1) {
        throw restoreError('InvalidInput',
          `--target-url names database ${request.targetDatabase}, but run ${run.source}/${run.runId} has ${manifest.artifacts.length} databases ` +
          `(${manifest.artifacts.map((a) => a.database).join(', ')}): give no /db to restore each under its own name`);
      }
      databases = { [manifest.artifacts[0].database]: request.targetDatabase };
    }
    const bytes = manifest.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0);
    log(`run ${run.source}/${run.runId} (${manifest.engine}, verified ${run.verification?.verifiedAt ?? ''}, ${formatSize(bytes)}) ` +
      `from s3://${location.bucket} (${request.from}${location.region ? `, ${location.region}` : ''})`);
    const { host, port, engine } = request.target;
    for (const artifact of manifest.artifacts) {
      log(`  ${artifact.database} (${formatSize(artifact.bytes)}) → database ${databases?.[artifact.database] ?? artifact.database} on ${engine} ${host}:${port}` +
        `${request.clean ? ' (clean: replaces what is there)' : ''}`);
    }
    const bar = new ProgressPrinter(stderr);
    const result = await restoreRun({
      s3,
      bucket: location.bucket,
      run,
      target: request.target,
      ...(databases ? { databases } : {}),
      ...(request.jobs !== undefined ? { jobs: request.jobs } : {}),
      clean: request.clean,
      globals: request.globals,
      noOwner: request.noOwner,
      onProgress: (progress) => bar.update(progress),
      log: (line) => {
        bar.clear();
        log(line);
      },
      signal: deps.signal,
    });
    bar.clear();
    const total = result.downloadMs + result.verifyMs + (result.globalsMs ?? 0) + result.restoreMs;
    log(`restored ${run.source}/${run.runId} into ${result.databases.join(', ')} on ${host}:${port} in ${seconds(total)}: ` +
      `download ${seconds(result.downloadMs)} (${formatSize(result.bytes)}), verify ${seconds(result.verifyMs)}, ` +
      `${result.globalsMs !== undefined ? `globals ${seconds(result.globalsMs)}, ` : ''}restore ${seconds(result.restoreMs)}`);
    return 0;
  } catch (error) {
    return restoreFailed(error, secrets, stderr);
  } finally {
    if (!deps.s3) s3.destroy();
  }
}

/** Whether the bucket holds a binary-log archive of `source` (an archiver run finished at least once). */
async function hasBinlogArchive(s3: S3Client, bucket: string, source: string): Promise<boolean> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: binlogStatePrefix(source), MaxKeys: 1 }));
  return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
}

/** `--at` of a MySQL/MariaDB point-in-time source: the plan, the base, the replay, each timed (lib/binlog/restore-at.ts). */
async function restoreBinlogCommand(
  request: RestoreRequest, location: { bucket: string; region?: string }, s3: S3Client, deps: { log: (line: string) => void; signal?: AbortSignal },
): Promise<number> {
  const engine = engineOf(request.target.engine);
  const tools = engine.binlogTools;
  if (!tools) throw restoreError('InvalidInput', `--target-url: a binary-log archive replays into MySQL or MariaDB, not ${engine.label}`);
  if (request.runId || request.clean || request.targetDatabase) {
    throw restoreError('InvalidInput', '--at with a binary-log archive restores into an empty server: --run, --clean and a /db in --target-url do not apply');
  }
  const target = request.atLatest ? 'latest' as const : request.at as Date;
  const result = await restoreBinlogAt({
    s3, bucket: location.bucket, source: request.source, target: request.target, at: target,
    binlogClient: tools.binlogClient, sqlClient: engine.sqlClients[0] as string, dryRun: request.dryRun ?? false,
    log: deps.log, signal: deps.signal,
  });
  if (request.dryRun) return 0;
  const t = result.timings;
  deps.log(`restored ${request.source} to ${target === 'latest' ? 'latest' : target.toISOString()} on ${request.target.host}:${request.target.port} in ` +
    `${(t.planSeconds + t.restoreSeconds + t.replaySeconds).toFixed(1)} s: plan ${t.planSeconds.toFixed(1)} s, base ${t.restoreSeconds.toFixed(1)} s, binlog replay ${t.replaySeconds.toFixed(1)} s`);
  return 0;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A one-line bar redrawn in place on a TTY; a plain line every few seconds otherwise (logs, CI). */
export class ProgressPrinter {
  private lastPlain = 0;
  private drawn = false;
  /** The phase whose final line is printed: the meter reports the end more than once. */
  private finished?: RestoreProgress['phase'];

  constructor(private readonly out: { write(text: string): unknown; readonly isTTY?: boolean }) {}

  update(progress: RestoreProgress): void {
    const line = formatProgress(progress);
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line}`);
      this.drawn = true;
      return;
    }
    const done = progress.bytes >= progress.totalBytes;
    if (done && this.finished === progress.phase) return;
    if (Date.now() - this.lastPlain < 2_000 && !done && progress.bytes > 0) return;
    if (done) this.finished = progress.phase;
    if (progress.bytes === 0 && progress.totalBytes > 0 && this.lastPlain !== 0) return;
    this.lastPlain = Date.now();
    this.out.write(`${line}\n`);
  }

  clear(): void {
    if (this.drawn) this.out.write('\r\x1b[2K');
    this.drawn = false;
  }
}

/** `download  12.3 MB / 40.0 MB  31%  5.1 MB/s  ETA 6s` */
export function formatProgress(progress: RestoreProgress): string {
  const percent = progress.totalBytes > 0 ? Math.floor((100 * progress.bytes) / progress.totalBytes) : 100;
  const width = 20;
  const filled = Math.min(width, Math.round((percent / 100) * width));
  const eta = progress.etaSeconds !== undefined && progress.bytes < progress.totalBytes ? `  ETA ${Math.ceil(progress.etaSeconds)}s` : '';
  return `${progress.phase.padEnd(8)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${formatSize(progress.bytes)} / ${formatSize(progress.totalBytes)}` +
    `  ${percent}%  ${formatSize(Math.round(progress.bytesPerSecond))}/s${eta}`;
}
