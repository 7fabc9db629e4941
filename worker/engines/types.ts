/**
 * The contract every dump engine (PostgreSQL, MySQL/MariaDB) honours. The orchestrator calls
 * `preflight` → `startDump` → streams `stdout` to S3 while awaiting `completion` → builds the
 * manifest from the preflight, the artifact description and `tables`.
 *
 * Failures are errors whose `name` the state machine's Retry/Catch match (see
 * `EngineErrorName`). No message, stack or argv ever holds the password: it reaches child
 * processes only through their environment (PGPASSWORD, MYSQL_PWD).
 */
import type { BinlogCoordinates } from '../../lib/binlog/coordinates';
import type { Readable } from 'node:stream';

/** A registered engine's name (lib/engines/registry.ts). */
export type EngineName = string;

export type { TlsMode, TlsOptions } from '../../lib/domain/tls';
import type { TlsOptions } from '../../lib/domain/tls';

/** A session's TLS as the server reports it (pg_stat_ssl; MySQL/MariaDB Ssl_version, Ssl_cipher). */
export interface TlsSession {
  /** e.g. `TLSv1.3` */
  readonly protocol: string;
  /** e.g. `TLS_AES_256_GCM_SHA384` */
  readonly cipher: string;
}

/** Where the source is and who to connect as. Mirrors the config's `SourceConnection`, password resolved. */
export interface DumpTarget {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** Never in argv, messages or manifests: child processes get it through their environment. */
  readonly password?: string;
  /** The databases of the source; each is dumped into its own artifact. At least one. */
  readonly databases: readonly string[];
  /**
   * See lib/domain/tls.ts. A verify-full without `caFile` checks against the default bundle of
   * the host (defaultCaFile). Jobs, the CLI and the restore always say; only a caller of the
   * engine itself may leave it out.
   * @default - { mode: 'prefer' }
   */
  readonly tls?: TlsOptions;
  /** @default 10 */
  readonly connectTimeoutSeconds?: number;
}

/** Where the dump clients are found. */
export interface ClientOptions {
  /**
   * Directory holding the dump clients (pg_dump and pg_dumpall; mariadb-dump or mysqldump).
   * @default - looked up on PATH
   */
  readonly binDir?: string;
  /**
   * MySQL/MariaDB only: the dump client's name or path.
   * @default - mysqldump for a MySQL server and mariadb-dump for MariaDB, whichever exists, the other one otherwise
   */
  readonly dumpBinary?: string;
}

export interface ServerVersion {
  /** Short form used in messages and the manifest, e.g. `15.19`, `10.11.6`, `8.0.36`. */
  readonly version: string;
  readonly major: number;
  /** As the server reports it, e.g. `15.19 (Debian 15.19-0+deb12u1)`, `10.11.6-MariaDB-log`. */
  readonly versionString: string;
}

export interface ClientVersion {
  /** `pg_dump`, `mariadb-dump`, `mysqldump`. */
  readonly tool: string;
  /** What is spawned: an absolute path when found on PATH or in binDir. */
  readonly path: string;
  /** e.g. `15.19`, `10.11.19` (the MariaDB distribution, not the tool's own 10.19), `8.0.36`. */
  readonly version: string;
  readonly major: number;
  /** Which project built the client; MySQL and MariaDB dump clients take different flags. */
  readonly flavor: string;
  /** First line of `--version`. */
  readonly versionString: string;
}

export interface DatabaseInfo {
  readonly name: string;
  readonly sizeBytes: number;
  /** PostgreSQL server encoding of the database (UTF8); MySQL default character set (utf8mb4). */
  readonly encoding: string;
  /** MySQL default collation; PostgreSQL datcollate. */
  readonly collation: string;
}

export interface ExtensionInfo {
  readonly database: string;
  readonly name: string;
  readonly version: string;
}

