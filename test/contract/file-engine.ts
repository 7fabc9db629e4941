/**
 * A third engine, for the contract suite only: it proves that an engine joins Lifeboat in one
 * module. Its "server" is a directory (the suite's `host`), each "database" a folder of it, each
 * "table" a file (its rows: the file's bytes); access needs a password, whose SHA-256 the
 * directory keeps in `.access`, and a run holds a session (a lock file in `.sessions/`, as
 * restic keeps its locks) while it reads. The dump client is GNU tar, a real tool: the backup
 * streams `tar --create` into the commit protocol, the verifier reads the archive to its end
 * with `tar --list` and compares its files with the manifest's, the restore extracts it with
 * `tar --extract` into an empty folder.
 *
 * What the suite does not exercise, a file engine has no use for: SQL, the drill's queries and
 * the runbook's database commands. Those parts answer with an error saying so, not with made-up
 * values.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { DatabaseEngine } from '../../lib/engines/contract';
import { registerEngine } from '../../lib/engines/registry';
import { childEnv, childFailure, resolveTool, startChild } from '../../lib/restore/target';
import { restoreError } from '../../lib/restore/errors';
import { WritableConsumer } from '../../lib/verify/fan-out';
import { tableSetCheck } from '../../lib/verify/judge';
import { EngineError, registerDumpEngine, type DumpEngine, type DumpTarget, type Preflight } from '../../worker/engines';

export const FILE_ENGINE = 'files';
const FORMAT = 'tar';
const ACCESS_FILE = '.access';
const SESSIONS_DIR = '.sessions';

/** The regular files under `dir`, relative, sorted (what tar stores, less its directory entries). */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as { name: string; parentPath: string; isFile(): boolean }[])
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

/** Makes `root` a file server that requires `password`. */
export function initFileServer(root: string, password: string): void {
  mkdirSync(join(root, SESSIONS_DIR), { recursive: true });
  writeFileSync(join(root, ACCESS_FILE), sha256(password));
}

/** The sessions a run holds on `root`. */
export function fileSessions(root: string): number {
  return existsSync(join(root, SESSIONS_DIR)) ? readdirSync(join(root, SESSIONS_DIR)).length : 0;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The folders of a server are its databases; `.access` and `.sessions` are the server's own. */
function folder(root: string, database: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(database)) throw new EngineError('InvalidDumpOptions', `database "${database}": a file server's databases are folder names of [A-Za-z0-9_-]`);
  return join(root, database);
}

function tarPath(): string {
  try {
    return resolveTool(['tar']);
  } catch {
    throw new EngineError('ClientNotFound', 'tar not found on PATH');
  }
}

