/**
 * A real S3-compatible HTTP server (fauxqs) in a separate process, so a test can kill it
 * mid-upload. What it emulates beyond fauxqs is listed in s3-server.mjs.
 */
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { createS3Client, type CreateS3ClientOptions } from '../../lib/aws/s3-client';
import { ManagedProcess } from './processes';

export interface S3Server {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  /**
   * A client from the production factory (`createS3Client`): path-style, region us-east-1,
   * static test credentials; `overrides` e.g. `{ maxAttempts: 1 }`.
   */
  client(overrides?: Partial<CreateS3ClientOptions>): S3Client;
  /**
   * `objectLock`: created with Object Lock enabled (`x-amz-bucket-object-lock-enabled`), hence
   * versioned; `versioning`: versioning Enabled without Object Lock.
   */
  createBucket(name: string, options?: CreateBucketOptions): Promise<void>;
  /** Signals the server (default SIGKILL); `stop()` still cleans up. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the server by pid and waits for its exit. Idempotent. */
  stop(): Promise<void>;
}

export interface CreateBucketOptions {
  readonly objectLock?: boolean;
  readonly versioning?: boolean;
}

export const TEST_CREDENTIALS = { accessKeyId: 'lifeboat-test', secretAccessKey: 'lifeboat-test-secret' } as const;

const READY_TIMEOUT_MS = 15_000;
const SERVER_SCRIPT = join(__dirname, 's3-server.mjs');

/**
 * glibc malloc settings for the S3 server process. fauxqs keeps every object in memory and
 * copies each part twice (request body, then the whole object at CompleteMultipartUpload); on
 * this VM, zeroing the fresh pages of those buffers cost more CPU than the copies:
 * - transparent huge pages (THP is in "madvise" mode here): a 400 MB upload took 200,000 minor
 *   faults and 4.9 CPU-s without, 1,000-35,000 faults and 2.9-4.0 CPU-s with;
 * - part-sized buffers (below 32 MiB) from the heap, which keeps up to 1 GiB of freed memory
 *   instead of returning it: parts reuse it rather than fault in zeroed pages each time (a
 *   200 MB upload: 1.45 -> 1.1 CPU-s, system time 50 -> 12 ticks).
 * Settings already in GLIBC_TUNABLES come first; glibc ignores what does not apply.
 */
export function s3ServerTunables(tunables: string | undefined): string {
  const settings = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824';
  return tunables ? `${tunables}:${settings}` : settings;
}

/**
 * Moves `Date` in the server's process by the offset (ms) in the file LIFEBOAT_S3_CLOCK_FILE
 * names, read at every use: the server then judges locks (and dates what it writes) by a clock
 * the test sets. S3, and the server, take no retain-until date in the past and refuse deletes by
 * their own clock; a history of runs written "at" their slots needs the server's clock there.
 */
const CLOCK_PRELOAD = `
import { readFileSync } from 'node:fs';
const file = process.env.LIFEBOAT_S3_CLOCK_FILE;
const RealDate = globalThis.Date;
const offset = () => Number(readFileSync(file, 'utf8'));
globalThis.Date = class extends RealDate {
  constructor(...args) { if (args.length === 0) super(RealDate.now() + offset()); else super(...args); }
  static now() { return RealDate.now() + offset(); }
};
`;

export interface StartS3Options {
  /**
   * The server's clock, in ms since the epoch, as it starts; then moved with `setClock`.
   * @default - the real clock (and `setClock` refuses)
   */
  readonly clock?: number;
}

