/**
 * A throwaway PostgreSQL server for integration tests: initdb into a temp dir, a random loopback
 * port, the socket dir inside the temp dir. Never touches the machine's own PostgreSQL service.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, copyFileSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { delay, freePort, isRunning, makeTempDir, ManagedProcess, removeTempDir, run, unprivilegedUser, type OsUser } from './processes';

export interface PgServer {
  readonly host: string;
  readonly port: number;
  /** Superuser name. */
  readonly user: string;
  /** Set when started with `{ password }`. */
  readonly password?: string;
  /** Server major version, e.g. 15. */
  readonly version: number;
  /** Postmaster pid. */
  readonly pid: number;
  readonly dataDir: string;
  /** The directory of the server's Unix socket (`-k`), inside the server's temp dir. */
  readonly socketDir: string;
  /** The server's log (stderr): with `logConnections`, a line per connection saying whether it is TLS. */
  readonly logPath: string;
  /** Environment for libpq clients: PGHOST, PGPORT, PGUSER and, with a password, PGPASSWORD. */
  readonly env: Record<string, string>;
  /** Runs `psql -XAtq -v ON_ERROR_STOP=1` with `sql` on stdin; resolves stdout, rejects with stderr. */
  psql(sql: string, database?: string): Promise<string>;
  createDatabase(name: string): Promise<void>;
  /** Signals the postmaster (default SIGKILL, to simulate a crash); `stop()` still cleans up. */
  kill(signal?: NodeJS.Signals): void;
  /**
   * SIGKILLs the postmaster and every backend at once, as when the host dies. Unlike `kill()`,
   * no backend outlives it: a backend notices its postmaster's death only while it waits, so one
   * streaming a COPY to a fast reader would otherwise finish the dump.
   */
  crash(): void;
  /** Fast shutdown by pid, waits for the exit, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /**
   * Directory with initdb and postgres.
   * @default - the newest /usr/lib/postgresql/<major>/bin
   */
  readonly binDir?: string;
  /**
   * Superuser password; the server then requires scram-sha-256 for every connection.
   * @default - no password, trust authentication
   */
  readonly password?: string;
  /**
   * TLS: `ssl = on` with this certificate and key (copied into the temp dir, readable by the
   * server's user only). With `only`, pg_hba.conf accepts TCP connections over TLS alone
   * (`hostssl`; `hostnossl` rejected): a client that falls back to plain text is refused.
   * @default - no TLS (the server refuses none, offers none)
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly only?: boolean };
  /** log_connections = on: the log says, per connection, whether it was TLS. @default false */
  readonly logConnections?: boolean;
  /**
   * More server settings, each passed as `-c name=value` after the built-in ones (so they win
   * over postgresql.conf and postgresql.auto.conf), e.g. `{ archive_mode: 'on', archive_command: '…' }`.
   * Names are PostgreSQL parameter names (letters, digits, `_` and `.`).
   * @default - none
   */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Variables added to the server's environment (PATH, LC_ALL, LANG and TZ otherwise, which
   * these cannot override): what its archive_command or restore_command needs, e.g. a backup
   * tool's credentials. They are not in argv, so not in `ps`; /proc/<pid>/environ is readable
   * by the server's user and root only.
   * @default - none
   */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Start on this EXISTING data directory (e.g. one a restore wrote) instead of running initdb;
   * it must belong to the server's OS user (the `postgres` user when running as root) with mode
   * 0700. Its own pg_hba.conf and authentication stay as they are (but for `tls.only`, which
   * writes pg_hba.conf as for a fresh cluster): `password` then only sets `PgServer.password`
   * and `env`. The socket and the log go to a fresh temp dir as usual, and `stop()` removes
   * that temp dir but NOT this data directory, which stays the caller's.
   * @default - a fresh cluster from initdb in the temp dir
   */
  readonly existingDataDir?: string;
}

const SUPERUSER = 'postgres';
const READY_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 3;

/** The newest PostgreSQL installed from Debian packages, e.g. /usr/lib/postgresql/15/bin. */
export function defaultPgBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'postgres')))
        .map(Number)
        .sort((a, b) => b - a)
    : [];
  if (majors.length === 0) throw new Error(`no PostgreSQL server found under ${root}`);
  return join(root, String(majors[0]), 'bin');
}

