/**
 * Logical MySQL and MariaDB: one SQL dump per database (mysqldump / mariadb-dump), restored by
 * the stock client. Two registered engines, one module: they differ in their clients' names.
 */
import { sqlScriptRestore } from '../restore/mysql';
import { sqlScriptVerify } from '../verify/sql-script';
import type { BinlogTools, DatabaseEngine, SqlDialect } from './contract';
import type { TableName } from './drill-contract';
import { mysqlRunbook } from './mysql-runbook';

const quoteName = (name: string) => `\`${name.replaceAll('`', '``')}\``;

export const mysqlSql: SqlDialect = {
  quoteName,
  // Backslash escapes are on by default: both the quote and the backslash double.
  literal: (value) => `'${value.replaceAll("'", "''").replaceAll('\\', '\\\\')}'`,
  versionQuery: 'SELECT VERSION()',
  adminDatabase: 'mysql',
  countFrom: (schema, table) => `${quoteName(schema)}.${quoteName(table)}`,
};

/** The tables whose rows the dump holds: base tables and system-versioned ones, of the current database. */
const MYSQL_TABLES = `SELECT TABLE_SCHEMA AS schema_name, TABLE_NAME AS table_name
    FROM information_schema.TABLES
   WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`;

function mysqlFamily(name: 'mysql' | 'mariadb', label: string, sqlClients: readonly string[], binlogTools: BinlogTools): DatabaseEngine {
  return {
    name,
    label,
    urlScheme: name,
    urlAliases: [],
    defaultPort: 3306,
    defaultUser: 'root',
    passwordEnv: 'MYSQL_PWD',
    sqlClients,
    hasGlobals: false,
    restoresUnderAnotherName: false,
    // A MariaDB server restores MySQL dumps and the majors do not compare.
    majorsOrdered: false,
    pitr: 'binary-log archiving',
    pitrKind: 'binlog',
    binlogTools,
    restoresInto: (target: string) => target === 'mysql' || target === 'mariadb',
    sql: mysqlSql,
    // The source did not answer (restarting, failing over), or the dump client failed or was cut off.
    retryableErrors: ['SourceUnreachable', 'DumpFailed'],
    verify: sqlScriptVerify,
    restore: sqlScriptRestore(sqlClients),
    drill: {
      listTables: `SELECT COALESCE(JSON_ARRAYAGG(JSON_ARRAY(schema_name, table_name)), '[]') FROM (${MYSQL_TABLES}) t`,
      countRows: (tables: readonly TableName[]) =>
        `SELECT COALESCE(JSON_ARRAYAGG(JSON_ARRAY(i, n)), '[]') FROM (${
          tables.map((table, index) => `SELECT ${index} AS i, COUNT(*) AS n FROM ${mysqlSql.countFrom(table.schema, table.name)}`).join(' UNION ALL ')}) x`,
    },
    runbook: mysqlRunbook,
  };
}

export const mysql = mysqlFamily('mysql', 'MySQL', ['mysql', 'mariadb'], { binlogClient: 'mysqlbinlog', physicalTool: 'xtrabackup', streamTool: 'xbstream' });
export const mariadb = mysqlFamily('mariadb', 'MariaDB', ['mariadb', 'mysql'], { binlogClient: 'mariadb-binlog', physicalTool: 'mariadb-backup', streamTool: 'mbstream' });

/** The table listing as rows (schema_name, table_name), for the runbook's comparison. */
export const MYSQL_TABLES_SQL = MYSQL_TABLES;
