/**
 * What the disaster-recovery runbook (cli/runbook.ts) prints for an engine: its stock-tool
 * commands, the SQL of its recovery checks, and the sentences that name its tools. The runbook
 * walks the same steps for every engine and asks these for the parts that differ; each method
 * receives the engine it prints for (`engineOf(source.engine)`), so that one implementation
 * serves engines that differ only in their facts (MySQL and MariaDB: `sqlClients[0]`,
 * `urlScheme`, `name`).
 *
 * Shell commands connect with `$TARGET_HOST`, `$TARGET_PORT` and `$TARGET_USER`, which the
 * runbook has the person set once; passwords come from `passwordEnv`, never the command line.
 */
import type { Manifest } from '../domain/manifest';
import type { DatabaseEngine } from './contract';

/** A server the runbook's commands connect to by its address (the source server, before the restore). */
export interface RunbookServer {
  readonly host: string;
  readonly port: number;
  readonly databases: readonly string[];
}

/** One artifact the stock-tool restore feeds to the engine's client: its database, file name in the current folder, and compression (`gzip:1`, `zstd:3`, `none`). */
export interface RunbookArtifact {
  readonly database: string;
  readonly file: string;
  readonly compression: string;
}

export interface EngineRunbook {
  /** What a target user needs beyond creating databases, appended to "a user that may create databases" (`' and roles (globals.sql)'`, or `''`). */
  readonly targetUserAlsoNeeds: string;
  /** Which stock tools read `passwordEnv`, after "`PGPASSWORD` for " (`psql and pg_restore`). */
  readonly passwordReaders: string;
  /** The "Tools and versions" bullets (Markdown list items) for restoring `manifest`, or for a source with no verified run. */
  toolPrerequisites(engine: DatabaseEngine, manifest: Manifest | undefined): string[];
  /** The one-line Markdown paragraph with the command that lists who is still connected to `server`'s databases. */
  whoIsConnected(engine: DatabaseEngine, server: RunbookServer): string;
  /** Flags `lifeboat restore` takes after `--target-url …` for this engine (`' --globals --jobs 4'`, or `''`). */
  readonly lifeboatRestoreFlags: string;
  /** A paragraph explaining `lifeboatRestoreFlags`, printed after the Lifeboat restore commands; absent when there are none. */
  readonly lifeboatRestoreNote?: string;
  /** The key suffix and compression of the artifact a run of this engine would hold for a database, when no manifest says (no verified run). */
  readonly plannedArtifact: { readonly suffix: string; readonly compression: string };
  /**
   * The stock-tool restore, as shell lines run in the folder holding the downloaded files: the
   * roles first where the engine has them (`manifest` undefined: no verified run, so whether the
   * run has them is unknown), then each artifact into its database.
   */
  stockRestore(engine: DatabaseEngine, manifest: Manifest | undefined, artifacts: readonly RunbookArtifact[]): string[];
  /** The shell line opening the client on `database` of the target to read SQL from a here-document (`<<'SQL'`), printing result rows as a table. */
  checkSession(engine: DatabaseEngine, database: string): string;
  /** The shell line running one query, already shell-quoted (`quotedSql`), in `database` of the target. */
  checkCommand(engine: DatabaseEngine, database: string, quotedSql: string): string;
  /** The aggregate the row-count queries count with (`count(*)`), as the dump counted. */
  readonly countRows: string;
  /** What the row-count query of one table selects `FROM` (PostgreSQL: `ONLY "schema"."table"`, no child tables). */
  countFrom(engine: DatabaseEngine, schema: string, table: string): string;
  /** The tables whose rows a dump holds, as rows (schema_name, table_name): the same listing as the drill's. */
  tableListing(): string;
  /** A query of the columns (schema_name, table_name) with no row, for a database whose manifest lists no table. */
  readonly emptyTableSet: string;
  /**
   * The query comparing the manifest's extensions of one database with those installed (one row
   * each: name, expected_version, found_version, verdict); absent where the engine has none.
   */
  extensionsQuery?(engine: DatabaseEngine, extensions: Manifest['extensions']): string;
}
