/**
 * What the PostgreSQL backup reads, as privileges: the SQL `lifeboat grants` prints for the
 * backup user, and the preflight's check that names what that user cannot read before a byte
 * is dumped.
 *
 * What is read (worker/engines/postgres.ts): `pg_dump --format=custom` of each database —
 * every table's rows (LOCK TABLE … IN ACCESS SHARE MODE, then COPY), every sequence's state
 * (SELECT last_value), every large object (lo_open) — and `pg_dumpall --globals-only
 * --no-role-passwords`, which reads pg_roles, pg_auth_members and pg_tablespace (catalogs every
 * role may read; without --no-role-passwords it would read pg_authid, which only a superuser
 * may, and which RDS and Aurora let no one read). Each of these fails mid-dump without its
 * privilege; the preflight asks for them first.
 *
 * Facts the SQL relies on (PostgreSQL documentation, "Predefined Roles"; release notes 14 and
 * 19): `pg_read_all_data` (14+) gives SELECT on every table, view and sequence and USAGE on
 * every schema, in every database, including those created later; it does not bypass
 * row-level security, and covers large objects only from 19 on.
 */
import type { Client } from 'pg';
import { tableMatcher } from './common';
import { countedNames, NAMES_SHOWN, type DbPlatform } from './privileges';
import { EngineError } from './types';

/** The first PostgreSQL major with pg_read_all_data. */
export const PG_READ_ALL_DATA_SINCE = 14;
/** The first major whose pg_read_all_data covers large objects. */
export const PG_READ_ALL_DATA_LARGE_OBJECTS_SINCE = 19;
/** The first major with ALTER DEFAULT PRIVILEGES … ON LARGE OBJECTS. */
export const PG_DEFAULT_PRIVILEGES_LARGE_OBJECTS_SINCE = 18;

export interface PgGrantsInput {
  readonly source: string;
  /** The source's connection.username: the backup user. */
  readonly username: string;
  readonly databases: readonly string[];
  /** Where the password is; the SQL reads it from there, it never holds it. */
  readonly passwordSecretArn: string;
  /** @default - 14 or later (pg_read_all_data) */
  readonly serverMajor?: number;
  readonly platform: DbPlatform;
}

/** `name` as a PostgreSQL identifier: bare when it is lower-case and plain, else double-quoted. */
export function pgIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/** A PostgreSQL string literal. */
function pgLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** A value for a shell command line in single quotes. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** The psql variable the password is read into; the login-role statement refers to it, never to a value. */
export const PG_PASSWORD_VARIABLE = 'lifeboat_password';

/**
 * The least-privilege SQL for a PostgreSQL source's backup user, as a psql script: the login
 * role (its password read from Secrets Manager into a psql variable, never written here), then
 * what pg_dump and pg_dumpall read, per database. Comments say why each statement is needed.
 */