export interface Preflight {
  readonly engine: EngineName;
  readonly server: ServerVersion;
  readonly client: ClientVersion;
  /** Sum over `databases`. */
  readonly databaseSizeBytes: number;
  /** Encoding of the first database (see `databases` for each one). */
  readonly encoding: string;
  readonly databases: readonly DatabaseInfo[];
  /** PostgreSQL extensions per database; empty for MySQL/MariaDB. */
  readonly extensions: readonly ExtensionInfo[];
  /** Whether the preflight connection negotiated TLS. */
  readonly tls: boolean;
  /** The preflight session's TLS as the server reports it; absent in plain text. */
  readonly tlsSession?: TlsSession;
  /** Things an operator should know but that do not stop the run (e.g. a client/server flavour mix). */
  readonly warnings: readonly string[];
}

export interface DumpOptions {
  /** The result of `preflight` for the same target: the client to run and the versions it was checked against. */
  readonly preflight: Preflight;
  /** Which of the target's databases this artifact holds. */
  readonly database: string;
  /**
   * `zstd:3`, `gzip:1`, `lz4` (PostgreSQL ≥ 16 clients), `none`; a method without a level takes its default.
   * @default - PostgreSQL: zstd:3 with a pg_dump ≥ 16, gzip:1 otherwise; MySQL/MariaDB: zstd:3 (in-process)
   */
  readonly compression?: string;
  /**
   * Tables whose main data is larger than this get the planner's estimate (`exact: false`)
   * instead of a `count(*)`.
   * @default 10 GiB
   */
  readonly exactCountMaxBytes?: number;
  /**
   * Tables left out of the dump (and of the counts): `schema.table` for PostgreSQL, `database.table`
   * for MySQL/MariaDB, or an unqualified `table` for any schema; `*` and `?` are wildcards;
   * PostgreSQL folds unquoted names to lower case and takes `"Quoted"` parts literally.
   * @default - none
   */
  readonly excludeTables?: readonly string[];
  /**
   * How long the dump waits for a table lock (e.g. behind a migration) before failing.
   * @default 300
   */
  readonly lockWaitTimeoutSeconds?: number;
  /**
   * MySQL/MariaDB only. `same-snapshot`: briefly hold FLUSH TABLES WITH READ LOCK (needs RELOAD
   * and PROCESS; not available on RDS/Aurora) so that the counting transaction and the dump's
   * transaction see the same data; falls back to `separate-snapshot` with a warning when the
   * lock cannot be had. `separate-snapshot`: count in a consistent snapshot started just before
   * the dump's own; no global lock.
   * @default 'separate-snapshot'
   */
  readonly rowCountConsistency?: RowCountConsistency;
  /** Called with operator-facing notes (fallbacks, slow steps). @default - ignored */
  readonly onWarning?: (message: string) => void;
  /**
   * MySQL/MariaDB: record the binary-log coordinates of the dump's snapshot (a point-in-time
   * source's base, `DumpProcess.binlogCoordinates`). @default false
   */
  readonly binlogCoordinates?: boolean;
}

/**
 * - `same-snapshot`: every exact count is the number of rows of that table in the artifact.
 * - `separate-snapshot`: exact counts come from a consistent snapshot taken a moment before the
 *   dump's; under concurrent writes they may differ from the artifact's rows.
 */
export type RowCountConsistency = 'same-snapshot' | 'separate-snapshot';

/** Shaped like the manifest's `tables[]` entry. */
export interface TableCount {
  readonly database: string;
  /** PostgreSQL schema; for MySQL/MariaDB the database again. */
  readonly schema: string;
  readonly name: string;
  /**
   * Rows stored in this very table: PostgreSQL `count(*) FROM ONLY`, so a partitioned (or
   * inheritance) parent counts only its own rows (0 for a partitioned table) and each partition
   * is listed with its own rows; the sum over all tables is the rows in the artifact.
   */
  readonly rows: number;
  /** false when `rows` is the planner's estimate (tables above exactCountMaxBytes). */
  readonly exact: boolean;
}

export interface ArtifactInfo {
  /** With the leading dot: `.pgdump`, `.sql.zst`, `.sql.gz`, `.sql`. */
  readonly fileExtension: string;
  /** The manifest's artifact format: the verifier reads it with the checks of the engine that reads it. */
  readonly format: string;
  /** `zstd:3`, `gzip:1`, `none`, … */
  readonly compression: string;
}

