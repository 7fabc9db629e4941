/**
 * What a restore drill reads from the restored server to judge it against the manifest
 * (lib/drill/run-drill.ts): each query returns one value, a JSON document, so that one reader
 * serves every engine's stock client.
 */
export interface TableName {
  readonly schema: string;
  readonly name: string;
}

export interface EngineDrill {
  /** `[[schema, table], …]`: the tables whose rows a dump holds, the same listing as the worker's. */
  readonly listTables: string;
  /** `[[index, rows], …]` for a batch of tables, counted as the worker counted them. */
  countRows(tables: readonly TableName[]): string;
  /** `["name", …]`: the extensions installed in the database; undefined where the engine has none. */
  readonly listExtensions?: string;
}
