/**
 * Physical full and incremental backups of a MySQL/MariaDB source (issue 15): `mariadb-backup`
 * (MariaDB) or `xtrabackup` (MySQL) run on the source's host through SSM
 * (lib/constructs/binlog-physical-document.ts), streamed (`--stream=xbstream`) into the run's
 * prefix of the source's PITR catalog, `runs/<source>-pitr/<runId>/`:
 *
 *   backup.xbstream           the stream (multipart upload, completed only if the tool exited 0)
 *   xtrabackup_checkpoints    backup_type, from_lsn, to_lsn, last_lsn (from --extra-lsndir)
 *   xtrabackup_info           the tool, its version, the server's, the times and the binlog position
 *   manifest.json             written by the verifier only, once it found the three above
 *
 * This module is the pure part: the tools' argv (MariaDB and MySQL; the MySQL path is argv- and
 * parser-tested only, there is no Oracle server here), the parsers of what the tools write, the
 * manifest of a physical run and its chain, what the next backup of a source needs (its prior's
 * to_lsn), and the host's instance-profile policy.
 *
 * The commit protocol: the host writes the stream, then the two small files, and only when the
 * backup tool and the upload both succeeded; a failed or killed upload leaves no stream object
 * (the multipart upload is aborted, or never completed), and the verifier refuses a run without
 * its three objects. Nothing looks like a backup until the verifier wrote its manifest and
 * Commit its verdict.
 */
import { lifeboatError } from '../domain/errors';
import { pitrCatalogName, runPrefix } from '../domain/layout';
import type { Manifest, PhysicalBackupManifest } from '../domain/manifest';
import { BINLOG_FILE_NAME } from './documents';

export const PHYSICAL_STREAM_OBJECT = 'backup.xbstream';
export const PHYSICAL_CHECKPOINTS_OBJECT = 'xtrabackup_checkpoints';
export const PHYSICAL_INFO_OBJECT = 'xtrabackup_info';
/** The three objects the host writes, in the order it writes them. */
export const PHYSICAL_HOST_OBJECTS = [PHYSICAL_STREAM_OBJECT, PHYSICAL_CHECKPOINTS_OBJECT, PHYSICAL_INFO_OBJECT] as const;
/** The artifact formats of a physical run's manifest. */
export const PHYSICAL_FORMATS = {
  [PHYSICAL_STREAM_OBJECT]: 'xbstream',
  [PHYSICAL_CHECKPOINTS_OBJECT]: 'xtrabackup-checkpoints',
  [PHYSICAL_INFO_OBJECT]: 'xtrabackup-info',
} as const;

export type PhysicalTool = 'mariadb-backup' | 'xtrabackup';
export type PhysicalType = 'full' | 'incr';

/** The key of one of a physical run's objects. */
export function physicalObjectKey(source: string, runId: string, object: string): string {
  return `${runPrefix(pitrCatalogName(source), runId)}${object}`;
}

function toolOf(tool: string): PhysicalTool {
  if (tool === 'mariadb-backup' || tool === 'xtrabackup') return tool;
  throw lifeboatError('InvalidInput', `physical backup tool "${tool}" is not known (valid: mariadb-backup, xtrabackup)`);
}

const LSN = /^\d+$/;

function requireLsn(field: string, value: string): string {
  if (!LSN.test(value)) throw lifeboatError('InvalidInput', `${field}: "${value}" is not a log sequence number (valid: decimal digits, such as the prior run's to_lsn 44744)`);
  return value;
}

export interface PhysicalBackupArgs {
  readonly type: PhysicalType;
  /** The tool's scratch directory (with --stream, only its temporary files). */
  readonly targetDir: string;
  /** Where it writes a copy of xtrabackup_checkpoints (and xtrabackup_info) besides the stream. */
  readonly extraLsnDir: string;
  /** An incremental's base: the prior run's to_lsn. */
  readonly incrementalLsn?: string;
  /** @default - the tool's own default (my.cnf, then the compiled-in path) */
  readonly socket?: string;
  /** @default - the tool's own default */
  readonly dataDir?: string;
}

