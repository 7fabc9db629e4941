/**
 * A restore of a PITR source to a point (`lifeboat restore SOURCE --at TIME|latest --target-dir
 * DIR`), in four timed phases:
 *
 * 1. plan — from the bucket alone (backup.info, the archive's listing, the last PITR drill
 *    report): which set, how much WAL, the window (lib/pitr/restore-plan.ts refuses a target
 *    outside it, past a gap or across a timeline switch), the estimate. Nothing is written.
 * 2. restore — `pgbackrest restore` of that set into the empty target directory, `--type=time
 *    --target=… --target-action=promote` (or to the end of the archive), as the directory's owner.
 * 3. replay and start — PostgreSQL of the directory's major on a free loopback port
 *    (restored-server.ts) replays the WAL, fetched with archive-get, and promotes.
 * 4. confirm — recovery ended where it was asked to (recovery.ts), and the server stops cleanly.
 *
 * A failure after the restore began empties the target directory again (it was empty, or did not
 * exist): a partial or short cluster is never left behind looking like the one asked for. The
 * runner's work directory (its config, the CA copy, the server's socket and log) is private to one
 * restore and removed afterwards. The S3 keys travel in child environments only (pgbackrest.ts).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { chownSync, copyFileSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { recentDrillReports } from '../catalog/drills';
import type { Source } from '../config/types';
import type { DrillReport } from '../domain/drill-report';
import { lifeboatError } from '../domain/errors';
import type { OsUser } from '../servers/processes';
import { listArchivedSegments, repositoryKey } from './archive-state';
import { readBackupSets } from './backup-info';
import { pgBackRest, type PgBackRestOptions, type PgBackRestRepository, type S3Credentials } from './pgbackrest';
import { checkRecoveryReached, secondsSince, type RecoveryCheck } from './recovery';
import { completeConfigFiles, pgBinDirFor, startRestoredServer, type RestoredServer } from './restored-server';
import { planPitrRestore, type PitrRestorePlan, type PitrTarget } from './restore-plan';
import { pitrPrefix } from './setup';

/**
 * The `engine` of a PITR drill's report under drills/<source>/ (lib/domain/drill-report.ts): the
 * reports of a source with both methods are told apart by it; a logical drill's is its database
 * engine's.
 */
export const PITR_DRILL_ENGINE = 'pgbackrest';

/** How many of a source's newest drill reports are searched for a PITR one. */
const DRILL_REPORTS_SEARCHED = 20;

// ---------------------------------------------------------------------------------------------
// Input

const ISO_WITH_ZONE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)$/;

/** What `--at` accepts, for messages. */
export const AT_VALID = 'valid: an ISO-8601 time with its zone, to the millisecond at most, e.g. 2026-12-03T15:44:15Z or 2026-12-03T16:44:15.250+01:00; or latest';

/**
 * `--at`: `latest`, or an ISO-8601 time WITH its zone (a restore to a point must not depend on
 * the operator's machine's time zone), to the millisecond at most (the runner's targets are
 * Dates). Undefined for anything else, an impossible date (2026-02-30) included.
 */
export function parsePitrAt(text: string): PitrTarget | undefined {
  if (text === 'latest') return 'latest';
  const match = ISO_WITH_ZONE.exec(text.trim());
  if (!match) return undefined;
  const [year, month, day, hour, minute, second = 0] = match.slice(1, 7).map((part) => (part === undefined ? undefined : Number(part))) as number[];
  const millis = match[7] ? Number(match[7].padEnd(3, '0')) : 0;
  const zone = match[8];
  let offsetMinutes = 0;
  if (!/^z$/i.test(zone)) {
    const [, sign, hours, minutes = '0'] = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone) as RegExpExecArray;
    if (Number(hours) > 14 || Number(minutes) > 59) return undefined;
    offsetMinutes = (sign === '-' ? -1 : 1) * (Number(hours) * 60 + Number(minutes));
  }
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  const time = new Date(Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000);
  return Number.isNaN(time.getTime()) ? undefined : { time };
}

/** Where pgBackRest reaches the bucket: the region's endpoint, or an S3-compatible one over HTTPS. */
export interface RepositoryEndpoint {
  readonly endpoint: string;
  readonly port?: number;
  readonly uriStyle: 'host' | 'path';
}

/**
 * pgBackRest's endpoint: `repoEndpoint`, else the SDK's `endpoint` when pgBackRest can use it
 * (HTTPS to a host name: it refuses plain HTTP and IP addresses), else the region's S3 endpoint
 * (virtual-hosted). An S3-compatible endpoint is addressed path-style, as the SDK does.
 */
