/**
 * What a restore must give back, table by table: the row count and a digest of the rows in a
 * fixed order (their text sorted), so two databases compare equal only when every row is.
 */
import type { MariaDbServer } from './mariadb';
import type { PgServer } from './postgres';

/** Every table's own rows (FROM ONLY), `"<count> <md5 of the rows' text, sorted>"`, by schema-qualified name. */
export async function pgTableDigests(server: PgServer, database: string): Promise<Record<string, string>> {
  const tables = (await server.psql(`SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    ORDER BY 1`, database)).split('\n').filter(Boolean);
  const digests: Record<string, string> = {};
  for (const table of tables) {
    digests[table] = (await server.psql(
      `SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM ONLY ${table} t`, database)).trim();
  }
  return digests;
}

/**
 * Every base table of `databases`, `"<count> <sha256 of the rows, sorted>"`, by `db.table`. A row
 * is its columns' QUOTE()d values (NULL apart from 'NULL', bytes escaped) joined by 0x1f; the
 * rows are sorted in the server (GROUP_CONCAT … ORDER BY, with no length cap and no sort-key
 * prefix, which would leave rows equal in their first 1,024 bytes in any order).
 */
export async function mariaDbTableDigests(server: MariaDbServer, databases: readonly string[]): Promise<Record<string, string>> {
  const quote = (text: string) => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const id = (name: string) => `\`${name.replaceAll('`', '``')}\``;
  const session = 'SET SESSION group_concat_max_len = 18446744073709551615, max_sort_length = 8388608;';
  const columns = (await server.sql(`SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
    WHERE c.table_schema IN (${databases.map(quote).join(', ')}) ORDER BY c.table_schema, c.table_name, c.ordinal_position`)).split('\n').filter(Boolean);
  const tables = new Map<string, { schema: string; table: string; names: string[] }>();
  for (const line of columns) {
    const [schema, table, name] = line.split('\t');
    const entry = tables.get(`${schema}.${table}`) ?? { schema, table, names: [] };
    entry.names.push(name);
    tables.set(`${schema}.${table}`, entry);
  }
  const digests: Record<string, string> = {};
  for (const [key, { schema, table, names }] of tables) {
    const row = `CONCAT_WS(0x1f, ${names.map((name) => `QUOTE(${id(name)})`).join(', ')})`;
    digests[key] = (await server.sql(`${session}
      SELECT CONCAT(COUNT(*), ' ', COALESCE(SHA2(GROUP_CONCAT(${row} ORDER BY ${row} SEPARATOR '\\n'), 256), ''))
        FROM ${id(schema)}.${id(table)}`)).trim();
  }
  return digests;
}
