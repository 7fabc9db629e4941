/**
 * pgBackRest, the engine of PostgreSQL point-in-time recovery: full, differential and
 * incremental backups and continuous WAL archiving into an S3 repository, and restores to a
 * time, to the latest WAL, or from a chosen set.
 *
 * One option set describes the repository and the stanza. The runner writes it, WITHOUT
 * secrets, to `<workDir>/pgbackrest.conf`, which its own commands and the server's
 * archive_command (`archiveCommand`) both read, so the two never disagree; the machine's
 * /etc/pgbackrest* files are never read (`--config`, and an empty `--config-include-path`).
 * The S3 keys travel only in child environments (PGBACKREST_REPO1_S3_KEY, …_KEY_SECRET,
 * …_TOKEN): pgBackRest refuses them on the command line, none is written to a file, and every
 * message is redacted of them besides. The server that runs archive-push (and, once restored,
 * archive-get) needs them in its own environment: `serverEnvironment()`.
 *
 * Every command runs with an explicit environment (PATH, C locale, UTC and the keys: no PG* or
 * PGBACKREST* variable is inherited) and, when `osUser` is given, as that OS user: pgBackRest
 * must read the data directory and write the restored one as the server's owner.
 */
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { lifeboatError, redact, type ErrorName } from '../domain/errors';
import { parseInfo, setForTime, type BackupSet, type BackupType, type PgBackRestInfo } from './pgbackrest-info';

export type { ArchiveRange, BackupSet, BackupType, PgBackRestInfo } from './pgbackrest-info';

/** The names the runner's errors carry (lib/domain/errors.ts). */
export const PITR_ERROR_NAMES = ['BackupFailed', 'HostUnreachable', 'RestoreFailed', 'ClientNotFound', 'InvalidInput'] as const satisfies readonly ErrorName[];
export type PitrErrorName = (typeof PITR_ERROR_NAMES)[number];

export function pitrError(name: PitrErrorName, message: string, cause?: unknown): Error {
  return lifeboatError(name, message, cause);
}

export type S3Credentials =
  /** Static keys (repo1-s3-key-type=shared), passed in the environment only. */
  | { readonly type: 'shared'; readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string }
  /** The instance profile's or task role's temporary credentials (repo1-s3-key-type=auto). */
  | { readonly type: 'auto' };

export interface PgBackRestRepository {
  readonly bucket: string;
  readonly region: string;
  /** Host name of the S3 endpoint, no scheme (pgBackRest speaks HTTPS only and refuses an IP address), e.g. `s3.eu-west-1.amazonaws.com`. */
  readonly endpoint: string;
  /** @default 443 */
  readonly port?: number;
  /** CA bundle that signed the endpoint's certificate. @default - the system's */
  readonly caFile?: string;
  /** The repository's path inside the bucket, absolute, e.g. `/pitr/orders-db`. */
  readonly path: string;
  readonly credentials: S3Credentials;
  /** @default 'host' (virtual-hosted); 'path' for S3-compatible servers. */
  readonly uriStyle?: 'host' | 'path';
}

export interface PgBackRestStanza {
  /** The stanza's name: letters, digits, `-`, `_`, `.`. */
  readonly name: string;
  /** The cluster's data directory. */
  readonly pgPath: string;
  /** @default 5432 */
  readonly pgPort?: number;
  /** Directory of the server's Unix socket. @default - libpq's */
  readonly pgSocketPath?: string;
  /** @default 'postgres' */
  readonly pgUser?: string;
}

export interface PgBackRestOptions {
  readonly repository: PgBackRestRepository;
  readonly stanza: PgBackRestStanza;
  /** The runner's own directory (config, empty conf.d, lock/, log/, spool/); created when missing, owned by `osUser`. */
  readonly workDir: string;
  /** @default 'pgbackrest' on PATH */
  readonly command?: string;
  /** Run every command as this OS user (the server's owner); needs root. @default - the current user */
  readonly osUser?: { readonly uid: number; readonly gid: number };
  /** @default 'zst' */
  readonly compressType?: 'zst' | 'lz4' | 'gz' | 'bz2' | 'none';
  /** @default 1 */
  readonly processMax?: number;
  /** pgBackRest's io-, db-, protocol- and archive-timeout, in seconds. @default 60, 1800, 1830, 60 (pgBackRest's) */
  readonly timeouts?: { readonly io?: number; readonly db?: number; readonly protocol?: number; readonly archive?: number };
  /** @default 'off': a command's output is returned; archive-push's goes to the server's log. */
  readonly logLevelFile?: 'off' | 'error' | 'warn' | 'info' | 'detail';
  /** Each line a command prints (pgBackRest's console log, redacted). */
  readonly onLog?: (line: string) => void;
}

