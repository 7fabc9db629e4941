/**
 * The runbook's MySQL and MariaDB parts: the stock client (`sqlClients[0]` of the engine: mysql
 * or mariadb) fed each SQL dump, decompressed by zstd or gzip. One implementation for both
 * engines: what differs comes from the DatabaseEngine passed in.
 */
import type { DatabaseEngine } from './contract';
import type { EngineRunbook } from './runbook-contract';
// A cycle (mysql.ts registers this runbook): MYSQL_TABLES_SQL is read when a query is built, never at load.
import { MYSQL_TABLES_SQL } from './mysql';

const client = (engine: DatabaseEngine) => engine.sqlClients[0] as string;
const CONNECT = '-h "$TARGET_HOST" -P "$TARGET_PORT" -u "$TARGET_USER"';

export const mysqlRunbook: EngineRunbook = {
  targetUserAlsoNeeds: '',
  passwordReaders: 'the mysql/mariadb client',
  toolPrerequisites: (engine, manifest) => {
    const sqlClient = client(engine);
    const compressions = [...new Set((manifest?.artifacts ?? []).map((artifact) => artifact.compression.split(':')[0]))];
    return [
      manifest
        ? `- The \`${sqlClient}\` client (the run was dumped from ${engine.name} ${manifest.server.version} by ${manifest.client.tool} ${manifest.client.version}), and a target server of ${engine.name} ${manifest.server.major} or newer: \`${sqlClient} --version\`.`
        : `- The \`${sqlClient}\` client and a target server of the source's ${engine.name} version or newer: \`${sqlClient} --version\`.`,
      ...(compressions.includes('zstd') ? ['- `zstd` (the artifacts are zstd-compressed SQL): `zstd --version`.'] : []),
      ...(compressions.includes('gzip') ? ['- `gzip` (the artifacts are gzip-compressed SQL).'] : []),
    ];
  },
  whoIsConnected: (engine, server) =>
    `Who is still connected (run it on the server you stop): \`${client(engine)} -h ${server.host} -P ${server.port} -e "SELECT user, host, db, command FROM information_schema.PROCESSLIST WHERE db IN (${server.databases.map((name) => engine.sql.literal(name)).join(', ')})"\``,
  lifeboatRestoreFlags: '',
  plannedArtifact: { suffix: '.sql.zst', compression: 'zstd:3' },
  stockRestore: (engine, _manifest, artifacts) => artifacts.map((artifact) => {
    const method = artifact.compression.split(':')[0];
    const file = artifact.file;
    const feed = method === 'zstd' ? `zstd -dc ${file} | ` : method === 'gzip' ? `gzip -dc ${file} | ` : '';
    return `${feed}${client(engine)} ${CONNECT}${feed ? '' : ` < ${file}`}   # creates database ${artifact.database} (the dump has CREATE DATABASE)`;
  }),
  checkSession: (engine, database) => `${client(engine)} ${CONNECT} --table ${database} <<'SQL'`,
  checkCommand: (engine, database, quotedSql) => `${client(engine)} ${CONNECT} ${database} -e ${quotedSql}`,
  countRows: 'COUNT(*)',
  countFrom: (engine, schema, table) => `${engine.sql.quoteName(schema)}.${engine.sql.quoteName(table)}`,
  tableListing: () => MYSQL_TABLES_SQL,
  emptyTableSet: 'SELECT CAST(NULL AS CHAR) AS schema_name, CAST(NULL AS CHAR) AS table_name FROM DUAL WHERE 1 = 0',
};
