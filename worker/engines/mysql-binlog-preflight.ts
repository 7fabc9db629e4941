/**
 * What the binary-log archiver checks on the server before it reads anything, each failure
 * named with the setting to change:
 * - `log_bin` on (`BinlogDisabled`);
 * - `binlog_format=ROW` (`BinlogFormatNotRow`): a statement-based log replays statements whose
 *   result depends on the server it runs on (NOW(), UUID(), RAND(), LIMIT without ORDER BY,
 *   triggers, non-deterministic functions), so a restore would not be the source's data;
 * - a binlog retention (`binlog_expire_logs_seconds`, or `expire_logs_days`) of 0 (never expire)
 *   or at least the plan's minimum, a few archiver intervals (`BinlogRetentionTooShort`);
 * - the privileges: `REPLICATION SLAVE` (MariaDB 10.5+: also `REPLICATION REPLICA`) to read the
 *   logs, and `REPLICATION CLIENT` or MariaDB's `BINLOG MONITOR` to list them — answered by the
 *   server itself (`SHOW BINARY LOGS`) and read from SHOW GRANTS (`InsufficientPrivileges`);
 * - the GTID mode, noted (MariaDB: `gtid_binlog_pos`; MySQL: `gtid_mode`).
 */
import { lifeboatError } from '../../lib/domain/errors';
import { connectMysql, query, showGrants, type MysqlConnection } from './mysql-connection';
import { parseMysqlServerVersion } from './mysql-clients';
import type { DumpTarget } from './types';

export interface BinlogServerFacts {
  readonly flavor: 'mysql' | 'mariadb';
  readonly version: string;
  readonly binlogFormat: string;
  /** Seconds the server keeps its binary logs; 0 = never expires them. */
  readonly retentionSeconds: number;
  /** MariaDB's gtid_binlog_pos, or MySQL's gtid_executed with gtid_mode ON; undefined without GTIDs. */
  readonly gtid?: string;
  /** `SHOW BINARY LOGS`, oldest first. */
  readonly files: readonly { readonly file: string; readonly bytes: number }[];
  readonly warnings: readonly string[];
}

async function variable(connection: MysqlConnection, name: string): Promise<string | undefined> {
  try {
    const [row] = await query<{ value: unknown }>(connection, `SELECT @@GLOBAL.${name} AS value`);
    return row?.value === null || row?.value === undefined ? undefined : String(row.value);
  } catch (error) {
    // ER_UNKNOWN_SYSTEM_VARIABLE: an older server, or the other flavour's name.
    if ((error as { errno?: number }).errno === 1193) return undefined;
    throw error;
  }
}

/** SHOW GRANTS lines that grant `privilege` (or ALL) on *.*. */
export function grantsGlobal(grants: readonly string[], privilege: string): boolean {
  return grants.some((line) => {
    const match = /^GRANT\s+(.+?)\s+ON\s+\*\.\*\s+TO\b/i.exec(line);
    if (!match) return false;
    const privileges = (match[1] as string).split(',').map((item) => item.trim().toUpperCase());
    return privileges.includes('ALL PRIVILEGES') || privileges.includes(privilege);
  });
}

/** The server's binlog retention in seconds (binlog_expire_logs_seconds first, then expire_logs_days). */
export function retentionOf(expireSeconds: string | undefined, expireDays: string | undefined): number {
  const seconds = Number(expireSeconds ?? 0);
  if (seconds > 0) return seconds;
  return Math.round(Number(expireDays ?? 0) * 86_400);
}

export async function binlogPreflight(target: DumpTarget, opts: { readonly source: string; readonly minServerRetentionSeconds: number }): Promise<BinlogServerFacts> {
  const { connection } = await connectMysql(target);
  try {
    const [versionRow] = await query<{ version: string; comment: string }>(connection, 'SELECT @@version AS version, @@version_comment AS comment');
    const server = parseMysqlServerVersion(versionRow?.version ?? '', versionRow?.comment ?? '');
    const where = `${opts.source} (${target.host}:${target.port})`;
    const logBin = await variable(connection, 'log_bin');
    if (logBin !== '1' && logBin?.toUpperCase() !== 'ON') {
      throw lifeboatError('BinlogDisabled', `${where}: log_bin is off, so the server writes no binary log to archive ` +
        '(valid: start the server with log_bin (and server_id) set; it needs a restart)');
    }
    const binlogFormat = (await variable(connection, 'binlog_format'))?.toUpperCase() ?? '';
    if (binlogFormat !== 'ROW') {
      throw lifeboatError('BinlogFormatNotRow', `${where}: binlog_format is ${binlogFormat || 'unknown'}; a ${binlogFormat || 'non-ROW'} binary log ` +
        'replays statements whose results depend on the server that runs them (NOW(), UUID(), RAND(), LIMIT without ORDER BY, triggers), ' +
        "so a restore would not hold the source's data (valid: binlog_format=ROW: SET GLOBAL binlog_format = 'ROW' and the same in the server's configuration)");
    }
    const retentionSeconds = retentionOf(await variable(connection, 'binlog_expire_logs_seconds'), await variable(connection, 'expire_logs_days'));
    if (retentionSeconds > 0 && retentionSeconds < opts.minServerRetentionSeconds) {
      throw lifeboatError('BinlogRetentionTooShort', `${where}: the server keeps its binary logs ${retentionSeconds}s, fewer than the ` +
        `${opts.minServerRetentionSeconds}s (four archiver intervals) that let a missed or retried run lose nothing ` +
        `(valid: SET GLOBAL binlog_expire_logs_seconds = ${opts.minServerRetentionSeconds} or more, or 0 to keep them)`);
    }
    let files: { file: string; bytes: number }[];
    try {
      const rows = await query<{ Log_name: string; File_size: string | number }>(connection, 'SHOW BINARY LOGS');
      files = rows.map((row) => ({ file: row.Log_name, bytes: Number(row.File_size) }));
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (errno === 1227 || errno === 1045) {
        const grant = server.flavor === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT';
        throw lifeboatError('InsufficientPrivileges', `${where}: ${target.username} may not list the binary logs (SHOW BINARY LOGS: ${(error as Error).message}) ` +
          `(valid: GRANT ${grant}, REPLICATION SLAVE ON *.* TO the archiver's user)`);
      }
      throw error;
    }
    const grants = await showGrants(connection, server.flavor);
    if (!grantsGlobal(grants, 'REPLICATION SLAVE') && !grantsGlobal(grants, 'REPLICATION REPLICA')) {
      throw lifeboatError('InsufficientPrivileges', `${where}: ${target.username} lacks REPLICATION SLAVE, which reading the binary logs ` +
        "over the replication protocol needs (valid: GRANT REPLICATION SLAVE ON *.* TO the archiver's user)");
    }
    const warnings: string[] = [];
    let gtid: string | undefined;
    if (server.flavor === 'mariadb') {
      gtid = (await variable(connection, 'gtid_binlog_pos')) || undefined;
    } else {
      const mode = (await variable(connection, 'gtid_mode'))?.toUpperCase();
      if (mode === 'ON') gtid = (await variable(connection, 'gtid_executed'))?.replace(/\s+/g, '') || undefined;
      else warnings.push(`gtid_mode is ${mode ?? 'unknown'}: restores replay by file and position`);
    }
    if (retentionSeconds === 0) warnings.push('the server never expires its binary logs: they grow until someone purges them (Lifeboat never does)');
    return { flavor: server.flavor, version: server.version, binlogFormat, retentionSeconds, ...(gtid ? { gtid } : {}), files, warnings };
  } finally {
    await connection.end().catch(() => undefined);
  }
}
