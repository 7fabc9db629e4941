/**
 * Plumbing shared by the throwaway-server harnesses: temp dirs, free loopback ports, running
 * commands, and making sure no server outlives the test process.
 *
 * Two safety nets stand behind every `stop()`:
 * - a process 'exit' handler SIGKILLs every tracked server and removes its temp dir;
 * - a detached shell watchdog per server holds the read end of a pipe from this process and,
 *   when the pipe closes, SIGKILLs the server and removes its temp dir: that covers this process
 *   being killed (a jest worker SIGKILLed on timeout never runs 'exit' handlers).
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string;
  readonly uid?: number;
  readonly gid?: number;
  readonly cwd?: string;
}

/** Runs a command (argv, never a shell string) to completion and collects its output. */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: opts.env ?? process.env,
      uid: opts.uid,
      gid: opts.gid,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    // A client that exits before reading all its input gives EPIPE here; its exit code says the rest.
    child.stdin.on('error', () => undefined);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
    child.stdin.end(opts.input ?? '');
  });
}

/** A port that was free on 127.0.0.1 a moment ago; callers retry on EADDRINUSE. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const tempDirs = new Set<string>();

/** A fresh dir under os.tmpdir(), removed by `removeTempDir` or, at the latest, on process exit. */
export function makeTempDir(prefix: string): string {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), `lifeboat-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export interface OsUser {
  readonly uid: number;
  readonly gid: number;
}

/**
 * PostgreSQL refuses to run as root: as root, servers run as the named OS user; otherwise as
 * the current user (undefined: no uid/gid switch).
 */
export function unprivilegedUser(name: string): OsUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Tracked {
  readonly child: ChildProcess;
  readonly watchdog: ChildProcess;
}

const tracked = new Set<Tracked>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const entry of tracked) {
      if (isRunning(entry.child)) {
        try {
          process.kill(entry.child.pid as number, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Resolves when the child has exited (immediately if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * A server process whose lifetime is bound to this test process: `stop` sends `signal`, waits
 * up to `graceMs` for the exit and SIGKILLs after that. Idempotent.
 */
/** Direct children of `pid`, from /proc (Linux). */
function childPids(pid: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (children) pids.push(...children.split(/\s+/).map(Number));
  }
  return pids;
}

export class ManagedProcess {
  private stopping: Promise<void> | undefined;
  private readonly entry: Tracked;

  /** `tempDir`: removed by the watchdog too, when this process dies without cleaning up. */
  constructor(
    readonly child: ChildProcess,
    tempDir?: string,
  ) {
    installExitHook();
    const script = 'read _ ; kill -KILL "$1" 2>/dev/null; sleep 1; [ -n "$2" ] && rm -rf -- "$2"';
    const watchdog = spawn('sh', ['-c', script, 'lifeboat-watchdog', String(child.pid), tempDir ?? ''], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    watchdog.unref();
    // Keep the write end open but let it not hold the event loop open.
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.entry = { child, watchdog };
    tracked.add(this.entry);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) process.kill(this.pid, signal);
  }

  /** SIGKILLs this process and its direct children together (children first: no reparenting race). */
  killTree(): void {
    if (!this.running) return;
    for (const pid of childPids(this.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited in the meantime.
      }
    }
    process.kill(this.pid, 'SIGKILL');
  }

  stop(signal: NodeJS.Signals, graceMs = 10_000): Promise<void> {
    this.stopping ??= this.doStop(signal, graceMs);
    return this.stopping;
  }

  private async doStop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    if (this.running) {
      process.kill(this.pid, signal);
      const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
      await exited(this.child);
      clearTimeout(timer);
    }
    this.entry.watchdog.kill('SIGKILL');
    tracked.delete(this.entry);
  }
}