export async function startS3(opts: StartS3Options = {}): Promise<S3Server & { setClock(at: number): void }> {
  let clockFile: string | undefined;
  const clockEnv: Record<string, string> = {};
  if (opts.clock !== undefined) {
    clockFile = join(mkdtempSync(join(tmpdir(), 'lifeboat-s3-clock-')), 'offset-ms');
    writeFileSync(clockFile, String(opts.clock - Date.now()));
    clockEnv.LIFEBOAT_S3_CLOCK_FILE = clockFile;
    clockEnv.NODE_OPTIONS = [process.env.NODE_OPTIONS, `--import=data:text/javascript;base64,${Buffer.from(CLOCK_PRELOAD).toString('base64')}`].filter(Boolean).join(' ');
  }
  // The test process's own node: Node 22 here, which fauxqs needs.
  const child = spawn(process.execPath, [SERVER_SCRIPT], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, FAUXQS_LOGGER: 'false', GLIBC_TUNABLES: s3ServerTunables(process.env.GLIBC_TUNABLES), ...clockEnv },
  });
  const managed = new ManagedProcess(child);
  const port = await readPort(child).catch(async (err: Error) => {
    await managed.stop('SIGKILL');
    throw err;
  });
  const endpoint = `http://127.0.0.1:${port}`;
  let admin: S3Client | undefined;
  let stopped: Promise<void> | undefined;

  const client = (overrides: Partial<CreateS3ClientOptions> = {}): S3Client =>
    createS3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: TEST_CREDENTIALS,
      ...overrides,
    });

  return {
    endpoint,
    port,
    pid: managed.pid,
    setClock(at: number): void {
      if (!clockFile) throw new Error('setClock: this server was started on the real clock (startS3({ clock }) moves it)');
      writeFileSync(clockFile, String(at - Date.now()));
    },
    client,
    async createBucket(name: string, options: CreateBucketOptions = {}): Promise<void> {
      admin ??= client();
      await admin.send(new CreateBucketCommand({ Bucket: name, ...(options.objectLock ? { ObjectLockEnabledForBucket: true } : {}) }));
      if (options.versioning && !options.objectLock) {
        await admin.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }));
      }
    },
    kill(signal: NodeJS.Signals = 'SIGKILL'): void {
      managed.kill(signal);
    },
    stop(): Promise<void> {
      stopped ??= (async () => {
        admin?.destroy();
        child.stdin?.end();
        await managed.stop('SIGTERM', 5_000);
        if (clockFile) rmSync(dirname(clockFile), { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/** The long-lived server of a data directory (`lifeboat local up`): its pid and endpoint. */
export interface PersistentS3 {
  readonly pid: number;
  readonly port: number;
  readonly endpoint: string;
  readonly dataDir: string;
}

/** server.json of a data directory whose process is alive, else undefined. */
export function persistentS3(dataDir: string): PersistentS3 | undefined {
  let server: { pid?: unknown; port?: unknown };
  try {
    server = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as typeof server;
  } catch {
    return undefined;
  }
  const pid = Number(server.pid);
  const port = Number(server.port);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || !alive(pid)) return undefined;
  return { pid, port, endpoint: `http://127.0.0.1:${port}`, dataDir };
}

/**
 * Starts the server of `dataDir` as a process of its own that outlives this one (its state on
 * disk there: s3-persistence.mjs), or finds it running. Its output goes to server.log there.
 */
export async function startPersistentS3(opts: { readonly dataDir: string; readonly port?: number }): Promise<PersistentS3> {
  const running = persistentS3(opts.dataDir);
  if (running) return running;
  mkdirSync(opts.dataDir, { recursive: true });
  rmSync(join(opts.dataDir, 'server.json'), { force: true });
  const logFile = join(opts.dataDir, 'server.log');
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [SERVER_SCRIPT], {
    detached: true,
    stdio: ['ignore', out, out],
    env: {
      ...process.env, FAUXQS_LOGGER: 'false', GLIBC_TUNABLES: s3ServerTunables(process.env.GLIBC_TUNABLES),
      LIFEBOAT_S3_DATA_DIR: opts.dataDir, ...(opts.port !== undefined ? { LIFEBOAT_S3_PORT: String(opts.port) } : {}),
    },
  });
  closeSync(out);
  child.unref();
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const server = persistentS3(opts.dataDir);
    if (server && server.pid === child.pid) return server;
    if (child.exitCode !== null || child.signalCode !== null || (child.pid !== undefined && !alive(child.pid))) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (child.pid !== undefined && alive(child.pid)) process.kill(child.pid, 'SIGKILL');
  const log = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n');
  throw new Error(`local S3 server for ${opts.dataDir} did not start within ${READY_TIMEOUT_MS} ms${log ? `; ${logFile} ends:\n${log}` : ''}`);
}

/** Stops the server of `dataDir` (SIGTERM: it writes its state, then exits); false when none runs. */
export async function stopPersistentS3(dataDir: string, timeoutMs = 30_000): Promise<boolean> {
  const server = persistentS3(dataDir);
  if (!server) return false;
  process.kill(server.pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive(server.pid)) {
    if (Date.now() > deadline) {
      process.kill(server.pid, 'SIGKILL');
      throw new Error(`local S3 server ${server.pid} did not stop within ${timeoutMs} ms (killed; its state is as last written)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPort(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve, reject) => {
    const stderr: string[] = [];
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => fail(new Error(`S3 server not ready after ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const onExit = (code: number | null): void => fail(new Error(`S3 server exited during start-up (exit ${code}): ${stderr.join('').trim()}`));
    function fail(err: Error): void {
      clearTimeout(timer);
      lines.close();
      child.off('exit', onExit);
      reject(err);
    }
    child.once('exit', onExit);
    lines.once('line', (line) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      lines.close();
      const port = Number((JSON.parse(line) as { port?: unknown }).port);
      if (Number.isInteger(port) && port > 0) resolve(port);
      else reject(new Error(`S3 server printed no port: ${line}`));
    });
  });
}

/**
 * Fault injection: replaces the stored bytes of one object version in place on the local S3
 * server (its `/_lifeboat/tamper` endpoint), as silent storage corruption, or a dump that wrote
 * bad bytes, would leave them: the version id, ETag and metadata stay. Writing a new version
 * instead would not damage the run: every reader reads the version the manifest names.
 */
export async function tamperStoredObject(endpoint: string, object: { bucket: string; key: string; versionId?: string }, bytes: Uint8Array): Promise<void> {
  const query = new URLSearchParams({ bucket: object.bucket, key: object.key, ...(object.versionId ? { versionId: object.versionId } : {}) });
  const response = await fetch(`${endpoint}/_lifeboat/tamper?${query}`, {
    method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' },
  });
  if (response.status !== 204) throw new Error(`tampering with s3://${object.bucket}/${object.key}: ${response.status} ${await response.text()}`);
}
