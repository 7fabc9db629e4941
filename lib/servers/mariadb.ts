/**
 * A throwaway MariaDB server for integration tests: mariadb-install-db into a temp dir, a random
 * loopback port, the socket inside the temp dir. Never touches the machine's own MariaDB service.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { delay, freePort, isRunning, makeTempDir, ManagedProcess, removeTempDir, run } from './processes';

export interface MariaDbServer {
  readonly host: string;
  readonly port: number;
  /** 'root' */
  readonly user: string;
  /** Set when started with `{ password }`. */
  readonly password?: string;
  /** e.g. '10.11.19-MariaDB-0+deb12u1' */
  readonly version: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly socket: string;
  /** Runs `mariadb --batch --skip-column-names` with `sql` on stdin; resolves stdout, rejects with stderr. */
  sql(sql: string, database?: string): Promise<string>;
  /** Signals mariadbd (default SIGKILL, to simulate a crash); `stop()` still cleans up. */
  kill(signal?: NodeJS.Signals): void;
  /** Clean shutdown by pid (SIGTERM), waits for the exit, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartMariaDbOptions {
  /**
   * Password for every root account.
   * @default - no password
   */
  readonly password?: string;
  /**
   * TLS with this certificate, key and CA (the CA of client certificates; clients need none).
   * With `only`, require_secure_transport = ON: a TCP client without TLS is refused.
   * @default - no TLS (MariaDB 10.11 offers none without a certificate)
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string; readonly only?: boolean };
  /**
   * Binary logging, as a point-in-time source needs it: `--log-bin=binlog` in the datadir,
   * server id 1, the format (ROW unless given), and optionally a small rotation size (bytes,
   * at least 4096) and a retention (binlog_expire_logs_seconds).
   * @default - no binary log
   */
  readonly binlog?: { readonly format?: 'ROW' | 'STATEMENT' | 'MIXED'; readonly maxSize?: number; readonly expireSeconds?: number };
  /**
   * Start on this datadir as it is (a physical backup copied back, lib/binlog/physical-restore.ts)
   * instead of a fresh mariadb-install-db. It stays where it is: `stop()` removes only the
   * server's own temp dir (socket, tmp, log), never this one.
   * @default - a fresh datadir in the server's temp dir
   */
  readonly existingDataDir?: string;
}

const ROOT = 'root';
const READY_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 3;

export async function startMariaDb(opts: StartMariaDbOptions = {}): Promise<MariaDbServer> {
  const dir = makeTempDir('mariadb');
  const dataDir = opts.existingDataDir ?? join(dir, 'data');
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const socket = join(dir, 'mariadb.sock');
  try {
    const install = opts.existingDataDir ? { code: 0, stdout: '', stderr: '' } : await run(
      'mariadb-install-db',
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        '--user=root',
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
        // Bootstrap temp tables otherwise go to /tmp under names parallel installs can share:
        // one deletes the other's files and its bootstrap crashes (seen: signal 11 in ha_maria).
        `--tmpdir=${tmp}`,
      ],
      { cwd: dir },
    );
    if (install.code !== 0) {
      throw new Error(`mariadb-install-db failed (exit ${install.code}): ${install.stderr.trim() || install.stdout.trim()}`);
    }

    let lastError: Error | undefined;
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await freePort();
      try {
        const managed = await launch(dir, dataDir, tmp, socket, port, [...tlsArgs(opts), ...binlogArgs(opts)]);
        try {
          // A TLS-only server refuses the harness's plain TCP client: it talks over the socket.
          const via = opts.tls?.only ? socket : port;
          const version = (await runSql(via, undefined, 'SELECT VERSION();')).trim();
          if (opts.password !== undefined) await setRootPassword(via, opts.password);
          return makeServer(managed, dir, dataDir, socket, port, version, opts.password, via);
        } catch (err) {
          await managed.stop('SIGKILL');
          throw err;
        }
      } catch (err) {
        lastError = err as Error;
        if (!/address already in use|bind on tcp\/ip port/i.test(lastError.message)) break;
      }
    }
    throw lastError ?? new Error('mariadbd did not start');
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}