export function postgresGrantsSql(input: PgGrantsInput): string {
  const user = pgIdent(input.username);
  const userLiteral = pgLiteral(input.username);
  const major = input.serverMajor;
  const readAllData = major === undefined || major >= PG_READ_ALL_DATA_SINCE;
  const largeObjectsCovered = major !== undefined && major >= PG_READ_ALL_DATA_LARGE_OBJECTS_SINCE;
  const rds = input.platform === 'rds';
  const versionText = major === undefined ? `PostgreSQL ${PG_READ_ALL_DATA_SINCE} or later` : `PostgreSQL ${major}`;
  const where = rds ? 'on Amazon RDS / Aurora' : 'self-managed';
  const admin = rds ? 'the master user (a member of rds_superuser, which the backup user does not need)' : 'a superuser';
  const lines: string[] = [];
  const push = (...text: string[]) => lines.push(...text);

  push(
    `-- Lifeboat: least-privilege grants for the backup user of source "${input.source}"`,
    `-- (postgres ${where}, ${versionText}; databases: ${input.databases.join(', ')}).`,
    '--',
    '-- The backup runs pg_dump --format=custom on each database (every table, sequence and large object)',
    '-- and pg_dumpall --globals-only --no-role-passwords (roles and tablespaces). It writes nothing: no',
    '-- INSERT, UPDATE, DELETE or DDL, no superuser, no REPLICATION.',
    '--',
    `-- Run it with psql as ${admin}:`,
    `--   psql -v ON_ERROR_STOP=1 -h HOST -U ADMIN -d ${pgIdent(input.databases[0] ?? 'postgres')} -f grants.sql`,
  );
  if (major === undefined) push(`-- For PostgreSQL ${PG_READ_ALL_DATA_SINCE - 1} or earlier (no pg_read_all_data): lifeboat grants ${input.source} --server-version ${PG_READ_ALL_DATA_SINCE - 1}`);
  push('');

  push(
    '-- 1. The login role. Its password is the SecretString of the secret connection.passwordSecretArn names,',
    `--    ${input.passwordSecretArn}`,
    '--    (the dump task receives it as LIFEBOAT_DB_PASSWORD).',
    `--    psql reads it into :${PG_PASSWORD_VARIABLE} with the AWS CLI (secretsmanager:GetSecretValue on that secret),`,
    '--    so it is in no file, command line or shell history. Without the AWS CLI here, set the variable',
    `--    another way (\\prompt ${PG_PASSWORD_VARIABLE}); never write the password into this file.`,
    "--    CREATE ROLE sends the password to the server: if it logs DDL (log_statement = 'ddl' or 'all'),",
    `--    create the role without PASSWORD and set it with psql's \\password ${user}, which sends only a hash.`,
    '--    If the role exists, skip CREATE ROLE (ALTER ROLE … PASSWORD sets a new password).',
    `\\set ${PG_PASSWORD_VARIABLE} \`aws secretsmanager get-secret-value --secret-id ${shellQuote(input.passwordSecretArn)} --query SecretString --output text\``,
    `CREATE ROLE ${user} LOGIN PASSWORD :'${PG_PASSWORD_VARIABLE}';`,
    `\\unset ${PG_PASSWORD_VARIABLE}`,
    '',
  );

  push(
    '-- 2. CONNECT to each database the backup dumps (pg_dumpall connects to the first one).',
    ...input.databases.map((database) => `GRANT CONNECT ON DATABASE ${pgIdent(database)} TO ${user};`),
    '',
  );

  if (readAllData) {
    push(
      '-- 3. SELECT on every table and sequence, and USAGE on every schema, in every database, including the',
      '--    ones created later (pg_read_all_data; it grants no writes).',
      `GRANT pg_read_all_data TO ${user};`,
      '',
    );
  } else {
    push(
      '-- 3. In each database: USAGE on every schema, and SELECT on every table and sequence in it (LOCK TABLE',
      '--    and COPY need SELECT; SELECT last_value needs it on sequences). ALTER DEFAULT PRIVILEGES does the same',
      '--    for tables and sequences that the roles owning objects there create later. A schema created later',
      `--    needs this block again: the preflight names it. (PostgreSQL ${PG_READ_ALL_DATA_SINCE}+: GRANT pg_read_all_data instead.)`,
    );
    if (rds) push('--    ALTER DEFAULT PRIVILEGES FOR ROLE needs the master user to be a member of each owner role (GRANT owner TO master).');
    for (const database of input.databases) {
      push(
        `\\connect ${pgIdent(database)}`,
        'DO $$',
        'DECLARE',
        '  s record;',
        'BEGIN',
        "  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname !~ '^pg_' LOOP",
        `    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s.nspname, ${userLiteral});`,
        `    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', s.nspname, ${userLiteral});`,
        `    EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', s.nspname, ${userLiteral});`,
        '  END LOOP;',
        '  FOR s IN',
        '    SELECT n.nspname, r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner',
        "     WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND r.rolname !~ '^pg_'",
        '    UNION',
        '    SELECT n.nspname, r.rolname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner',
        "     WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND r.rolname !~ '^pg_'",
        '  LOOP',
        `    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I', s.rolname, s.nspname, ${userLiteral});`,
        `    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON SEQUENCES TO %I', s.rolname, s.nspname, ${userLiteral});`,
        '  END LOOP;',
        'END $$;',
      );
    }
    push('');
  }

  if (!largeObjectsCovered) {
    push(
      `-- 4. Large objects: pg_dump reads every one (lo_open needs SELECT on it). pg_read_all_data covers them only from`,
      `--    PostgreSQL ${PG_READ_ALL_DATA_LARGE_OBJECTS_SINCE} on, so each database's existing ones are granted here; one created later needs its own`,
      '--    GRANT (the preflight names any the backup user cannot read). GRANT on a large object must be run by its',
      `--    owner${rds ? ' or a member of the owner role' : ', a member of it, or a superuser'}. A database without large objects does nothing here.`,
    );
    if (major === undefined || major >= PG_DEFAULT_PRIVILEGES_LARGE_OBJECTS_SINCE) {
      push(
        `--    PostgreSQL ${PG_DEFAULT_PRIVILEGES_LARGE_OBJECTS_SINCE}: the role that creates them can cover later ones too:`,
        `--      ALTER DEFAULT PRIVILEGES FOR ROLE app_role GRANT SELECT ON LARGE OBJECTS TO ${user};`,
      );
    }
    for (const database of input.databases) {
      push(
        `\\connect ${pgIdent(database)}`,
        'DO $$',
        'DECLARE',
        '  lo oid;',
        'BEGIN',
        '  FOR lo IN SELECT oid FROM pg_largeobject_metadata LOOP',
        `    EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO %I', lo, ${userLiteral});`,
        '  END LOOP;',
        'END $$;',
      );
    }
    push('');
  }

  push(
    '-- Row-level security: pg_dump refuses a table whose policies would hide rows from the backup user',
    '-- (pg_read_all_data does not bypass them). Only where tables use it (the preflight names them):',
    `--   ALTER ROLE ${user} BYPASSRLS;    -- needs a superuser`,
    '-- Roles and tablespaces (globals.sql): nothing to grant. pg_dumpall --no-role-passwords reads pg_roles,',
    `-- not pg_authid${rds ? ' (which RDS and Aurora let no one read)' : ''}; a restore sets passwords anew.`,
  );
  return `${lines.join('\n')}\n`;
}