export function repositoryEndpoint(opts: { readonly region: string; readonly endpoint?: string; readonly repoEndpoint?: string }): { endpoint?: RepositoryEndpoint; problem?: string } {
  const given = opts.repoEndpoint ?? opts.endpoint;
  const flag = opts.repoEndpoint !== undefined ? '--repo-endpoint' : '--endpoint';
  if (given === undefined) {
    return { endpoint: { endpoint: `s3.${opts.region}.${opts.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`, uriStyle: 'host' } };
  }
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    return { problem: `${flag}: "${given}" is not a URL (valid: https://HOST[:PORT])` };
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.protocol !== 'https:' || /^[\d.]+$/.test(host) || host.includes(':') || (url.pathname !== '/' && url.pathname !== '')) {
    return {
      problem: `${flag}: pgBackRest reaches S3 over HTTPS by host name only, not ${given} ` +
        `(valid: https://HOST[:PORT]; for a plain-HTTP or IP endpoint give --repo-endpoint https://HOST[:PORT] of a TLS front, and --repo-ca-file for its CA)`,
    };
  }
  return { endpoint: { endpoint: host, ...(url.port ? { port: Number(url.port) } : {}), uriStyle: 'path' } };
}

export interface TargetDir {
  /** Absolute. */
  readonly path: string;
  /** False: pgBackRest creates it. */
  readonly exists: boolean;
  /** Its owner (or its parent's when it does not exist yet), when this process runs as root: pgBackRest and the server run as it. */
  readonly owner?: OsUser;
  /** The owner's name, or `uid N`. */
  readonly ownerName: string;
}

function userName(uid: number): string {
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((entry) => entry.split(':')[2] === String(uid));
    return line?.split(':')[0] ?? `uid ${uid}`;
  } catch {
    return `uid ${uid}`;
  }
}

/**
 * `--target-dir`: an empty directory or a path that does not exist yet (in an existing
 * directory); anything else is refused before anything is touched — a file (InvalidInput), a
 * directory with anything in it (TargetNotEmpty). PostgreSQL runs as the directory's owner, so as
 * root the directory (or, for a new one, its parent) must belong to another user.
 */
export function inspectTargetDir(path: string, uid: number | undefined = process.getuid?.()): TargetDir {
  if (!isAbsolute(path)) throw lifeboatError('InvalidInput', `--target-dir: ${path} is not an absolute path`);
  let exists = false;
  try {
    const stat = lstatSync(path);
    exists = true;
    if (!stat.isDirectory()) {
      throw lifeboatError('InvalidInput', `--target-dir: ${path} exists and is not a directory (valid: an empty directory, or a path that does not exist yet); nothing was touched`);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (exists) {
    const entries = readdirSync(path);
    if (entries.length > 0) {
      throw lifeboatError('TargetNotEmpty', `--target-dir: ${path} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, e.g. ${entries.slice(0, 3).join(', ')}): ` +
        'a restore writes only into an empty directory or a new one; nothing was touched');
    }
  } else if (!existsSync(dirname(path)) || !statSync(dirname(path)).isDirectory()) {
    throw lifeboatError('InvalidInput', `--target-dir: ${path} does not exist, and neither does its parent ${dirname(path)} (valid: an empty directory, or a new one in an existing directory)`);
  }
  const stat = statSync(exists ? path : dirname(path));
  const ownerName = userName(stat.uid);
  const what = exists ? path : `${dirname(path)} (the parent of the new ${path})`;
  if (uid === 0) {
    if (stat.uid === 0) {
      throw lifeboatError('InvalidInput', `--target-dir: ${what} belongs to root, and PostgreSQL refuses to run as root: ` +
        `create ${path} owned by the OS user that will run the server (e.g. install -d -o postgres -g postgres -m 0700 ${path}); nothing was touched`);
    }
    return { path, exists, owner: { uid: stat.uid, gid: stat.gid }, ownerName };
  }
  if (uid !== undefined && stat.uid !== uid) {
    throw lifeboatError('InvalidInput', `--target-dir: ${what} belongs to ${ownerName}, not to this user (${userName(uid)}): PostgreSQL runs as the directory's owner; ` +
      'run lifeboat restore as that user, or as root; nothing was touched');
  }
  return { path, exists, ownerName };
}

// ---------------------------------------------------------------------------------------------
// Phase 1: the plan

/** The newest PITR drill report of the reports (newest first), if any. */
export function lastPitrDrill(reports: readonly DrillReport[]): DrillReport | undefined {
  return reports.find((report) => report.engine === PITR_DRILL_ENGINE);
}

export interface RestoreAtPlan {
  readonly plan: PitrRestorePlan;
  /** The repository's path in the bucket, e.g. `/pitr/orders`. */
  readonly repoPath: string;
  /** The PostgreSQL major of the repository's cluster (backup.info's [db]); undefined if it does not say. */
  readonly pgMajor?: number;
  /** The last PITR drill, the estimate; undefined when there is none. */
  readonly drill?: DrillReport;
  /** Why no estimate could be read, when the drill reports could not be (the restore does not need them). */
  readonly drillProblem?: string;
  readonly seconds: number;
}

/** backup.info's `[db]` `db-version`, e.g. `"15"` → 15. */
export function pgMajorOfBackupInfo(text: string): number | undefined {
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header) section = header[1];
    const version = section === 'db' ? /^db-version="(\d+)(?:\.\d+)?"$/.exec(line.trim())?.[1] : undefined;
    if (version !== undefined) return Number(version);
  }
  return undefined;
}