/**
 * `--backup --stream=xbstream` of both tools: the same options (xtrabackup 8.0 kept
 * xtrabackup's names, which mariadb-backup forked from). An incremental is `--incremental-lsn`
 * of the prior's to_lsn, so that the host needs no copy of the prior backup.
 */
export function physicalBackupArgv(tool: string, args: PhysicalBackupArgs): { command: PhysicalTool; argv: string[] } {
  const command = toolOf(tool);
  const argv = ['--backup', '--stream=xbstream', `--target-dir=${args.targetDir}`, `--extra-lsndir=${args.extraLsnDir}`];
  if (args.dataDir) argv.push(`--datadir=${args.dataDir}`);
  if (args.socket) argv.push(`--socket=${args.socket}`);
  if (args.type === 'incr') {
    if (args.incrementalLsn === undefined) throw lifeboatError('InvalidInput', 'an incremental physical backup needs incrementalLsn (the prior run\'s to_lsn)');
    argv.push(`--incremental-lsn=${requireLsn('incrementalLsn', args.incrementalLsn)}`);
  } else if (args.incrementalLsn !== undefined) {
    throw lifeboatError('InvalidInput', `a full physical backup takes no incrementalLsn (given: ${args.incrementalLsn})`);
  }
  return { command, argv };
}

/** The stream tool's unpacking of one stream into `dir`: `mbstream -x -C dir` / `xbstream -x -C dir`, the stream on stdin. */
export function extractArgv(streamTool: string, dir: string): { command: 'mbstream' | 'xbstream'; argv: string[] } {
  if (streamTool !== 'mbstream' && streamTool !== 'xbstream') {
    throw lifeboatError('InvalidInput', `stream tool "${streamTool}" is not known (valid: mbstream, xbstream)`);
  }
  return { command: streamTool, argv: ['-x', '-C', dir] };
}

/**
 * The prepare steps of a chain (a full, then its incrementals in order), into `fullDir`.
 * mariadb-backup applies each step fully (it has no --apply-log-only since 10.2: an
 * incremental applies onto a fully prepared base); xtrabackup must skip the rollback phase on
 * every step but the last (`--apply-log-only`), or the next incremental no longer applies.
 */
export function prepareSteps(tool: string, fullDir: string, incrementalDirs: readonly string[]): { step: string; command: PhysicalTool; argv: string[] }[] {
  const command = toolOf(tool);
  const steps = [{ step: 'prepare full', dirs: [] as string[] }, ...incrementalDirs.map((dir, index) => ({ step: `prepare incremental ${index + 1}`, dirs: [dir] }))];
  return steps.map(({ step, dirs }, index) => {
    const last = index === steps.length - 1;
    const argv = ['--prepare', `--target-dir=${fullDir}`];
    if (command === 'xtrabackup' && !last) argv.push('--apply-log-only');
    if (dirs[0]) argv.push(`--incremental-dir=${dirs[0]}`);
    return { step, command, argv };
  });
}

/** `--copy-back` (copies, keeps the prepared dir) or `--move-back` of a prepared backup into an empty datadir. */
export function copyBackArgv(tool: string, preparedDir: string, dataDir: string, move = false): { command: PhysicalTool; argv: string[] } {
  return { command: toolOf(tool), argv: [move ? '--move-back' : '--copy-back', `--target-dir=${preparedDir}`, `--datadir=${dataDir}`] };
}

/** `key = value` lines (xtrabackup_checkpoints, xtrabackup_info), keys as written. */
function keyValues(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Za-z0-9_]+)\s*=\s?(.*?)\s*$/.exec(line);
    if (match) values.set(match[1] as string, match[2] as string);
  }
  return values;
}

export interface Checkpoints {
  /** `full-backuped`, `incremental`, `log-applied`, `full-prepared`. */
  readonly backupType: 'full-backuped' | 'incremental' | 'log-applied' | 'full-prepared';
  readonly fromLsn: string;
  readonly toLsn: string;
  readonly lastLsn: string;
}

const BACKUP_TYPES = ['full-backuped', 'incremental', 'log-applied', 'full-prepared'] as const;