/** Client tools (psql) come from the system packages: the embedded newer server ships none. */
function clientBin(tool: string): string {
  const own = join(defaultPgBinDir(), tool);
  return existsSync(own) ? own : tool;
}

/** Whether `user` can reach `path` through every directory above it (their x bits). */
function reachableBy(path: string, user: OsUser): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const { uid, gid, mode } = statSync(dir);
    const bit = uid === user.uid ? 0o100 : gid === user.gid ? 0o010 : 0o001;
    if ((mode & bit) === 0) return false;
    if (dir === dirname(dir)) return true;
  }
}

/**
 * The server runs as the unprivileged user, which may not reach binaries inside a private
 * checkout (a clone under a 0700 temp dir, as CI may make). Then the installation (bin/ and
 * its lib/ and share/ siblings) is copied to a cache directory under the system temp dir,
 * one per installation path, shared by every test process (copied aside, then renamed into
 * place, so concurrent processes never see half a copy).
 */
function binDirReachableBy(binDir: string, user: OsUser | undefined): string {
  if (!user || reachableBy(join(binDir, 'postgres'), user)) return binDir;
  const cache = join(tmpdir(), `lifeboat-pg-install-${createHash('sha256').update(binDir).digest('hex').slice(0, 12)}`);
  if (!existsSync(join(cache, basename(binDir), 'postgres'))) {
    const staging = `${cache}.${process.pid}`;
    cpSync(dirname(binDir), staging, { recursive: true, verbatimSymlinks: true });
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, cache);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process was first
    }
  }
  return join(cache, basename(binDir));
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PgServer> {
  const owner = unprivilegedUser('postgres');
  const binDir = binDirReachableBy(opts.binDir ?? defaultPgBinDir(), owner);
  const dir = makeTempDir('pg');
  const dataDir = opts.existingDataDir ?? join(dir, 'data');
  const socketDir = join(dir, 'sock');
  mkdirSync(socketDir);
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(socketDir, owner.uid, owner.gid);
  }
  const childEnv = { ...opts.env, PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };

  try {
    if (opts.existingDataDir === undefined) await initCluster(binDir, dir, dataDir, opts, owner, childEnv);
    const version = Number(readFileSync(join(dataDir, 'PG_VERSION'), 'utf8').trim());
    const settings = [...serverSettings(dir, dataDir, opts, owner), ...extraSettings(opts.settings)];

    let lastError: Error | undefined;
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await freePort();
      try {
        const managed = await launch(binDir, dataDir, socketDir, port, dir, childEnv, owner, settings);
        return makeServer(managed, port, version, dir, dataDir, socketDir, opts.password);
      } catch (err) {
        lastError = err as Error;
        if (!/could not bind|already in use/i.test(lastError.message)) break;
      }
    }
    throw lastError ?? new Error('postgres did not start');
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}

/** `opts.settings` as `-c name=value` arguments; a name that is no parameter name is refused. */
function extraSettings(settings: Readonly<Record<string, string>> = {}): string[] {
  return Object.entries(settings).flatMap(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) throw new Error(`startPostgres: invalid setting name ${JSON.stringify(name)}`);
    return ['-c', `${name}=${value}`];
  });
}

/** initdb into `dataDir`, as the server's user, with the authentication `opts` asks for. */
async function initCluster(
  binDir: string,
  dir: string,
  dataDir: string,
  opts: StartPostgresOptions,
  owner: OsUser | undefined,
  childEnv: Record<string, string>,
): Promise<void> {
  const initArgs = ['-D', dataDir, '-U', SUPERUSER, '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions'];
  let pwFile: string | undefined;
  if (opts.password !== undefined) {
    pwFile = join(dir, 'pwfile');
    writeFileSync(pwFile, `${opts.password}\n`, { mode: 0o600 });
    if (owner) chownSync(pwFile, owner.uid, owner.gid);
    initArgs.push('--auth=scram-sha-256', `--pwfile=${pwFile}`);
  } else {
    initArgs.push('--auth=trust');
  }
  const init = await run(join(binDir, 'initdb'), initArgs, { env: childEnv, uid: owner?.uid, gid: owner?.gid, cwd: dir });
  if (pwFile) writeFileSync(pwFile, '');
  if (init.code !== 0) throw new Error(`initdb failed (exit ${init.code}): ${init.stderr.trim()}`);
}

/**
 * The `-c` settings of `opts` (TLS, connection logging), writing what they need: the
 * certificate and key where the server's user may read them, and a TLS-only pg_hba.conf.
 */