/**
 * Phase 1, from the bucket alone: the sets, the archive, the plan, the estimate. A target the
 * plan refuses is InvalidInput (outside the window) or WalGap (past a gap), naming the window.
 */
export async function planRestoreAt(opts: {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: Source;
  readonly target: PitrTarget;
  readonly signal?: AbortSignal;
}): Promise<RestoreAtPlan> {
  const started = process.hrtime.bigint();
  const stanza = requireStanza(opts.source);
  const repoPath = `/${pitrPrefix(opts.source.name).replace(/\/$/, '')}`;
  const location = { s3: opts.s3, bucket: opts.bucket, repoPath, stanza, ...(opts.signal ? { signal: opts.signal } : {}) };
  const [sets, segments, pgMajor] = await Promise.all([readBackupSets(location), listArchivedSegments(location), readPgMajor(location)]);
  const { plan, problem } = planPitrRestore(sets, segments, opts.target);
  if (!plan) throw lifeboatError(/\bgap\b/.test(problem ?? '') ? 'WalGap' : 'InvalidInput', `restore ${opts.source.name} --at: ${problem}`);
  let drill: DrillReport | undefined;
  let drillProblem: string | undefined;
  try {
    drill = lastPitrDrill(await recentDrillReports(opts.s3, opts.bucket, opts.source.name, DRILL_REPORTS_SEARCHED));
  } catch (error) {
    drillProblem = `${(error as Error).name}: ${(error as Error).message.split('\n')[0]}`;
  }
  return { plan, repoPath, ...(pgMajor !== undefined ? { pgMajor } : {}), ...(drill ? { drill } : {}), ...(drillProblem ? { drillProblem } : {}), seconds: secondsSince(started) };
}

async function readPgMajor(location: { s3: S3Client; bucket: string; repoPath: string; stanza: string; signal?: AbortSignal }): Promise<number | undefined> {
  try {
    const object = await location.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: repositoryKey(location.repoPath, 'backup', location.stanza, 'backup.info') }),
      { abortSignal: location.signal });
    return pgMajorOfBackupInfo(await object.Body!.transformToString());
  } catch (error) {
    if ((error as Error).name === 'NoSuchKey') return undefined;
    throw error;
  }
}

function requireStanza(source: Source): string {
  if (!source.methods.includes('pitr') || !source.pitr) {
    throw lifeboatError('InvalidInput', `source ${source.name} has no point-in-time recovery (methods: ${source.methods.join(', ')})`);
  }
  return source.pitr.stanza;
}

// ---------------------------------------------------------------------------------------------
// Phases 2 to 4

