/**
 * The server `lifeboat restore --at` starts on the directory pgBackRest restored, to replay the
 * WAL and confirm where recovery ended, then stops cleanly: the installed binaries of the
 * directory's PostgreSQL major, as the directory's owner, on a free loopback port.
 *
 * The directory's own configuration is the source's, written for another machine; this start
 * must work whatever it says and must reach nothing of the source. So the command line wins over
 * it (`-c` beats postgresql.conf and postgresql.auto.conf): the data directory is this one (a
 * `data_directory` line could point at the source's), the port a free one, listening on
 * 127.0.0.1 only, no TLS (the source's certificate files are not here), no external pid file,
 * no archiving (the copy must never push into the source's repository), the log to stderr. The
 * authentication is a pg_hba.conf of the restore's own: `trust` over a Unix socket in the
 * restore's private directory (0700, the owner's), every TCP connection rejected. The data
 * directory's own pg_hba.conf stays as it was, for the server that starts on it later.
 *
 * Unlike lib/servers/postgres.ts (throwaway servers for tests and drills), nothing here trades
 * durability for speed: fsync and full_page_writes are the directory's own settings.
 */
import { spawn } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lifeboatError } from '../domain/errors';
import { delay, freePort, isRunning, ManagedProcess, run, type OsUser } from '../servers/processes';

export interface RestoredServerOptions {
  readonly dataDir: string;
  /** The bin directory of the directory's PostgreSQL major (postgres, psql, pg_controldata). */
  readonly binDir: string;
  /** The directory's owner, when this process runs as root: the server runs as it. @default - the current user */
  readonly owner?: OsUser;
  /** The restore's private directory (socket, log, pg_hba.conf); created, mode 0700, owned by `owner`. */
  readonly runDir: string;
  /** Variables the server's environment needs: restore_command's (pgBackRest archive-get's) keys. */
  readonly env: Readonly<Record<string, string>>;
  /** The role psql connects as (`trust`, over the private socket only): one that exists in the source's cluster. */
  readonly role: string;
  /** A line every `progressSeconds` while recovery runs. */
  readonly onProgress?: (line: string) => void;
  /** @default 30 */
  readonly progressSeconds?: number;
  /** How long replay may take before the start is given up (the server stopped). @default 86400 (a day) */
  readonly readyTimeoutSeconds?: number;
}

export interface RestoredServer {
  readonly port: number;
  readonly socketDir: string;
  readonly logPath: string;
  /** `psql -XAtq -v ON_ERROR_STOP=1` over the private socket, as `role`, in template1; rejects with its stderr. */
  psql(sql: string): Promise<string>;
  /** The server's log so far. */
  log(): string;
  /**
   * Fast shutdown (SIGINT: open transactions rolled back, a shutdown checkpoint written), waiting
   * for the exit; then pg_controldata must say `shut down`. Idempotent.
   */
  stop(): Promise<{ readonly clean: boolean; readonly state: string }>;
}

const PORT_ATTEMPTS = 3;
/** A shutdown checkpoint of a large cluster can take long: SIGKILL only after this. */
const SHUTDOWN_GRACE_MS = 30 * 60_000;
const LOG_TAIL_LINES = 8;

/** Where the Debian (PGDG) and RPM packages put a major's binaries. */
export function binDirCandidates(major: number): string[] {
  return [`/usr/lib/postgresql/${major}/bin`, `/usr/pgsql-${major}/bin`];
}

