/**
 * How an engine restores a verified run into a target (lib/restore/restore.ts). The restore's
 * order is the same for every engine and is not the engine's: find the clients, download every
 * artifact and compare it with the manifest, inspect every target database and refuse a
 * non-empty one (`TargetNotEmpty`) unless `clean` — all before the first write — then write,
 * each phase timed. The engine says how its clients are found, how a target database is
 * inspected and how an artifact is written into it.
 */
import type { Manifest, ManifestArtifact } from '../domain/manifest';
import type { TlsOptions } from '../domain/tls';

export interface RestoreTarget {
  /** The target server's engine (a registered engine's name). */
  readonly engine: string;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** Never logged, never in an argv or a message. */
  readonly password?: string;
  /**
   * TLS to the target (lib/domain/tls.ts), for every client of the restore: the driver's
   * inspection, pg_restore, psql, mysql/mariadb. A verify-full without `caFile` checks against
   * the host's default bundle. `lifeboat restore` always says (the target URL's sslmode); a
   * drill's throwaway server on loopback leaves it out.
   * @default - { mode: 'prefer' }
   */
  readonly tls?: TlsOptions;
}

/** A target database as the restore found it, before writing anything. */
export interface TargetState {
  readonly exists: boolean;
  /** Schema-qualified tables and views already in the database: a restore without `clean` refuses any. */
  readonly relations: readonly string[];
}

/** One artifact, downloaded and checked, and the target database it goes into. */
export interface PlannedRestore {
  readonly artifact: ManifestArtifact;
  /** The downloaded artifact (a seekable file: pg_restore --jobs needs one). */
  readonly file: string;
  readonly database: string;
  /** Whether the target database existed when it was inspected. */
  readonly exists: boolean;
}

export interface RestoreContext {
  readonly target: RestoreTarget;
  readonly manifest: Manifest;
  /** Parallel workers for an engine whose client restores in parallel (pg_restore --jobs). */
  readonly jobs: number;
  /** Replace what the target holds (only after the caller allowed a non-empty target). */
  readonly clean: boolean;
  /** Restore without owners and grants (PostgreSQL). */
  readonly noOwner: boolean;
  /** The run's globals (roles) are applied before the databases. */
  readonly globals: boolean;
  /** Redacted from every message and log line. */
  readonly secrets: readonly (string | undefined)[];
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** The restore's clients, found; what the restore asks of the target through them. */
export interface RestoreClients {
  /** Whether `database` exists on the target and what it already holds; `TargetUnreachable`, `TlsRequired`, `TlsVerifyFailed`. */
  inspect(database: string): Promise<TargetState>;
  /** Applies the run's globals file (only asked when `globals`, of an engine with globals). */
  applyGlobals?(file: string): Promise<void>;
  /**
   * Writes one artifact into its database (creating it, or dropping it first when `clean`),
   * reporting the artifact bytes it consumed; `RestoreFailed`, `Aborted` otherwise.
   */
  restore(item: PlannedRestore, progress: { add(bytes: number): void }): Promise<void>;
}

export interface EngineRestore {
  /** What writing an artifact does to tables already in its database, in TargetNotEmpty's message (`drop or collide with`, `drop`). */
  readonly replaces: string;
  /** Finds the clients the restore runs (`ClientNotFound`) before anything is downloaded. */
  clients(context: RestoreContext): RestoreClients;
}