export interface RestoreAtOptions {
  readonly planned: RestoreAtPlan;
  readonly source: Source;
  readonly targetDir: TargetDir;
  /** The bucket, region and endpoint of the repository; the operator's credentials, resolved (never `auto` here). */
  readonly repository: Omit<PgBackRestRepository, 'path' | 'caFile'> & { readonly credentials: Extract<S3Credentials, { type: 'shared' }> };
  /** A CA bundle for the endpoint (copied where the directory's owner can read it). @default - the system's */
  readonly caFile?: string;
  /** @default - the installed bin directory of the directory's major (restored-server.ts) */
  readonly pgBinDir?: string;
  /** @default 'pgbackrest' on PATH */
  readonly pgbackrestCommand?: string;
  /** Progress lines (pgBackRest's, replay's). */
  readonly onLog?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface RestoreAtResult {
  readonly set: string;
  readonly pgMajor: number;
  readonly binDir: string;
  /** The port the confirming server listened on (127.0.0.1), now stopped. */
  readonly port: number;
  readonly check: RecoveryCheck;
  /** Configuration files written because the source kept them outside its data directory. */
  readonly configWritten: readonly string[];
  /** pg_controldata's state after the stop: `shut down`. */
  readonly stoppedState: string;
  readonly timings: { readonly planSeconds: number; readonly restoreSeconds: number; readonly replaySeconds: number; readonly confirmSeconds: number };
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw lifeboatError('Aborted', 'the restore was interrupted');
}

/** Phases 2 to 4 of a planned restore; on failure the target directory is emptied again and the error says so. */
export async function restoreAt(opts: RestoreAtOptions): Promise<RestoreAtResult> {
  const { planned, targetDir } = opts;
  const owner = targetDir.owner;
  const workDir = mkdtempSync(join(tmpdir(), 'lifeboat-restore-'));
  let server: RestoredServer | undefined;
  let touched = false;
  try {
    if (owner) chownSync(workDir, owner.uid, owner.gid);
    let caFile: string | undefined;
    if (opts.caFile) {
      caFile = join(workDir, 'ca.pem');
      copyFileSync(opts.caFile, caFile);
      if (owner) chownSync(caFile, owner.uid, owner.gid);
    }
    // Before anything is written: the server binaries of the repository's major must be here.
    if (planned.pgMajor !== undefined) await pgBinDirFor(planned.pgMajor, opts.pgBinDir);
    const runnerOptions: PgBackRestOptions = {
      repository: { ...opts.repository, path: planned.repoPath, ...(caFile ? { caFile } : {}) },
      stanza: { name: requireStanza(opts.source), pgPath: targetDir.path },
      workDir: join(workDir, 'pgbackrest'),
      ...(owner ? { osUser: owner } : {}),
      ...(opts.pgbackrestCommand ? { command: opts.pgbackrestCommand } : {}),
      ...(opts.onLog ? { onLog: opts.onLog } : {}),
    };
    const runner = pgBackRest(runnerOptions);
    aborted(opts.signal);

    const restoreStarted = process.hrtime.bigint();
    touched = true;
    const { plan } = planned;
    const { set } = await runner.restore({ dataDir: targetDir.path, target: plan.target, set: plan.set.label });
    const restoreSeconds = secondsSince(restoreStarted);
    aborted(opts.signal);

    const replayStarted = process.hrtime.bigint();
    const pgMajor = Number(readFileSync(join(targetDir.path, 'PG_VERSION'), 'utf8').trim());
    const binDir = await pgBinDirFor(pgMajor, opts.pgBinDir);
    const configWritten = completeConfigFiles(targetDir.path, owner);
    server = await startRestoredServer({
      dataDir: targetDir.path,
      binDir,
      ...(owner ? { owner } : {}),
      runDir: join(workDir, 'run'),
      env: runner.serverEnvironment(),
      role: opts.source.pitr?.osUser ?? 'postgres',
      ...(opts.onLog ? { onProgress: opts.onLog } : {}),
    });
    const replaySeconds = secondsSince(replayStarted);

    const confirmStarted = process.hrtime.bigint();
    const running = server;
    const check = await checkRecoveryReached((sql) => running.psql(sql), running.log(), plan.target, plan.wal.to);
    const { port } = running;
    const stopped = await running.stop();
    server = undefined;
    if (!check.ok) throw lifeboatError('RestoreFailed', `recovery did not reach the target: ${check.detail}`);
    if (!stopped.clean) throw lifeboatError('RestoreFailed', `the restored server did not stop cleanly (pg_controldata: ${stopped.state})`);
    const confirmSeconds = secondsSince(confirmStarted);
    return {
      set: set ?? plan.set.label,
      pgMajor,
      binDir,
      port,
      check,
      configWritten,
      stoppedState: stopped.state,
      timings: { planSeconds: planned.seconds, restoreSeconds, replaySeconds, confirmSeconds },
    };
  } catch (error) {
    await server?.stop().catch(() => undefined);
    if (touched) emptyAgain(targetDir);
    const err = error as Error;
    if (touched) err.message += `\n(${targetDir.path} was emptied again${targetDir.exists ? '' : ' and removed'}: it held nothing before this restore)`;
    throw err;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** The target directory as it was before: it held nothing, or did not exist. */
function emptyAgain(targetDir: TargetDir): void {
  if (!existsSync(targetDir.path)) return;
  if (!targetDir.exists) {
    rmSync(targetDir.path, { recursive: true, force: true });
    return;
  }
  for (const entry of readdirSync(targetDir.path)) rmSync(join(targetDir.path, entry), { recursive: true, force: true });
}