/** What the backup user cannot read in one database. Names are SQL-quoted where they need it. */
export interface PgPrivilegeGaps {
  readonly database: string;
  /** `schema.table` of tables without SELECT. */
  readonly tables: readonly string[];
  /** `schema.sequence` of sequences without SELECT. */
  readonly sequences: readonly string[];
  /** Schemas without USAGE that hold tables or sequences the dump reads. */
  readonly schemas: readonly string[];
  /** `schema.table` of tables whose row-level security the user does not bypass. */
  readonly rowSecurity: readonly string[];
  /** OIDs of large objects without SELECT. */
  readonly largeObjects: readonly string[];
}

/**
 * Relations pg_dump reads (ordinary and partitioned tables, permanent and unlogged, and
 * sequences; not those of an extension) that the current user cannot. Identity sequences go
 * with their table (pg_dump leaves them out with it); the caller drops excluded tables.
 */
const RELATION_GAPS_SQL = `
  WITH me AS (SELECT rolsuper OR rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user)
  SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind,
         quote_ident(n.nspname) AS qschema, format('%I.%I', n.nspname, c.relname) AS qname,
         has_schema_privilege(n.oid, 'USAGE') AS usage,
         has_table_privilege(c.oid, 'SELECT') AS can_select,
         (c.relkind <> 'S' AND c.relrowsecurity AND NOT (SELECT bypass FROM me)
           AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))) AS rls,
         owner_n.nspname AS identity_of_schema, owner_c.relname AS identity_of_table
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i' AND c.relkind = 'S'
    LEFT JOIN pg_class owner_c ON owner_c.oid = d.refobjid
    LEFT JOIN pg_namespace owner_n ON owner_n.oid = owner_c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'S')
     AND c.relpersistence IN ('p', 'u')
     AND n.nspname <> 'information_schema'
     AND n.nspname !~ '^pg_'
     AND NOT EXISTS (SELECT 1 FROM pg_depend e
                      WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
   ORDER BY n.nspname, c.relname`;

/**
 * Large objects the current user cannot open for reading: neither owned by a role whose
 * privileges it has, nor granted SELECT (to it, a role it has, or PUBLIC). Works on every
 * version (has_largeobject_privilege arrived only in 17). None with lo_compat_privileges on,
 * and none from 19 on for a member of pg_read_all_data.
 */
const LARGE_OBJECT_GAPS_SQL = `
  SELECT m.oid::text AS oid
    FROM pg_largeobject_metadata m
   WHERE current_setting('lo_compat_privileges') = 'off'
     AND NOT pg_has_role(m.lomowner, 'USAGE')
     AND NOT EXISTS (SELECT 1 FROM aclexplode(coalesce(m.lomacl, acldefault('L', m.lomowner))) a
                      WHERE a.privilege_type = 'SELECT' AND (a.grantee = 0 OR pg_has_role(a.grantee, 'USAGE')))
     AND NOT (current_setting('server_version_num')::int >= ${PG_READ_ALL_DATA_LARGE_OBJECTS_SINCE * 10000}
              AND EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'pg_read_all_data' AND pg_has_role(r.oid, 'USAGE')))
   ORDER BY m.oid`;

/** Reads what the connected user (the backup user) cannot read of what pg_dump will read in this database. */
export async function findPgPrivilegeGaps(
  client: Client,
  database: string,
  excludeTables: readonly string[] = [],
): Promise<PgPrivilegeGaps> {
  const excluded = excludeTables.length > 0 ? tableMatcher(excludeTables, true) : () => false;
  const { rows } = await client.query<{
    schema: string; name: string; kind: 'r' | 'p' | 'S'; qschema: string; qname: string; usage: boolean; can_select: boolean; rls: boolean;
    identity_of_schema: string | null; identity_of_table: string | null;
  }>(RELATION_GAPS_SQL);
  const dumped = rows.filter((r) =>
    r.kind === 'S'
      ? !(r.identity_of_table !== null && excluded(r.identity_of_schema ?? '', r.identity_of_table))
      : !excluded(r.schema, r.name));
  const schemas = [...new Set(dumped.filter((r) => !r.usage).map((r) => r.qschema))];
  const largeObjects = (await client.query<{ oid: string }>(LARGE_OBJECT_GAPS_SQL)).rows.map((r) => r.oid);
  return {
    database,
    tables: dumped.filter((r) => r.kind !== 'S' && !r.can_select).map((r) => r.qname),
    sequences: dumped.filter((r) => r.kind === 'S' && !r.can_select).map((r) => r.qname),
    schemas,
    rowSecurity: dumped.filter((r) => r.rls && r.can_select).map((r) => r.qname),
    largeObjects,
  };
}