const fileDump: DumpEngine = {
  async preflight(target: DumpTarget): Promise<Preflight> {
    const access = join(target.host, ACCESS_FILE);
    if (!existsSync(access)) throw new EngineError('SourceUnreachable', `no file server at ${target.host} (${ACCESS_FILE} is missing)`);
    if (target.password === undefined || sha256(target.password) !== readFileSync(access, 'utf8')) {
      throw new EngineError('AuthenticationFailed', `user ${target.username} cannot open the file server ${target.host}: wrong or missing password`);
    }
    const missing = target.databases.filter((database) => !existsSync(folder(target.host, database)));
    if (missing.length > 0) throw new EngineError('DatabaseNotFound', `no folder ${missing.join(', ')} on the file server ${target.host}`);
    const path = tarPath();
    const versionString = spawnSync(path, ['--version'], { encoding: 'utf8', env: childEnv({}) }).stdout.split('\n')[0] ?? '';
    const version = /(\d+\.\d+)/.exec(versionString)?.[1] ?? '0.0';
    const databases = target.databases.map((name) => ({
      name,
      sizeBytes: filesUnder(folder(target.host, name)).reduce((sum, file) => sum + statSync(join(target.host, name, file)).size, 0),
      encoding: 'binary',
      collation: 'binary',
    }));
    return {
      engine: FILE_ENGINE,
      server: { version: '1.0', major: 1, versionString: 'file server 1.0' },
      client: { tool: 'tar', path, version, major: Number(version.split('.')[0]), flavor: 'gnu', versionString },
      databaseSizeBytes: databases.reduce((sum, database) => sum + database.sizeBytes, 0),
      encoding: 'binary',
      databases,
      extensions: [],
      tls: false,
      warnings: [],
    };
  },

  startDump(target, options) {
    const dir = folder(target.host, options.database);
    const session = join(target.host, SESSIONS_DIR, `${process.pid}-${randomBytes(4).toString('hex')}`);
    writeFileSync(session, options.database);
    const files = filesUnder(dir);
    const tables = files.map((name) => ({ database: options.database, schema: '', name, rows: statSync(join(dir, name)).size, exact: true }));
    const child = spawn(options.preflight.client.path, ['--create', '--file=-', '--format=posix', '--sort=name', `--directory=${dir}`, ...files],
      { env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    const completion = new Promise<void>((resolve, reject) => {
      child.once('error', (error) => reject(new EngineError('DumpFailed', `tar could not start: ${error.message}`)));
      child.once('close', (code, signal) => {
        rmSync(session, { force: true });
        if (code === 0) resolve();
        else reject(new EngineError('DumpFailed', `tar ${signal ? `was killed by ${signal}` : `exited with code ${code}`}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
      });
    });
    return {
      stdout: child.stdout,
      completion,
      tables: Promise.resolve(tables),
      rowCountConsistency: Promise.resolve('same-snapshot' as const),
      kill: () => void child.kill('SIGTERM'),
      artifact: { fileExtension: '.tar', format: FORMAT, compression: 'none' },
    };
  },
};

function outsideTheSuite<T extends object>(part: string): T {
  return new Proxy({} as T, {
    get(_target, key) {
      throw new Error(`the file engine has no ${part} (asked for ${String(key)}): it exists for the engine contract suite, which does not use it`);
    },
  });
}

export const fileEngine: DatabaseEngine = {
  name: FILE_ENGINE,
  label: 'File server',
  urlScheme: 'files',
  urlAliases: [],
  defaultPort: 0,
  defaultUser: 'files',
  passwordEnv: 'LIFEBOAT_FILES_PASSWORD',
  sqlClients: [],
  hasGlobals: false,
  restoresUnderAnotherName: true,
  majorsOrdered: false,
  restoresInto: (target) => target === FILE_ENGINE,
  retryableErrors: ['SourceUnreachable', 'DumpFailed'],
  sql: outsideTheSuite('SQL'),
  drill: outsideTheSuite('drill queries'),
  runbook: outsideTheSuite('runbook commands'),
  verify: {
    formats: [FORMAT],
    prepare: async () => {
      const path = tarPath();
      return {
        refuse: () => undefined,
        start(artifact, expected) {
          const child = spawn(path, ['--list', '--quoting-style=literal', '--file=-'], { env: childEnv({}), stdio: ['pipe', 'pipe', 'pipe'] });
          let listing = '';
          let stderr = '';
          child.stdout.on('data', (chunk: Buffer) => (listing += chunk.toString()));
          child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
          const exit = new Promise<number | null>((resolve) => child.once('close', resolve));
          return {
            consumers: [new WritableConsumer(child.stdin)],
            async result() {
              const code = await exit;
              const found = listing.split('\n').filter((line) => line !== '' && !line.endsWith('/')).map((name) => ({ schema: '', name }));
              const read = code === 0
                ? { name: 'full-read', ok: true, detail: `tar --list read the archive to its end: ${found.length} files` }
                : { name: 'full-read', ok: false, detail: `tar --list exited with code ${code}: ${stderr.trim()}` };
              const tableSet = tableSetCheck(artifact, expected, found, (file) => file.name, '');
              return {
                checks: [read, tableSet.check],
                findings: [
                  ...(read.ok ? [] : [{ name: 'ArchiveCorrupt' as const, message: `${artifact.key}: ${read.detail}` }]),
                  ...(tableSet.finding ? [tableSet.finding] : []),
                ],
              };
            },
            kill: () => void child.kill('SIGKILL'),
          };
        },
      };
    },
    stockReadCommand: (_artifact, file) => ['tar', '--list', `--file=${file}`],
  },
  restore: {
    replaces: 'drop',
    clients(context) {
      const tar = resolveTool(['tar']);
      const { target } = context;
      return {
        async inspect(database) {
          if (!existsSync(join(target.host, ACCESS_FILE))) throw restoreError('TargetUnreachable', `no file server at ${target.host}`);
          if (target.password === undefined || sha256(target.password) !== readFileSync(join(target.host, ACCESS_FILE), 'utf8')) {
            throw restoreError('TargetUnreachable', `user ${target.username} cannot open the file server ${target.host}: wrong or missing password`);
          }
          const dir = join(target.host, database);
          return { exists: existsSync(dir), relations: filesUnder(dir).map((file) => `${database}/${file}`) };
        },
        async restore(item, progress) {
          const dir = join(target.host, item.database);
          if (context.clean) rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir, { recursive: true });
          const { child, exit } = startChild(tar, ['--extract', `--file=${item.file}`, `--directory=${dir}`], childEnv({}), context.signal);
          child.stdin?.end();
          const result = await exit;
          if (result.code !== 0 || result.spawnError) throw childFailure(`tar extracting into ${dir}`, result, context.secrets, context.signal);
          progress.add(item.artifact.bytes);
        },
      };
    },
  },
};

registerEngine(fileEngine);
registerDumpEngine(FILE_ENGINE, fileDump);
