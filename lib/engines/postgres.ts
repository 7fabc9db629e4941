/** Logical PostgreSQL: pg_dump's custom format per database, pg_dumpall's roles, pg_restore. */
import { postgresRestore } from '../restore/postgres';
import { postgresVerify } from '../verify/pg-archive';
import type { DatabaseEngine, SqlDialect } from './contract';
import type { TableName } from './drill-contract';
import { postgresRunbook } from './postgres-runbook';

const quoteName = (name: string) => `"${name.replaceAll('"', '""')}"`;

export const postgresSql: SqlDialect = {
  quoteName,
  // Standard-conforming strings: only the quote doubles.
  literal: (value) => `'${value.replaceAll("'", "''")}'`,
  versionQuery: 'SHOW server_version',
  adminDatabase: 'postgres',
  countFrom: (schema, table) => `ONLY ${quoteName(schema)}.${quoteName(table)}`,
};

/** The tables whose rows pg_dump holds: ordinary and partitioned, permanent or unlogged, no catalog, none an extension owns. */
const PG_TABLES = `SELECT n.nspname::text AS schema_name, c.relname::text AS table_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u')
     AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

export const postgres: DatabaseEngine = {
  name: 'postgres',
  label: 'PostgreSQL',
  urlScheme: 'postgres',
  urlAliases: ['postgresql'],
  defaultPort: 5432,
  defaultUser: 'postgres',
  passwordEnv: 'PGPASSWORD',
  sqlClients: ['psql'],
  hasGlobals: true,
  restoresUnderAnotherName: true,
  majorsOrdered: true,
  pitr: 'pgBackRest',
  pitrKind: 'pgbackrest',
  restoresInto: (target) => target === 'postgres',
  sql: postgresSql,
  // The source did not answer (restarting, failing over), or the dump client failed or was cut off.
  retryableErrors: ['SourceUnreachable', 'DumpFailed'],
  verify: postgresVerify,
  restore: postgresRestore,
  drill: {
    listTables: `SELECT coalesce(json_agg(json_build_array(schema_name, table_name)), '[]') FROM (${PG_TABLES}) t`,
    countRows: (tables: readonly TableName[]) =>
      `SELECT coalesce(json_agg(json_build_array(i, n)), '[]') FROM (${
        tables.map((table, index) => `SELECT ${index} AS i, count(*) AS n FROM ${postgresSql.countFrom(table.schema, table.name)}`).join(' UNION ALL ')}) x`,
    listExtensions: `SELECT coalesce(json_agg(extname), '[]') FROM pg_extension`,
  },
  runbook: postgresRunbook,
};

/** The table listing as rows (schema_name, table_name), for the runbook's comparison. */
export const POSTGRES_TABLES_SQL = PG_TABLES;