/** Parses `xtrabackup_checkpoints` (both tools); the error names the file, the field and what was found. */
export function parseCheckpoints(text: string, key = PHYSICAL_CHECKPOINTS_OBJECT): Checkpoints {
  const values = keyValues(text);
  const problems: string[] = [];
  const backupType = values.get('backup_type');
  if (!backupType || !(BACKUP_TYPES as readonly string[]).includes(backupType)) {
    problems.push(`backup_type: ${backupType === undefined ? 'missing' : `"${backupType}"`} (valid: ${BACKUP_TYPES.join(', ')})`);
  }
  const lsn = (field: string) => {
    const value = values.get(field);
    if (value === undefined || !LSN.test(value)) problems.push(`${field}: ${value === undefined ? 'missing' : `"${value}"`} (valid: decimal digits)`);
    return value ?? '';
  };
  const fromLsn = lsn('from_lsn');
  const toLsn = lsn('to_lsn');
  const lastLsn = lsn('last_lsn');
  if (problems.length > 0) throw lifeboatError('ArchiveCorrupt', `${key} is not a backup's checkpoints file: ${problems.join('; ')}`);
  return { backupType: backupType as Checkpoints['backupType'], fromLsn, toLsn, lastLsn };
}

export interface BinlogCoordinates {
  readonly file: string;
  readonly position: number;
  readonly gtid?: string;
}

function coordinates(file: string, position: string, gtid: string | undefined, key: string): BinlogCoordinates {
  if (!BINLOG_FILE_NAME.test(file)) throw lifeboatError('ArchiveCorrupt', `${key}: binary log file "${file}" is not a file name (valid: such as binlog.000042)`);
  if (!/^\d+$/.test(position)) throw lifeboatError('ArchiveCorrupt', `${key}: binary log position "${position}" is not a number`);
  const set = gtid?.replace(/\s+/g, '');
  return { file, position: Number(position), ...(set ? { gtid: set } : {}) };
}

/**
 * Parses `mariadb_backup_binlog_info` / `xtrabackup_binlog_info` (in the stream): the file,
 * the position and, when the server has one, the GTID position, tab-separated. MySQL writes a
 * long GTID set over several lines (`uuid:1-5,\nuuid:1-3`): they are joined.
 */
export function parseBinlogInfo(text: string, key = 'xtrabackup_binlog_info'): BinlogCoordinates {
  const [first, ...rest] = text.trim().split('\n');
  const fields = (first ?? '').split('\t');
  if (fields.length < 2 || !fields[0]) throw lifeboatError('ArchiveCorrupt', `${key} holds no binary log coordinates (expected "<file>\\t<position>[\\t<gtid>]", found "${text.trim().slice(0, 120)}"): is log_bin on?`);
  const gtid = [fields[2] ?? '', ...rest].join('').trim();
  return coordinates(fields[0], fields[1] as string, gtid || undefined, key);
}

export interface BackupInfo {
  readonly toolName: string;
  readonly toolVersion: string;
  readonly serverVersion: string;
  /** The backup's own start and end (the host's clock, UTC on Lifeboat's hosts; `YYYY-MM-DD HH:MM:SS`). */
  readonly startTime?: Date;
  readonly endTime?: Date;
  readonly incremental: boolean;
  /** The binlog position at the backup's consistent point (absent: log_bin off). */
  readonly binlog?: BinlogCoordinates;
}

function infoTime(value: string | undefined): Date | undefined {
  if (!value || !/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(value)) return undefined;
  return new Date(`${value.replace(' ', 'T')}Z`);
}

/**
 * Parses `xtrabackup_info` (the --extra-lsndir copy of what both tools write into the stream):
 * `binlog_pos = filename 'binlog.000002', position '847', GTID of the last change '0-1-3'`.
 */