export interface DumpProcess {
  /** The artifact bytes. Read it to the end (back-pressure reaches the dump client); destroying it stops the dump. */
  readonly stdout: Readable;
  /**
   * Resolves once the client exited 0 and every byte was handed to `stdout`. Rejects with
   * `DumpFailed` (last stderr lines, password-free) otherwise, or with `SourceUnreachable` /
   * `AuthenticationFailed` when the engine's own connection fails before the client starts.
   * Only a resolved completion makes the artifact a backup.
   */
  readonly completion: Promise<void>;
  /** Row counts (see `rowCountConsistency`). Rejecting does not make `completion` reject. */
  readonly tables: Promise<TableCount[]>;
  /** Settles with `tables`. */
  readonly rowCountConsistency: Promise<RowCountConsistency>;
  /** Stops the dump (SIGTERM to the client); `completion` then rejects with `DumpFailed`. */
  kill(): void;
  readonly artifact: ArtifactInfo;
  /** With `DumpOptions.binlogCoordinates`: settles after `completion` with what the dump recorded (undefined: none found). */
  readonly binlogCoordinates?: Promise<BinlogCoordinates | undefined>;
}

/** What the preflight needs to know of the run beyond the target, to check what the dump will read. */
export interface PreflightOptions {
  /** The source's name, for the fix the messages point to (`lifeboat grants SOURCE`). @default - "SOURCE" */
  readonly source?: string;
  /** As `DumpOptions.excludeTables`: tables the dump leaves out need no privilege. @default - none */
  readonly excludeTables?: readonly string[];
}

export interface DumpEngine {
  preflight(target: DumpTarget, client?: ClientOptions, options?: PreflightOptions): Promise<Preflight>;
  startDump(target: DumpTarget, options: DumpOptions): DumpProcess;
  /**
   * The server's roles and tablespaces (`globals.sql`), dumped beside the databases, for an
   * engine whose databases do not hold them (PostgreSQL). Absent: the run has no globals.
   */
  dumpGlobals?(target: DumpTarget, options: ClientOptions & { readonly preflight?: Preflight }): { stdout: Readable; completion: Promise<void> };
}

/** What the state machine's Retry/Catch match on. */
export type EngineErrorName =
  /** The dump client is older than the server (pg_dump refuses newer servers). Not retryable. */
  | 'ClientTooOld'
  /** The dump client is not installed where it was looked for. Not retryable. */
  | 'ClientNotFound'
  /** Connection refused, timed out, host unknown. Retryable. */
  | 'SourceUnreachable'
  /**
   * The TLS mode (verify-full, require) needs TLS and the server offers none: nothing was sent
   * in plain text. Not retryable: the server's settings or the source's `connection.tls` must change.
   */
  | 'TlsRequired'
  /**
   * verify-full: the server's certificate does not chain to the CA bundle (unknown CA, expired),
   * or does not name the host connected to. Not retryable: a certificate or `connection.tlsCa`
   * must change.
   */
  | 'TlsVerifyFailed'
  /** Wrong password, unknown user, no pg_hba entry, missing password. Not retryable. */
  | 'AuthenticationFailed'
  /** A database to dump does not exist. Not retryable. */
  | 'DatabaseNotFound'
  /**
   * The user may connect but not read something the dump reads (a table, a schema, a large
   * object, SHOW VIEW, TRIGGER, EVENT, …): the preflight names it and the GRANT that fixes it.
   * Not retryable: it stays missing until someone grants it.
   */
  | 'InsufficientPrivileges'
  /** The dump client failed, was killed, or its output was cut off. Retryable. */
  | 'DumpFailed'
  /** The options cannot work (unknown compression, zstd with pg_dump 15, database not in the target). */
  | 'InvalidDumpOptions';

export class EngineError extends Error {
  override readonly name: EngineErrorName;

  constructor(name: EngineErrorName, message: string) {
    super(message);
    this.name = name;
    // The stack's first line was rendered with the generic name; keep the two in agreement.
    if (this.stack) this.stack = this.stack.replace(/^Error/, name);
  }
}

export const DEFAULT_EXACT_COUNT_MAX_BYTES = 10 * 1024 ** 3;
export const DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS = 300;
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;