/** The installed bin directory of `major` (ClientNotFound naming where it looked), or `given` checked to be that major. */
export async function pgBinDirFor(major: number, given?: string): Promise<string> {
  const candidates = given ? [given] : binDirCandidates(major);
  const found = candidates.find((dir) => existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'pg_controldata')));
  if (!found) {
    throw lifeboatError('ClientNotFound', `PostgreSQL ${major} is not installed here (no postgres and pg_controldata in ${candidates.join(' or ')}): ` +
      `install the server package of the source's major (e.g. postgresql-${major}), or give --pg-bin-dir`);
  }
  const version = await run(join(found, 'postgres'), ['--version'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
  const installed = /\(PostgreSQL\) (\d+)/.exec(version.stdout)?.[1];
  if (Number(installed) !== major) {
    throw lifeboatError('ClientNotFound', `${join(found, 'postgres')} is PostgreSQL ${installed ?? '(unknown)'}, the restored directory is ${major}: give the bin directory of PostgreSQL ${major}`);
  }
  return found;
}

/**
 * The configuration files a server needs in its data directory, when the source kept them
 * elsewhere (Debian keeps them in /etc/postgresql/<major>/<cluster>/, which no backup of the data
 * directory holds): an empty postgresql.conf (the defaults) and a pg_hba.conf admitting local
 * (Unix socket) connections by peer authentication only. Returns the files it wrote.
 */
export function completeConfigFiles(dataDir: string, owner?: OsUser): string[] {
  const files: [string, string][] = [
    ['postgresql.conf', '# Written by lifeboat restore: the source kept its postgresql.conf outside the data directory. Defaults apply.\n'],
    ['pg_hba.conf', '# Written by lifeboat restore: the source kept its pg_hba.conf outside the data directory.\nlocal all all peer\n'],
  ];
  const written: string[] = [];
  for (const [name, text] of files) {
    const path = join(dataDir, name);
    if (existsSync(path)) continue;
    writeFileSync(path, text, { mode: 0o600 });
    if (owner) chownSync(path, owner.uid, owner.gid);
    written.push(name);
  }
  return written;
}

const tail = (text: string) => text.trim().split('\n').slice(-LOG_TAIL_LINES).join('\n');

/** The postmaster's status (postmaster.pid line 8: `starting`, `standby`, `ready`, `stopping`), if it wrote one yet. */
function postmasterStatus(dataDir: string, pid: number | undefined): string | undefined {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  return lines[0] === String(pid) ? lines[7]?.trim() : undefined;
}

/**
 * Starts the server and waits until recovery has ended (the server promoted, out of recovery):
 * WAL replayed to the target, or to the end of the archive. A server that exits before
 * (recovery ended before the target, a missing segment, a setting it cannot honour) is
 * RestoreFailed with the last lines of its log.
 */
export async function startRestoredServer(opts: RestoredServerOptions): Promise<RestoredServer> {
  const socketDir = join(opts.runDir, 'socket');
  for (const dir of [opts.runDir, socketDir]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (opts.owner) chownSync(dir, opts.owner.uid, opts.owner.gid);
  }
  const hbaFile = join(opts.runDir, 'pg_hba.conf');
  const identFile = join(opts.runDir, 'pg_ident.conf');
  writeFileSync(hbaFile, 'local all all trust\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n', { mode: 0o600 });
  writeFileSync(identFile, '', { mode: 0o600 });
  for (const file of [hbaFile, identFile]) if (opts.owner) chownSync(file, opts.owner.uid, opts.owner.gid);
  const env = { ...opts.env, PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
  const clientEnv = { PATH: env.PATH, LC_ALL: 'C', LANG: 'C', TZ: 'UTC', PGAPPNAME: 'lifeboat-restore' };
  const psqlBin = existsSync(join(opts.binDir, 'psql')) ? join(opts.binDir, 'psql') : 'psql';

  let lastError: Error | undefined;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    const logPath = join(opts.runDir, `postgres-${port}.log`);
    const log = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
    const psql = async (sql: string): Promise<string> => {
      const result = await run(psqlBin, ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-p', String(port), '-U', opts.role, '-d', 'template1', '-f', '-'], { env: clientEnv, input: sql });
      if (result.code !== 0) throw lifeboatError('RestoreFailed', `psql on the restored server (port ${port}) failed (exit ${result.code}): ${result.stderr.trim()}`);
      return result.stdout;
    };
    const fd = openSync(logPath, 'a', 0o600);
    if (opts.owner) chownSync(logPath, opts.owner.uid, opts.owner.gid);
    const child = spawn(join(opts.binDir, 'postgres'), [
      '-D', opts.dataDir,
      '-p', String(port),
      '-k', socketDir,
      '-c', `data_directory=${opts.dataDir}`,
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `hba_file=${hbaFile}`,
      '-c', `ident_file=${identFile}`,
      '-c', 'ssl=off',
      '-c', 'external_pid_file=',
      '-c', 'archive_mode=off',
      '-c', 'logging_collector=off',
      '-c', 'log_destination=stderr',
    ], { env, uid: opts.owner?.uid, gid: opts.owner?.gid, cwd: opts.runDir, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const managed = new ManagedProcess(child);
    let stopped: Promise<{ clean: boolean; state: string }> | undefined;
    const stop = () => {
      stopped ??= managed.stop('SIGINT', SHUTDOWN_GRACE_MS).then(async () => {
        const control = await run(join(opts.binDir, 'pg_controldata'), [opts.dataDir], { env: clientEnv });
        const state = /^Database cluster state:\s*(.+)$/m.exec(control.stdout)?.[1]?.trim() ?? `(pg_controldata exit ${control.code}: ${control.stderr.trim()})`;
        return { clean: state === 'shut down', state };
      });
      return stopped;
    };
    try {
      await waitReady(opts, child, managed.pid, psql, log);
      return { port, socketDir, logPath, psql, log, stop };
    } catch (error) {
      await stop();
      lastError = error as Error;
      if (!/could not bind|already in use/i.test(log())) break;
    }
  }
  throw lastError ?? lifeboatError('RestoreFailed', 'postgres did not start on the restored directory');
}

async function waitReady(
  opts: RestoredServerOptions,
  child: import('node:child_process').ChildProcess,
  pid: number,
  psql: (sql: string) => Promise<string>,
  log: () => string,
): Promise<void> {
  const started = Date.now();
  const deadline = started + (opts.readyTimeoutSeconds ?? 86_400) * 1000;
  const every = (opts.progressSeconds ?? 30) * 1000;
  let nextProgress = started + every;
  for (;;) {
    if (!isRunning(child)) {
      throw lifeboatError('RestoreFailed', `postgres exited during recovery (exit ${child.exitCode ?? child.signalCode}); its log ends:\n${tail(log())}`);
    }
    // `ready` once connections are accepted: by a hot standby during replay, too. Recovery has
    // ended only when the server says so; `standby` (hot_standby off) accepts none until then.
    const status = postmasterStatus(opts.dataDir, pid);
    const inRecovery = status === 'ready' ? await psql('SELECT pg_is_in_recovery()').then((out) => out.trim() !== 'f', () => true) : true;
    if (!inRecovery) return;
    if (Date.now() > deadline) {
      throw lifeboatError('RestoreFailed', `recovery did not end within ${opts.readyTimeoutSeconds ?? 86_400}s; the log ends:\n${tail(log())}`);
    }
    if (opts.onProgress && Date.now() >= nextProgress) {
      nextProgress += every;
      const elapsed = Math.round((Date.now() - started) / 1000);
      const at = status === 'ready' ? await psql('SELECT pg_last_wal_replay_lsn()').then((out) => out.trim(), () => undefined) : undefined;
      opts.onProgress(`replaying (${elapsed}s)${at ? `: at ${at}` : `: ${status ?? 'starting'}`}`);
    }
    await delay(status === 'ready' ? 200 : 50);
  }
}
