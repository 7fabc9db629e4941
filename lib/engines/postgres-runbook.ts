/** The runbook's PostgreSQL parts: psql, createdb and pg_restore of the custom-format archives, globals.sql first. */
import type { EngineRunbook } from './runbook-contract';
// A cycle (postgres.ts registers this runbook): POSTGRES_TABLES_SQL is read when a query is built, never at load.
import { POSTGRES_TABLES_SQL } from './postgres';

const CONNECT = '-h "$TARGET_HOST" -p "$TARGET_PORT" -U "$TARGET_USER"';

export const postgresRunbook: EngineRunbook = {
  targetUserAlsoNeeds: ' and roles (globals.sql)',
  passwordReaders: 'psql and pg_restore',
  toolPrerequisites: (_engine, manifest) => {
    const major = manifest ? Math.max(manifest.server.major, manifest.client.major) : undefined;
    return [
      manifest
        ? `- \`pg_restore\` and \`psql\` of PostgreSQL **${major} or newer** (the run was dumped from PostgreSQL ${manifest.server.version} by ${manifest.client.tool} ${manifest.client.version}; an older pg_restore cannot read the archive): \`pg_restore --version\`.`
        : '- `pg_restore` and `psql` at least as new as the source server\'s major version: `pg_restore --version`.',
      manifest
        ? `- A target server of PostgreSQL ${manifest.server.major} or newer (the source's major).`
        : '- A target server of the source\'s PostgreSQL major version or newer.',
    ];
  },
  whoIsConnected: (engine, server) =>
    `Who is still connected (run it on the server you stop): \`psql -h ${server.host} -p ${server.port} -d ${engine.sql.adminDatabase} -c "SELECT datname, usename, application_name, client_addr FROM pg_stat_activity WHERE datname IN (${server.databases.map((name) => engine.sql.literal(name)).join(', ')})"\``,
  lifeboatRestoreFlags: ' --globals --jobs 4',
  lifeboatRestoreNote: '`--globals` creates the source\'s roles first (globals.sql, no passwords), so the restored objects keep their owners; `--no-owner` instead restores without owners and grants. `--jobs`: one per CPU of the machine running the restore.',
  plannedArtifact: { suffix: '.pgdump', compression: 'gzip' },
  stockRestore: (engine, manifest, artifacts) => [
    ...(manifest
      ? (manifest.globals ? [`psql -X ${CONNECT} -d ${engine.sql.adminDatabase} -f globals.sql   # the roles; "already exists" errors are harmless`] : [])
      : [`psql -X ${CONNECT} -d ${engine.sql.adminDatabase} -f globals.sql   # the roles`]),
    ...artifacts.flatMap((artifact) => [
      `createdb ${CONNECT} ${artifact.database}`,
      `pg_restore ${CONNECT} -d ${artifact.database} --jobs 4 --exit-on-error ${artifact.file}`,
    ]),
  ],
  checkSession: (_engine, database) => `psql -X ${CONNECT} -d ${database} <<'SQL'`,
  checkCommand: (_engine, database, quotedSql) => `psql -X ${CONNECT} -d ${database} -c ${quotedSql}`,
  countRows: 'count(*)',
  countFrom: (engine, schema, table) => `ONLY ${engine.sql.quoteName(schema)}.${engine.sql.quoteName(table)}`,
  tableListing: () => POSTGRES_TABLES_SQL,
  emptyTableSet: 'SELECT CAST(NULL AS text) AS schema_name, CAST(NULL AS text) AS table_name WHERE 1 = 0',
  extensionsQuery: (engine, extensions) => {
    const str = engine.sql.literal;
    const expected = extensions.map((extension, index) => (index === 0
      ? `SELECT ${str(extension.name)} AS name, ${str(extension.version)} AS expected_version`
      : `  UNION ALL SELECT ${str(extension.name)}, ${str(extension.version)}`)).join('\n');
    return [
      `SELECT e.name, e.expected_version, x.extversion AS found_version, CASE WHEN x.extname IS NULL THEN 'MISSING' ELSE 'ok' END AS verdict`,
      `  FROM (\n${expected}\n) e LEFT JOIN pg_extension x ON x.extname::text = e.name;`,
    ].join('\n');
  },
};