export function parseBackupInfo(text: string, key = PHYSICAL_INFO_OBJECT): BackupInfo {
  const values = keyValues(text);
  const toolName = values.get('tool_name');
  const toolVersion = values.get('tool_version');
  if (!toolName || !toolVersion) throw lifeboatError('ArchiveCorrupt', `${key} is not a backup's info file: ${!toolName ? 'tool_name' : 'tool_version'} is missing`);
  const position = values.get('binlog_pos');
  let binlog: BinlogCoordinates | undefined;
  if (position) {
    const match = /filename '([^']*)', position '([^']*)'(?:, GTID of the last change '([^']*)')?/.exec(position);
    if (!match) throw lifeboatError('ArchiveCorrupt', `${key}: binlog_pos "${position}" is not "filename '<file>', position '<n>'[, GTID of the last change '<gtid>']"`);
    binlog = coordinates(match[1] as string, match[2] as string, match[3], key);
  }
  const startTime = infoTime(values.get('start_time'));
  const endTime = infoTime(values.get('end_time'));
  return {
    toolName, toolVersion, serverVersion: values.get('server_version') ?? 'unknown',
    ...(startTime ? { startTime } : {}), ...(endTime ? { endTime } : {}),
    incremental: values.get('incremental') === 'Y',
    ...(binlog ? { binlog } : {}),
  };
}

/** `10.11.19-MariaDB-0+deb12u1-log` → 10; `8.0.36` → 8. */
export function majorOf(version: string): number {
  const major = Number.parseInt(version, 10);
  return Number.isInteger(major) && major > 0 ? major : 1;
}

/** A run of the catalog as far as the chain needs it. */
export interface PhysicalRunRef {
  readonly runId: string;
  readonly manifest?: Manifest;
  /** The verdict Commit wrote, if any. */
  readonly verdict?: 'ok' | 'failed';
}

/**
 * The chain that restores `runId`: the full it starts with, then each incremental up to it, from
 * the manifests' `prior`. Throws, naming the run whose prior is missing, unverified
 * or not contiguous (an incremental's from_lsn must be its prior's to_lsn): `RunNotVerified` for a
 * prior that is missing or unverified, `ArchiveCorrupt` for a chain whose LSNs do not meet.
 */
export function physicalChain(runs: readonly PhysicalRunRef[], runId: string, opts: { requireVerified?: boolean } = {}): PhysicalRunRef[] {
  const byId = new Map(runs.map((run) => [run.runId, run]));
  const chain: PhysicalRunRef[] = [];
  let id: string | undefined = runId;
  while (id !== undefined) {
    const run = byId.get(id);
    const physical = run?.manifest?.physical;
    const wanted = chain.length === 0 ? `run ${id}` : `run ${id}, the prior of ${chain[0]?.runId}`;
    if (!run || !physical) throw lifeboatError('RunNotVerified', `${wanted} is not a physical backup of this catalog (no manifest with a physical block)`);
    if (opts.requireVerified && run.verdict !== 'ok') throw lifeboatError('RunNotVerified', `${wanted} is not verified (verdict: ${run.verdict ?? 'none'}): the chain cannot be restored`);
    const next = chain[0]?.manifest?.physical;
    if (next && next.fromLsn !== physical.toLsn) {
      throw lifeboatError('ArchiveCorrupt', `run ${chain[0]?.runId} starts at LSN ${next.fromLsn}, but its prior ${id} ends at ${physical.toLsn}`);
    }
    if (chain.some((seen) => seen.runId === id)) throw lifeboatError('ArchiveCorrupt', `run ${id} is its own prior`);
    chain.unshift(run);
    id = physical.type === 'incr' ? physical.prior : undefined;
    if (physical.type === 'incr' && id === undefined) throw lifeboatError('ArchiveCorrupt', `incremental run ${run.runId} names no prior`);
  }
  return chain;
}

/**
 * What the next backup of `type` needs: for an incremental, the newest verified physical run
 * (its to_lsn is the incremental's base) — none makes the backup a full, as pgBackRest does
 * with an incremental that has nothing to build on.
 */
export function nextPhysicalBackup(runs: readonly PhysicalRunRef[], type: PhysicalType): { type: PhysicalType; prior?: { runId: string; toLsn: string } } {
  if (type === 'full') return { type };
  const newest = [...runs].sort((a, b) => b.runId.localeCompare(a.runId)).find((run) => run.verdict === 'ok' && run.manifest?.physical);
  if (!newest?.manifest?.physical) return { type: 'full' };
  return { type: 'incr', prior: { runId: newest.runId, toLsn: newest.manifest.physical.toLsn } };
}