function hasGaps(gaps: PgPrivilegeGaps): boolean {
  return [gaps.tables, gaps.sequences, gaps.schemas, gaps.rowSecurity, gaps.largeObjects].some((list) => list.length > 0);
}

export interface PgPrivilegeContext {
  readonly username: string;
  /** For the pointer to `lifeboat grants SOURCE`. */
  readonly source?: string;
  readonly serverMajor: number;
}

/**
 * `InsufficientPrivileges` naming, per database, the first few tables, sequences, schemas and
 * large objects the user cannot read (with their counts) and the statements that fix them;
 * undefined when nothing is missing.
 */
export function pgPrivilegeError(all: readonly PgPrivilegeGaps[], context: PgPrivilegeContext): EngineError | undefined {
  const withGaps = all.filter(hasGaps);
  if (withGaps.length === 0) return undefined;
  const user = pgIdent(context.username);
  const readAllData = context.serverMajor >= PG_READ_ALL_DATA_SINCE;
  const parts = withGaps.map((gaps) => {
    const missing: string[] = [];
    if (gaps.tables.length > 0) missing.push(`no SELECT on ${countedNames(gaps.tables, 'table', 'tables')}`);
    if (gaps.sequences.length > 0) missing.push(`no SELECT on ${countedNames(gaps.sequences, 'sequence', 'sequences')}`);
    if (gaps.schemas.length > 0) missing.push(`no USAGE on ${countedNames(gaps.schemas, 'schema', 'schemas')}`);
    if (gaps.largeObjects.length > 0) missing.push(`no SELECT on ${countedNames(gaps.largeObjects, 'large object', 'large objects')}`);
    if (gaps.rowSecurity.length > 0) {
      missing.push(`row-level security it does not bypass on ${countedNames(gaps.rowSecurity, 'table', 'tables')}`);
    }
    const fixes: string[] = [];
    const relations = gaps.tables.length + gaps.sequences.length + gaps.schemas.length > 0;
    if (relations && readAllData) fixes.push(`GRANT pg_read_all_data TO ${user}`);
    if (relations && !readAllData) {
      const schemaOf = (qname: string) => qname.slice(0, splitAt(qname));
      const affected = [...new Set([...gaps.schemas, ...gaps.tables.map(schemaOf), ...gaps.sequences.map(schemaOf)])];
      for (const schema of affected) {
        if (gaps.schemas.includes(schema)) fixes.push(`GRANT USAGE ON SCHEMA ${schema} TO ${user}`);
        if (gaps.tables.some((t) => schemaOf(t) === schema)) fixes.push(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${user}`);
        if (gaps.sequences.some((t) => schemaOf(t) === schema)) fixes.push(`GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${user}`);
      }
    }
    if (gaps.largeObjects.length > 0) {
      const listed = gaps.largeObjects.slice(0, NAMES_SHOWN).join(', ');
      fixes.push(`GRANT SELECT ON LARGE OBJECT ${listed} TO ${user}${gaps.largeObjects.length > NAMES_SHOWN ? ' (and the others)' : ''}`);
    }
    if (gaps.rowSecurity.length > 0) fixes.push(`ALTER ROLE ${user} BYPASSRLS`);
    return `database "${gaps.database}": ${missing.join(', ')}; fix (connected to ${pgIdent(gaps.database)}): ${fixes.join('; ')}`;
  });
  return new EngineError(
    'InsufficientPrivileges',
    `user "${context.username}" cannot read all that pg_dump reads, so the dump would fail part-way; it was not started. ` +
      `${parts.join('. ')}. The complete least-privilege SQL: lifeboat grants ${context.source ?? 'SOURCE'}`,
  );
}

/** Index of the dot between schema and name in `format('%I.%I')` output (quoted parts may hold dots). */
function splitAt(qname: string): number {
  let quoted = false;
  for (let i = 0; i < qname.length; i++) {
    const ch = qname[i];
    if (ch === '"') quoted = !quoted;
    else if (ch === '.' && !quoted) return i;
  }
  return qname.length;
}