function binlogArgs(opts: StartMariaDbOptions): string[] {
  const binlog = opts.binlog;
  if (!binlog) return [];
  return [
    '--log-bin=binlog',
    '--server-id=1',
    `--binlog-format=${binlog.format ?? 'ROW'}`,
    ...(binlog.maxSize !== undefined ? [`--max-binlog-size=${binlog.maxSize}`] : []),
    ...(binlog.expireSeconds !== undefined ? [`--binlog-expire-logs-seconds=${binlog.expireSeconds}`] : []),
  ];
}

function tlsArgs(opts: StartMariaDbOptions): string[] {
  if (!opts.tls) return [];
  return [
    `--ssl-cert=${opts.tls.certFile}`, `--ssl-key=${opts.tls.keyFile}`, `--ssl-ca=${opts.tls.caFile}`,
    ...(opts.tls.only ? ['--require-secure-transport=ON'] : []),
  ];
}

async function launch(dir: string, dataDir: string, tmp: string, socket: string, port: number, extra: readonly string[] = []): Promise<ManagedProcess> {
  const logPath = join(dir, `mariadbd-${port}.log`);
  const log = openSync(logPath, 'a');
  const child = spawn(
    'mariadbd',
    [
      '--no-defaults',
      `--datadir=${dataDir}`,
      `--socket=${socket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--user=root',
      `--tmpdir=${tmp}`,
      `--pid-file=${join(dir, 'mariadbd.pid')}`,
      '--skip-name-resolve',
      // Throwaway data: durability buys nothing here and costs test time.
      '--innodb-flush-log-at-trx-commit=0',
      '--innodb-buffer-pool-size=64M',
      ...extra,
    ],
    { cwd: dir, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const managed = new ManagedProcess(child, dir);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!isRunning(child)) {
      await managed.stop('SIGKILL');
      throw new Error(`mariadbd exited during start-up (port ${port}): ${tail(logPath)}`);
    }
    const probe = await run('mariadb', clientArgs(port, undefined), { env: clientEnv(undefined), input: 'SELECT 1;' });
    if (probe.code === 0) return managed;
    await delay(20);
  }
  await managed.stop('SIGKILL');
  throw new Error(`mariadbd not ready after ${READY_TIMEOUT_MS} ms: ${tail(logPath)}`);
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}

/** `via`: the TCP port on 127.0.0.1, or the Unix socket's path. */
function clientArgs(via: number | string, database: string | undefined): string[] {
  const connect = typeof via === 'number' ? ['--protocol=TCP', '-h', '127.0.0.1', '-P', String(via)] : ['--protocol=SOCKET', `--socket=${via}`];
  const args = ['--no-defaults', ...connect, '-u', ROOT, '--batch', '--skip-column-names'];
  if (database !== undefined) args.push(database);
  return args;
}

/** The password travels in MYSQL_PWD, never on a command line that `ps` shows. */
function clientEnv(password: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.MYSQL_PWD;
  if (password !== undefined) env.MYSQL_PWD = password;
  return env;
}

function sqlString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

async function setRootPassword(via: number | string, password: string): Promise<void> {
  const hosts = (await runSql(via, undefined, "SELECT Host FROM mysql.user WHERE User = 'root';")).split('\n').filter(Boolean);
  await runSql(via, undefined, hosts.map((host) => `ALTER USER IF EXISTS 'root'@${sqlString(host)} IDENTIFIED BY ${sqlString(password)};`).join('\n'));
}

async function runSql(via: number | string, password: string | undefined, sql: string, database?: string): Promise<string> {
  const result = await run('mariadb', clientArgs(via, database), { env: clientEnv(password), input: sql });
  if (result.code !== 0) throw new Error(`mariadb on ${typeof via === 'number' ? `port ${via}` : via} failed (exit ${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

function makeServer(
  managed: ManagedProcess,
  dir: string,
  dataDir: string,
  socket: string,
  port: number,
  version: string,
  password: string | undefined,
  via: number | string = port,
): MariaDbServer {
  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    user: ROOT,
    password,
    version,
    pid: managed.pid,
    dataDir,
    socket,
    sql: (sql: string, database?: string) => runSql(via, password, sql, database),
    kill(signal: NodeJS.Signals = 'SIGKILL'): void {
      managed.kill(signal);
    },
    stop(): Promise<void> {
      stopped ??= managed.stop('SIGTERM').then(() => removeTempDir(dir));
      return stopped;
    },
  };
}