/**
 * A time (recovery stops just before the first commit after it), the end of the archive
 * (`latest`), or the end of the set itself (`immediate`: the set's consistent point, no WAL
 * after it).
 */
export type RestoreTarget = { readonly time: Date } | 'latest' | 'immediate';

export interface RestoreOptions {
  /** An empty (or missing) directory; it becomes the restored cluster, mode 0700, owned by `osUser`. */
  readonly dataDir: string;
  readonly target: RestoreTarget;
  /** Restore from this set. @default - for a time, the newest set that stopped at or before it; else the newest */
  readonly set?: string;
  /** 'off' writes archive_mode=off, so the copy never pushes its new timeline into the source's repository. @default 'off' */
  readonly archiveMode?: 'off' | 'preserve';
}

export interface PgBackRest {
  /** `<workDir>/pgbackrest.conf`, written before every command. */
  readonly configFile: string;
  /** archive_command for the server: `pgbackrest --config=… --stanza=… archive-push %p`, shell-quoted. */
  readonly archiveCommand: string;
  /** The variables the server's environment needs for archive-push and archive-get: the keys, if any. */
  serverEnvironment(): Record<string, string>;
  /** `pgBackRest 2.45` → { major: 2, minor: 45 }. */
  version(): Promise<{ readonly major: number; readonly minor: number; readonly text: string }>;
  stanzaCreate(): Promise<void>;
  /** Checks the configuration and that a WAL switch reaches the repository (waits for it). */
  check(): Promise<void>;
  backup(opts: { readonly type: BackupType }): Promise<BackupSet>;
  info(): Promise<PgBackRestInfo>;
  /**
   * `pgbackrest verify`: reads every file of every backup set and every archived WAL segment in
   * the repository and checks each against its recorded checksum and size. `ok` is false when
   * pgBackRest found something wrong; `report` is its own account (what, where). It checks only
   * what is there: a WAL segment missing from the archive is not its finding (lib/pitr/wal.ts
   * is). Throws only when it could not judge (the repository unreachable, the client missing).
   */
  verify(): Promise<{ readonly ok: boolean; readonly report: string }>;
  restore(opts: RestoreOptions): Promise<{ readonly set?: string }>;
  /**
   * Removes what Lifeboat's retention decided (lib/pitr/retention.ts), never by pgBackRest's own
   * policy: each of `sets` (dependents before what they depend on), then, with `archiveFulls`,
   * the WAL no kept set needs (`repo1-retention-archive-type=full`, `repo1-retention-archive` =
   * the number of fulls kept). The full-backup retention stays at its maximum: nothing else goes.
   */
  expire(opts: { readonly sets: readonly string[]; readonly archiveFulls?: number }): Promise<void>;
}

/** Retention is Lifeboat's (its pruner): the expire that follows each backup keeps every set (pgBackRest's maximum). */
const RETENTION_FULL_MAX = '9999999';
const STDERR_TAIL_LINES = 12;
const OUTPUT_TAIL_BYTES = 64 * 1024;
// pgBackRest exit codes (its error.yaml): option errors, connection errors, a target no set can serve.
const OPTION_ERRORS = new Set([29, 31, 32, 33, 34, 35, 36, 37, 84, 90]);
const CONNECT_ERRORS = new Set([49, 56]);
const UNREACHABLE = /HostConnectError|DbConnectError|timeout after \d+ms waiting for|unable to connect to|unable to find primary cluster/i;
const NO_SET_FOR_TARGET = /unable to find backup set with stop time less than/i;

function invalid(message: string): never {
  throw pitrError('InvalidInput', message);
}