/** The `physical` block and `dependsOn` of a run's manifest, from what the host wrote. */
export function physicalManifestBlock(input: {
  readonly type: PhysicalType;
  readonly checkpoints: Checkpoints;
  readonly info: BackupInfo;
  /** The prior's run and its manifest block (incrementals). */
  readonly prior?: { readonly runId: string; readonly physical: PhysicalBackupManifest; readonly dependsOn?: readonly string[] };
  readonly key: string;
}): { physical: PhysicalBackupManifest; dependsOn?: string[] } {
  const { checkpoints, info, prior } = input;
  const where = `s3 object ${input.key}`;
  if (input.type === 'full' && checkpoints.backupType !== 'full-backuped') {
    throw lifeboatError('ArchiveCorrupt', `${where}: a full backup's checkpoints say backup_type ${checkpoints.backupType} (expected full-backuped)`);
  }
  if (input.type === 'incr') {
    if (checkpoints.backupType !== 'incremental') throw lifeboatError('ArchiveCorrupt', `${where}: an incremental's checkpoints say backup_type ${checkpoints.backupType} (expected incremental)`);
    if (!prior) throw lifeboatError('ArchiveCorrupt', `${where}: an incremental needs its prior run`);
    if (checkpoints.fromLsn !== prior.physical.toLsn) {
      throw lifeboatError('ArchiveCorrupt', `${where}: the incremental starts at LSN ${checkpoints.fromLsn}, but its prior ${prior.runId} ends at ${prior.physical.toLsn}`);
    }
  }
  if (!info.binlog) throw lifeboatError('ArchiveCorrupt', `${where}: the backup recorded no binary log position (binlog_pos): log_bin must be on for point-in-time recovery`);
  const physical: PhysicalBackupManifest = {
    tool: info.toolName,
    version: info.toolVersion,
    type: input.type,
    fromLsn: checkpoints.fromLsn,
    toLsn: checkpoints.toLsn,
    lastLsn: checkpoints.lastLsn,
    binlog: info.binlog,
    ...(input.type === 'incr' && prior ? { prior: prior.runId } : {}),
    ...(info.startTime ? { startTime: info.startTime.toISOString() } : {}),
    ...(info.endTime ? { endTime: info.endTime.toISOString() } : {}),
  };
  const dependsOn = input.type === 'incr' && prior ? [...new Set([...(prior.dependsOn ?? []), prior.runId])] : undefined;
  return { physical, ...(dependsOn ? { dependsOn } : {}) };
}

export interface PhysicalHostTarget {
  readonly bucket: string;
  readonly region: string;
  readonly keyArn: string;
  /** @default 'aws' */
  readonly partition?: string;
}

/**
 * The host's instance-profile policy for physical backups of `source`: write the run objects
 * the host makes (never manifest.json, verification.json or offsite.json: the bucket policy
 * gives those to their steps' roles), finish or abort its own multipart uploads, and encrypt
 * with the backup key through S3. No read, no list, no delete.
 */
export function binlogPhysicalHostPolicy(source: string, target: PhysicalHostTarget): Record<string, unknown> {
  const partition = target.partition ?? 'aws';
  const bucketArn = `arn:${partition}:s3:::${target.bucket}`;
  const catalog = pitrCatalogName(source);
  const domain = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'WritePhysicalBackupObjects',
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
        Resource: PHYSICAL_HOST_OBJECTS.map((object) => `${bucketArn}/runs/${catalog}/*/${object}`),
      },
      {
        Sid: 'BackupKeyThroughS3',
        Effect: 'Allow',
        // GenerateDataKey for each part; Decrypt for CompleteMultipartUpload of an SSE-KMS upload.
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: target.keyArn,
        Condition: { StringEquals: { 'kms:ViaService': `s3.${target.region}.${domain}` } },
      },
    ],
  };
}