function serverSettings(dir: string, dataDir: string, opts: StartPostgresOptions, owner: OsUser | undefined): string[] {
  const settings = opts.logConnections ? ['-c', 'log_connections=on'] : [];
  if (!opts.tls) return settings;
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  copyFileSync(opts.tls.certFile, certFile);
  copyFileSync(opts.tls.keyFile, keyFile);
  // PostgreSQL refuses a key that its group or others may read.
  chmodSync(keyFile, 0o600);
  if (owner) {
    chownSync(certFile, owner.uid, owner.gid);
    chownSync(keyFile, owner.uid, owner.gid);
  }
  if (opts.tls.only) {
    const auth = opts.password !== undefined ? 'scram-sha-256' : 'trust';
    writeFileSync(join(dataDir, 'pg_hba.conf'), [
      `local all all ${auth}`,
      `hostssl all all 127.0.0.1/32 ${auth}`,
      'hostnossl all all 0.0.0.0/0 reject',
      '',
    ].join('\n'));
  }
  return [...settings, '-c', 'ssl=on', '-c', `ssl_cert_file=${certFile}`, '-c', `ssl_key_file=${keyFile}`];
}

async function launch(
  binDir: string,
  dataDir: string,
  socketDir: string,
  port: number,
  dir: string,
  env: Record<string, string>,
  owner: { uid: number; gid: number } | undefined,
  settings: readonly string[] = [],
): Promise<ManagedProcess> {
  const logPath = join(dir, `postgres-${port}.log`);
  const log = openSync(logPath, 'a');
  const child = spawn(
    join(binDir, 'postgres'),
    [
      '-D', dataDir,
      '-p', String(port),
      '-k', socketDir,
      '-c', 'listen_addresses=127.0.0.1',
      // Throwaway data: durability buys nothing here and costs start-up and test time.
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'logging_collector=off',
      ...settings,
    ],
    { env, uid: owner?.uid, gid: owner?.gid, cwd: dir, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const managed = new ManagedProcess(child, dir);
  const pidFile = join(dataDir, 'postmaster.pid');
  const deadline = Date.now() + READY_TIMEOUT_MS;
  // pg_ctl -w's own test: line 8 of postmaster.pid reads "ready" once connections are accepted.
  while (Date.now() < deadline) {
    if (!isRunning(child)) {
      await managed.stop('SIGKILL');
      throw new Error(`postgres exited during start-up (port ${port}): ${tail(logPath)}`);
    }
    const lines = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n') : [];
    if (lines[0] === String(child.pid) && lines[7]?.trim() === 'ready') return managed;
    await delay(10);
  }
  await managed.stop('SIGKILL');
  throw new Error(`postgres not ready after ${READY_TIMEOUT_MS} ms: ${tail(logPath)}`);
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}

function makeServer(
  managed: ManagedProcess,
  port: number,
  version: number,
  dir: string,
  dataDir: string,
  socketDir: string,
  password: string | undefined,
): PgServer {
  const env: Record<string, string> = { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: SUPERUSER };
  if (password !== undefined) env.PGPASSWORD = password;
  let stopped: Promise<void> | undefined;

  const psql = async (sql: string, database = 'postgres'): Promise<string> => {
    const clientEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    if (password === undefined) delete clientEnv.PGPASSWORD;
    const result = await run(clientBin('psql'), ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', database, '-f', '-'], {
      env: clientEnv,
      input: sql,
    });
    if (result.code !== 0) {
      throw new Error(`psql on port ${port} failed (exit ${result.code}): ${result.stderr.trim()}`);
    }
    return result.stdout;
  };

  return {
    host: '127.0.0.1',
    port,
    user: SUPERUSER,
    password,
    version,
    pid: managed.pid,
    dataDir,
    socketDir,
    logPath: join(dir, `postgres-${port}.log`),
    env,
    psql,
    async createDatabase(name: string): Promise<void> {
      await psql(`CREATE DATABASE "${name.replaceAll('"', '""')}";`);
    },
    kill(signal: NodeJS.Signals = 'SIGKILL'): void {
      managed.kill(signal);
    },
    crash(): void {
      managed.killTree();
    },
    stop(): Promise<void> {
      // SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, exit cleanly.
      stopped ??= managed.stop('SIGINT').then(() => removeTempDir(dir));
      return stopped;
    },
  };
}