function validate(opts: PgBackRestOptions): void {
  const { repository: repo, stanza } = opts;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(repo.bucket)) invalid(`invalid bucket name ${JSON.stringify(repo.bucket)}`);
  if (!/^[a-z0-9-]+$/.test(repo.region)) invalid(`invalid region ${JSON.stringify(repo.region)}`);
  if (isIP(repo.endpoint) !== 0) invalid(`endpoint ${repo.endpoint} is an IP address: pgBackRest needs a host name its certificate names`);
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(repo.endpoint)) invalid(`invalid endpoint host name ${JSON.stringify(repo.endpoint)} (no scheme, no port)`);
  for (const [what, port] of [['repository port', repo.port], ['pgPort', stanza.pgPort]] as const) {
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) invalid(`invalid ${what} ${port}`);
  }
  if (!/^\/[A-Za-z0-9._\-/]*$/.test(repo.path)) invalid(`repository path must be absolute (letters, digits, . _ - /): ${JSON.stringify(repo.path)}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(stanza.name)) invalid(`invalid stanza name ${JSON.stringify(stanza.name)}`);
  for (const [what, path] of [['pgPath', stanza.pgPath], ['workDir', opts.workDir], ['pgSocketPath', stanza.pgSocketPath], ['caFile', repo.caFile]]) {
    if (path !== undefined && (!isAbsolute(path) || /[\n\r'"\\]/.test(path))) invalid(`${what} must be an absolute path without quotes or newlines: ${JSON.stringify(path)}`);
  }
  if (stanza.pgUser !== undefined && !/^[A-Za-z0-9_.-]+$/.test(stanza.pgUser)) invalid(`invalid pgUser ${JSON.stringify(stanza.pgUser)}`);
  if (repo.credentials.type === 'shared' && (!repo.credentials.accessKeyId || !repo.credentials.secretAccessKey)) invalid('shared credentials need an access key id and a secret');
  const t = opts.timeouts ?? {};
  for (const [name, value] of Object.entries(t)) if (value !== undefined && !(value > 0 && value <= 86400)) invalid(`invalid ${name} timeout ${value}`);
  if ((t.protocol ?? 1830) <= (t.db ?? 1800)) invalid('the protocol timeout must be longer than the db timeout (pgBackRest requires it)');
  if (opts.processMax !== undefined && !(Number.isInteger(opts.processMax) && opts.processMax >= 1 && opts.processMax <= 999)) invalid(`invalid processMax ${opts.processMax}`);
}

/** The option set as pgbackrest.conf lines: `[global]`, then `[<stanza>]`. Never a secret. */
function optionSections(opts: PgBackRestOptions): { global: [string, string][]; stanza: [string, string][] } {
  const { repository: repo, stanza } = opts;
  const t = opts.timeouts ?? {};
  const global: [string, string][] = [
    ['repo1-type', 's3'],
    ['repo1-s3-bucket', repo.bucket],
    ['repo1-s3-region', repo.region],
    ['repo1-s3-endpoint', repo.endpoint],
    ['repo1-s3-uri-style', repo.uriStyle ?? 'host'],
    ['repo1-s3-key-type', repo.credentials.type],
    ['repo1-path', repo.path],
    ['repo1-retention-full', RETENTION_FULL_MAX],
  ];
  if (repo.port !== undefined) global.push(['repo1-storage-port', String(repo.port)]);
  if (repo.caFile !== undefined) global.push(['repo1-storage-ca-file', repo.caFile]);
  global.push(
    ['compress-type', opts.compressType ?? 'zst'],
    ['process-max', String(opts.processMax ?? 1)],
    ['start-fast', 'y'],
    ['archive-async', 'n'],
    ['lock-path', join(opts.workDir, 'lock')],
    ['log-path', join(opts.workDir, 'log')],
    ['spool-path', join(opts.workDir, 'spool')],
    ['log-level-console', 'info'],
    ['log-level-stderr', 'warn'],
    ['log-level-file', opts.logLevelFile ?? 'off'],
  );
  if (t.io !== undefined) global.push(['io-timeout', String(t.io)]);
  if (t.db !== undefined) global.push(['db-timeout', String(t.db)]);
  if (t.protocol !== undefined) global.push(['protocol-timeout', String(t.protocol)]);
  if (t.archive !== undefined) global.push(['archive-timeout', String(t.archive)]);
  const section: [string, string][] = [['pg1-path', stanza.pgPath], ['pg1-port', String(stanza.pgPort ?? 5432)], ['pg1-user', stanza.pgUser ?? 'postgres']];
  if (stanza.pgSocketPath !== undefined) section.push(['pg1-socket-path', stanza.pgSocketPath]);
  return { global, stanza: section };
}

/** pgbackrest.conf for these options, without secrets (a comment says where they come from). */
export function renderPgBackRestConfig(opts: PgBackRestOptions): string {
  validate(opts);
  const { global, stanza } = optionSections(opts);
  const line = ([name, value]: [string, string]) => `${name}=${value}`;
  const keys = opts.repository.credentials.type === 'shared'
    ? ['# repo1-s3-key, repo1-s3-key-secret (and repo1-s3-token): from PGBACKREST_REPO1_S3_KEY, PGBACKREST_REPO1_S3_KEY_SECRET', '# (and PGBACKREST_REPO1_S3_TOKEN) in the environment only, never in this file.']
    : ['# S3 credentials: the instance profile or task role (repo1-s3-key-type=auto).'];
  return ['# Written by Lifeboat. No secrets here.', ...keys, '[global]', ...global.map(line), '', `[${opts.stanza.name}]`, ...stanza.map(line), ''].join('\n');
}

/** `'…'` for /bin/sh (archive_command runs through it). */
const shellQuote = (text: string) => (/^[A-Za-z0-9_./=:-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`);

