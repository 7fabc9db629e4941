/**
 * The engine contract: what differs between the kinds of database Lifeboat backs up, and
 * nothing else. The states, the CLI commands, the restore, the drill, status and the runbook
 * ask the source's engine (`engineOf(source.engine)`, lib/engines/registry.ts); they never
 * branch on an engine's name. Registering an engine is one line in the registry.
 *
 * What lives where (docs/architecture.md, "The engine contract"):
 * - lib/engines: the facts and the SQL of each engine (this contract), with its verify
 *   (lib/verify) and its restore (lib/restore), read by the CLI, the verifier, the restore, the
 *   drill, the runbook and the constructs: code that runs in Lambda, in the CLI and in the
 *   drill task, and must not pull in the dump clients;
 * - worker/engines: the dump itself (preflight, the client processes, row counts), which runs
 *   in the worker image only, behind `DumpEngine` (worker/engines/types.ts).
 */
import type { EngineDrill } from './drill-contract';
import type { EngineRestore } from './restore-contract';
import type { EngineRunbook } from './runbook-contract';
import type { EngineVerify } from './verify-contract';

/** How an engine's SQL quotes, and where a query can run on a server that holds nothing yet. */
export interface SqlDialect {
  /** An identifier: `"name"` for PostgreSQL, `` `name` `` for MySQL/MariaDB. */
  quoteName(name: string): string;
  /** A string literal the server reads back as `value` (MySQL/MariaDB escape backslashes too). */
  literal(value: string): string;
  /** A query whose one value is the server's version string. */
  readonly versionQuery: string;
  /** The database every server has, for queries before a restore. */
  readonly adminDatabase: string;
  /** The FROM of one table's row count as the dump counted it (PostgreSQL: `ONLY`, no child tables). */
  countFrom(schema: string, table: string): string;
}

/** The tools of a MySQL-family engine's point-in-time recovery (each reads only its own server's logs). */
export interface BinlogTools {
  /** `mariadb-binlog` (MariaDB) or `mysqlbinlog` (MySQL): archives over the replication protocol and replays. */
  readonly binlogClient: string;
  /** `mariadb-backup` (MariaDB) or `xtrabackup` (MySQL): physical full and incremental backups on the host. */
  readonly physicalTool: string;
  /** `mbstream` (MariaDB) or `xbstream` (MySQL): unpacks the physical backup's `--stream=xbstream` output. */
  readonly streamTool: string;
}

export interface DatabaseEngine {
  /** The config's and the manifest's name of the engine (`postgres`, `mysql`, `mariadb`). */
  readonly name: string;
  /** For people: PostgreSQL, MySQL, MariaDB. */
  readonly label: string;
  /** The scheme of its URLs on the command line (`postgres://…`). */
  readonly urlScheme: string;
  /** Other schemes a URL may use for it (`postgresql`). */
  readonly urlAliases: readonly string[];
  readonly defaultPort: number;
  /** The user a URL without one connects as. */
  readonly defaultUser: string;
  /** The stock clients' password variable (PGPASSWORD, MYSQL_PWD), read after LIFEBOAT_DB_PASSWORD. */
  readonly passwordEnv: string;
  /** The stock SQL client a person runs (psql, mariadb, mysql), in the runbook and the restore. */
  readonly sqlClients: readonly string[];
  /** Whether a run also holds the server's roles (`globals.sql`), restored first with `--globals`. */
  readonly hasGlobals: boolean;
  /** Whether one database of a run may be restored under another name (`--target-url …/name`). */
  readonly restoresUnderAnotherName: boolean;
  /** Whether a dump must never be restored into an older major than its source's (a drill refuses). */
  readonly majorsOrdered: boolean;
  /**
   * The engine Lifeboat runs for method 'pitr' (point-in-time recovery on a self-managed server),
   * for people: `pgBackRest`. Absent: the engine has no 'pitr' method yet.
   */
  readonly pitr?: string;
  /**
   * Where its point-in-time recovery is configured and run: `pgbackrest` (the source's `pitr`
   * block, lib/pitr) or `binlog` (the source's optional `binlog` block, lib/binlog: binary logs
   * archived over the replication protocol, physical backups on the host). Set with `pitr`.
   */
  readonly pitrKind?: 'pgbackrest' | 'binlog';
  /** The engine's own binary-log tools (method 'pitr' of a `binlog` engine). */
  readonly binlogTools?: BinlogTools;
  /** Which restore target engines can take this engine's artifacts. */
  restoresInto(target: string): boolean;
  readonly sql: SqlDialect;
  /**
   * The names of its backup's errors (worker/engines/types.ts, EngineErrorName) that another
   * attempt may cure, a minute later: the Dump state retries them. Every other error of its
   * backup fails the run at once, named as it was raised.
   */
  readonly retryableErrors: readonly string[];
  /** What reading every byte of its artifacts means: the checks the verifier feeds. */
  readonly verify: EngineVerify;
  /** How a run is restored into a server of this engine: the clients, the inspection, the write. */
  readonly restore: EngineRestore;
  /** What a drill reads from the restored server to compare it with the manifest. */
  readonly drill: EngineDrill;
  /** What the runbook prints for it: the stock-tool commands. */
  readonly runbook: EngineRunbook;
}
