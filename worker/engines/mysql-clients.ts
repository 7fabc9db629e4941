/**
 * The MySQL/MariaDB dump clients: their versions (the server's too), which client a server
 * takes, the compression offered and the dump client's argv.
 */
import { mysqlTlsArgs } from '../../lib/domain/tls';
import { formatCompression, parseCompression, type Compression } from './common';
import { EngineError, type ArtifactInfo, type TlsOptions } from './types';

export interface MysqlVersion {
  readonly flavor: 'mysql' | 'mariadb';
  /** `10.11.19`, `8.0.36`, `8.0` (Aurora). */
  readonly version: string;
  readonly major: number;
  readonly minor: number;
}

function versionParts(version: string): { major: number; minor: number } {
  const [major, minor] = version.split('.').map(Number);
  return { major: major ?? 0, minor: minor ?? 0 };
}

/**
 * `mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)`,
 * `mariadb-dump from 11.4.2-MariaDB, client 10.19 for …`, `mysqldump  Ver 8.0.36 for Linux …`,
 * `mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)`. The version is the distribution's,
 * not the tool's own (10.19, 10.13).
 */
export function parseMysqlClientVersion(line: string): MysqlVersion & { tool: string } {
  const tool = /^(\S+)/.exec(line.trim())?.[1] ?? '';
  const version =
    /Distrib\s+(\d+\.\d+\.\d+)/.exec(line)?.[1] ?? /\bfrom\s+(\d+\.\d+\.\d+)/.exec(line)?.[1] ?? /\bVer\s+(\d+\.\d+\.\d+)/.exec(line)?.[1];
  if (!tool || !version) throw new Error(`cannot parse a MySQL/MariaDB client version from "${line}"`);
  return { tool: tool.replace(/^.*\//, ''), flavor: /mariadb/i.test(line) ? 'mariadb' : 'mysql', version, ...versionParts(version) };
}

/**
 * `@@version` (`10.11.6-MariaDB-log`, `5.5.5-10.11.6-MariaDB`, `8.0.36`, `8.0.mysql_aurora.3.05.2`)
 * and `@@version_comment` (`MariaDB Server`, `MySQL Community Server - GPL`, `Source distribution`).
 */
export function parseMysqlServerVersion(version: string, comment = ''): MysqlVersion {
  const flavor = /mariadb/i.test(`${version} ${comment}`) ? 'mariadb' : 'mysql';
  const stripped = version.trim().replace(/^5\.5\.5-(?=\d+\.\d+\.\d+-MariaDB)/i, '');
  const short = /^(\d+\.\d+(?:\.\d+)?)/.exec(stripped)?.[1];
  if (!short) throw new Error(`cannot parse a MySQL/MariaDB server version from "${version}"`);
  return { flavor, version: short, ...versionParts(short) };
}

export function older(a: MysqlVersion, b: MysqlVersion): boolean {
  return a.major < b.major || (a.major === b.major && a.minor < b.minor);
}

/** Client binaries to try, in order, for a server flavour. */
export function mysqlClientCandidates(server: 'mysql' | 'mariadb'): string[] {
  return server === 'mariadb' ? ['mariadb-dump', 'mysqldump'] : ['mysqldump', 'mariadb-dump'];
}

/** `zstd:3` by default; lz4 has no stock streaming decompressor on a database host. */
export function chooseMysqlCompression(requested?: string): Compression {
  const compression = parseCompression(requested ?? 'zstd:3');
  if (compression.method === 'lz4') {
    throw new EngineError('InvalidDumpOptions', `compression: ${requested} is not offered for MySQL/MariaDB (zstd, gzip, none)`);
  }
  return compression;
}

export function mysqlArtifact(compression: Compression): ArtifactInfo {
  const ext = compression.method === 'zstd' ? '.sql.zst' : compression.method === 'gzip' ? '.sql.gz' : '.sql';
  return { fileExtension: ext, format: 'sql', compression: formatCompression(compression) };
}

export interface MysqlDumpArgsInput {
  readonly client: { readonly flavor: 'mysql' | 'mariadb'; readonly major: number };
  readonly serverFlavor: 'mysql' | 'mariadb';
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly databases: readonly string[];
  /** @default - { mode: 'prefer' } */
  readonly tls?: TlsOptions;
  /** Exact [database, table] names. */
  readonly ignoreTables?: readonly (readonly [string, string])[];
  /**
   * Record the binary-log coordinates of the dump's snapshot (a point-in-time source's base):
   * MariaDB's client `--master-data=2 --gtid` (with --single-transaction it reads its snapshot's
   * binlog_snapshot_file/position: no global lock), MySQL's `--source-data=2` (8.0.26+,
   * `--master-data=2` before) with `--set-gtid-purged=COMMENTED`, which holds FLUSH TABLES WITH
   * READ LOCK for the moment the transaction starts (RELOAD; refused by the preflight without it).
   */
  readonly binlogCoordinates?: boolean;
}

/**
 * The dump client's argv (the password is in MYSQL_PWD). `--no-defaults` first so no option
 * file on the machine changes the dump; `--databases` so the artifact recreates the databases.
 */
export function mysqlDumpArgs(input: MysqlDumpArgsInput): string[] {
  const mysqlClient = input.client.flavor === 'mysql';
  const args = [
    '--no-defaults',
    '--protocol=TCP',
    `--host=${input.host}`,
    `--port=${input.port}`,
    `--user=${input.username}`,
    '--single-transaction',
    '--skip-lock-tables',
    '--quick',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    // Tablespace DDL needs PROCESS on MySQL 8 and is meaningless on RDS; tables restore without it.
    '--no-tablespaces',
    '--default-character-set=utf8mb4',
    '--max-allowed-packet=1G',
  ];
  // A logical backup restores into a fresh server with its own GTID history; a PITR base's
  // GTID position is recorded as a comment only.
  if (mysqlClient) args.push(input.binlogCoordinates && input.client.major >= 8 ? '--set-gtid-purged=COMMENTED' : '--set-gtid-purged=OFF');
  if (input.binlogCoordinates) {
    if (!mysqlClient) args.push('--master-data=2', '--gtid');
    // --source-data needs mysqldump 8.0.26+ (the image carries 8.4); older clients know only --master-data.
    else args.push(input.client.major >= 8 ? '--source-data=2' : '--master-data=2');
  }
  // MySQL 8's mysqldump queries column histograms, which MariaDB does not have.
  if (mysqlClient && input.client.major >= 8 && input.serverFlavor === 'mariadb') args.push('--column-statistics=0');
  args.push(...mysqlTlsArgs(input.client.flavor, input.tls ?? { mode: 'prefer' }));
  for (const [database, table] of input.ignoreTables ?? []) args.push(`--ignore-table=${database}.${table}`);
  args.push('--databases', ...input.databases);
  return args;
}