/** `2026-12-03 15:44:15.424+00`, the form pgBackRest and recovery_target_time both take. */
export function formatTargetTime(time: Date): string {
  if (Number.isNaN(time.getTime())) invalid('restore target time is not a valid date');
  return `${time.toISOString().replace('T', ' ').replace('Z', '')}+00`;
}

/**
 * The server's archive_command for these options (shell-quoted): it reads the config the runner
 * writes to `workDir`. Known before the server starts, which its data directory may not be.
 */
export function pgBackRestArchiveCommand(opts: { readonly workDir: string; readonly stanza: { readonly name: string }; readonly command?: string }): string {
  return [opts.command ?? 'pgbackrest', `--config=${join(opts.workDir, 'pgbackrest.conf')}`, `--config-include-path=${join(opts.workDir, 'conf.d')}`,
    `--stanza=${opts.stanza.name}`].map(shellQuote).concat('archive-push', '%p').join(' ');
}

/** What the server's environment needs for archive-push and archive-get: the keys, if any (none for `auto`). */
export function pgBackRestServerEnvironment(repo: PgBackRestRepository): Record<string, string> {
  return secretEnv(repo);
}

function secretEnv(repo: PgBackRestRepository): Record<string, string> {
  if (repo.credentials.type !== 'shared') return {};
  const env: Record<string, string> = {
    PGBACKREST_REPO1_S3_KEY: repo.credentials.accessKeyId,
    PGBACKREST_REPO1_S3_KEY_SECRET: repo.credentials.secretAccessKey,
  };
  if (repo.credentials.sessionToken) env.PGBACKREST_REPO1_S3_TOKEN = repo.credentials.sessionToken;
  return env;
}

interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function pgBackRest(opts: PgBackRestOptions): PgBackRest {
  validate(opts);
  const command = opts.command ?? 'pgbackrest';
  const configFile = join(opts.workDir, 'pgbackrest.conf');
  const includeDir = join(opts.workDir, 'conf.d');
  const secrets = Object.values(secretEnv(opts.repository));
  const clean = (text: string) => redact(text, secrets);
  const baseArgs = [`--config=${configFile}`, `--config-include-path=${includeDir}`, `--stanza=${opts.stanza.name}`];

  /**
   * The work dir, its subdirectories and the config, owned by `osUser` (the config readable, not
   * writable, by its group). The server's archive-push may read the config at any moment: it is
   * replaced by a rename, never rewritten in place, and only when its text changes.
   */
  const prepare = (): void => {
    for (const dir of [opts.workDir, includeDir, ...['lock', 'log', 'spool'].map((d) => join(opts.workDir, d))]) {
      mkdirSync(dir, { recursive: true, mode: 0o750 });
      if (opts.osUser) chownSync(dir, opts.osUser.uid, opts.osUser.gid);
    }
    const text = renderPgBackRestConfig(opts);
    if (existsSync(configFile) && readFileSync(configFile, 'utf8') === text) return;
    const staging = `${configFile}.${process.pid}.tmp`;
    writeFileSync(staging, text, { mode: 0o640 });
    if (opts.osUser) chownSync(staging, opts.osUser.uid, opts.osUser.gid);
    renameSync(staging, configFile);
  };

  const exec = (args: readonly string[], keepStdout = false): Promise<Outcome> => {
    prepare(); // also the child's cwd: a missing one would fail the spawn as ENOENT, like a missing client
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC', ...secretEnv(opts.repository) };
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { env, uid: opts.osUser?.uid, gid: opts.osUser?.gid, cwd: opts.workDir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let partial = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        if (!keepStdout && stdout.length > 2 * OUTPUT_TAIL_BYTES) stdout = stdout.slice(-OUTPUT_TAIL_BYTES);
        if (!opts.onLog || keepStdout) return;
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) opts.onLog(clean(line));
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-OUTPUT_TAIL_BYTES);
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'ENOENT' || err.code === 'EACCES'
          ? pitrError('ClientNotFound', `${command} not found or not executable (${err.code}): install pgBackRest on this machine`, err)
          : err);
      });
      child.on('close', (code, signal) => {
        if (partial.trim() && opts.onLog && !keepStdout) opts.onLog(clean(partial));
        resolve({ code, signal, stdout: clean(stdout), stderr: clean(stderr) });
      });
    });
  };

  const failure = (what: string, outcome: Outcome, fallback: PitrErrorName): Error => {
    const tail = outcome.stderr.trim().split('\n').slice(-STDERR_TAIL_LINES).join('\n');
    const code = outcome.code ?? -1;
    let name = fallback;
    if (CONNECT_ERRORS.has(code) || UNREACHABLE.test(outcome.stderr)) name = 'HostUnreachable';
    else if (OPTION_ERRORS.has(code) || NO_SET_FOR_TARGET.test(outcome.stderr)) name = 'InvalidInput';
    const status = outcome.signal ? `signal ${outcome.signal}` : `exit ${code}`;
    return pitrError(name, `pgbackrest ${what} failed (${status}): ${tail || '(no error output)'}`);
  };

  const runCommand = async (what: string, args: readonly string[], fallback: PitrErrorName, keepStdout = false): Promise<Outcome> => {
    const outcome = await exec([...baseArgs, ...args], keepStdout);
    if (outcome.code !== 0) throw failure(what, outcome, fallback);
    return outcome;
  };

  const info = async (): Promise<PgBackRestInfo> => {
    const { stdout } = await runCommand('info', ['info', '--output=json'], 'BackupFailed', true);
    let parsed: PgBackRestInfo;
    try {
      parsed = parseInfo(stdout, opts.stanza.name);
    } catch (err) {
      throw pitrError('BackupFailed', clean((err as Error).message), err);
    }
    // 0: ok; 2: no valid backups yet. Anything else: the repository could not be read as a stanza.
    if (parsed.status.code !== 0 && parsed.status.code !== 2) {
      const detail = [parsed.status.message, ...parsed.repoStatus.filter((r) => r.code !== 0).map((r) => r.message)].join('; ');
      throw pitrError(UNREACHABLE.test(detail) ? 'HostUnreachable' : 'BackupFailed', clean(`pgbackrest info: stanza ${opts.stanza.name}: ${detail}`));
    }
    return parsed;
  };

  return {
    configFile,
    archiveCommand: pgBackRestArchiveCommand(opts),
    serverEnvironment: () => secretEnv(opts.repository),

    async version() {
      const outcome = await exec(['version']);
      const match = /^pgBackRest (\d+)\.(\d+)/m.exec(outcome.stdout);
      if (outcome.code !== 0 || !match) throw pitrError('ClientNotFound', `${command} version: unexpected answer (exit ${outcome.code}): ${(outcome.stdout + outcome.stderr).trim().slice(0, 200)}`);
      return { major: Number(match[1]), minor: Number(match[2]), text: match[0] };
    },

    async stanzaCreate() {
      await runCommand('stanza-create', ['stanza-create'], 'BackupFailed');
    },

    async check() {
      await runCommand('check', ['check'], 'BackupFailed');
    },

    async verify() {
      const outcome = await exec([...baseArgs, 'verify', '--output=text', '--verbose'], true);
      if (outcome.code !== 0 && (CONNECT_ERRORS.has(outcome.code ?? -1) || UNREACHABLE.test(outcome.stderr))) {
        throw failure('verify', outcome, 'HostUnreachable');
      }
      const report = `${outcome.stdout}${outcome.stderr}`.trim();
      // verify exits 0 ("completed successfully") whatever it found: its verdict is the stanza's
      // status line (`status: ok` / `status: error`) of the text output.
      const statuses = [...report.matchAll(/^\s*status: (\S+)/gm)].map((match) => match[1]);
      return { ok: outcome.code === 0 && statuses.length > 0 && statuses.every((status) => status === 'ok'), report };
    },

    async backup({ type }) {
      if (!['full', 'diff', 'incr'].includes(type)) invalid(`invalid backup type ${JSON.stringify(type)}`);
      const { stdout } = await runCommand(`backup --type=${type}`, ['backup', `--type=${type}`], 'BackupFailed');
      const label = /new backup label = (\S+)/.exec(stdout)?.[1];
      const sets = (await info()).sets;
      const set = label ? sets.find((s) => s.label === label) : sets.at(-1);
      if (!set) throw pitrError('BackupFailed', `pgbackrest backup --type=${type} succeeded but info lists no set ${label ?? ''}`.trim());
      return set;
    },

    info,

    async expire({ sets, archiveFulls }) {
      for (const set of sets) {
        if (!/^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/.test(set)) invalid(`expire: ${JSON.stringify(set)} is not a backup set label`);
        await runCommand(`expire --set=${set}`, ['expire', `--set=${set}`], 'BackupFailed');
      }
      if (archiveFulls !== undefined) {
        if (!Number.isInteger(archiveFulls) || archiveFulls < 1) invalid(`expire: archiveFulls must be a whole number of at least 1, got ${archiveFulls}`);
        await runCommand('expire (archive)', ['expire', '--repo1-retention-archive-type=full', `--repo1-retention-archive=${archiveFulls}`], 'BackupFailed');
      }
    },

    async restore({ dataDir, target, set, archiveMode = 'off' }) {
      if (!isAbsolute(dataDir)) invalid(`restore dataDir must be absolute: ${dataDir}`);
      if (existsSync(dataDir) && readdirSync(dataDir).length > 0) invalid(`restore dataDir ${dataDir} is not empty`);
      let chosen = set;
      const args = ['restore', `--pg1-path=${dataDir}`, `--archive-mode=${archiveMode}`];
      if (target === 'latest') {
        args.push('--type=default');
      } else if (target === 'immediate') {
        args.push('--type=immediate', '--target-action=promote');
      } else {
        const targetText = formatTargetTime(target.time);
        const { sets } = await info();
        if (set !== undefined) {
          const named = sets.find((s) => s.label === set);
          if (!named) invalid(`no backup set ${set} in stanza ${opts.stanza.name}`);
          if (named.stopTime > target.time) invalid(`backup set ${set} stopped at ${named.stopTime.toISOString()}, after the target ${targetText}`);
        } else {
          const found = setForTime(sets, target.time);
          if (!found) {
            invalid(sets.length === 0
              ? `no backup set in stanza ${opts.stanza.name}: nothing to restore to ${targetText}`
              : `target ${targetText} is before the first backup: the earliest set (${sets[0].label}) stopped at ${sets[0].stopTime.toISOString()}`);
          }
          chosen = found.label;
        }
        args.push('--type=time', `--target=${targetText}`, '--target-action=promote');
      }
      if (chosen !== undefined) args.push(`--set=${chosen}`);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      if (opts.osUser) chownSync(dataDir, opts.osUser.uid, opts.osUser.gid);
      await runCommand('restore', args, 'RestoreFailed');
      return { set: chosen };
    },
  };
}
