import { z } from 'zod';
import { parseDocument, serializeDocument } from './json-document';
import { isRunId } from './run-id';

/**
 * manifest.json: what a run dumped. Plain JSON, schema-versioned, written by the worker and
 * read (through this same schema) by the verifier, the CLI, restores and drills. A runbook
 * can read it without Lifeboat installed. It never holds a secret.
 */

export const MANIFEST_SCHEMA_VERSION = 1;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a lowercase hex SHA-256' });
const timestamp = z.iso.datetime();

export const artifactSchema = z.strictObject({
  /** The database this artifact restores. */
  database: z.string().min(1),
  key: z.string().min(1),
  bytes: z.number().int().nonnegative(),
  sha256,
  /**
   * `pg_dump-custom` or `sql`: the verifier reads it with the checks of the engine that reads
   * this format (lib/engines/registry.ts), and refuses a format no engine reads.
   */
  format: z.string().regex(/^[a-z][a-z0-9_-]*$/, { error: 'expected an artifact format such as pg_dump-custom or sql' }),
  /** `gzip:1`, `zstd:3`, `none`, … as passed to the dump tool or the stream compressor. */
  compression: z.string().min(1),
  /** How many parts the multipart upload had (diagnostics). */
  parts: z.number().int().positive(),
  /**
   * The S3 version of the object (versioned buckets): verify, restore and drills read exactly
   * this version, so a later write at the key (there can be none under the bucket policy) would
   * change nothing they read. CRR gives the replica the same version id.
   */
  versionId: z.string().min(1).optional(),
  /**
   * MySQL/MariaDB sources with method 'pitr': the binary-log coordinates of the dump's snapshot
   * (`--master-data=2 --gtid` / `--source-data=2`), where a replay of the archived binary logs
   * onto this database starts (lib/binlog).
   */
  binlog: z.strictObject({
    file: z.string().regex(/^[A-Za-z0-9._-]+\.\d{6,}$/, { error: 'expected a binary log file name such as binlog.000042' }),
    position: z.number().int().nonnegative(),
    /** The GTID position at the snapshot (MariaDB `0-1-42`, MySQL `uuid:1-42`), when the server has one. */
    gtid: z.string().optional(),
  }).optional(),
});

/** The Object Lock every object of the run carries; the run's JSON documents get the same. */
export const objectLockSchema = z.strictObject({
  mode: z.enum(['GOVERNANCE', 'COMPLIANCE']),
  retainUntil: z.iso.datetime(),
});

export const tableSchema = z.strictObject({
  database: z.string().min(1),
  schema: z.string(),
  name: z.string().min(1),
  rows: z.number().int().nonnegative(),
  /** false when the count is the planner's estimate (tables above exactCountMaxBytes). */
  exact: z.boolean(),
});

/**
 * A point-in-time recovery run (lib/pitr): one pgBackRest backup set in the repository under
 * `pitr/<source>/`, described here so that status, retention and restores read it like any
 * run. Its artifact is the set's `backup.manifest` (pgBackRest's list of every file of the set
 * with its checksum); the files and the WAL the set needs are pgBackRest's, verified by
 * `pgbackrest verify` and Lifeboat's continuity check, and confirmed offsite by listing.
 */
export const pitrSetSchema = z.strictObject({
  /** The repository's path in the bucket, no leading slash: `pitr/orders`. */
  repository: z.string().min(1),
  stanza: z.string().min(1),
  /** pgBackRest's label: `20261203-154410F`, `20261203-154410F_20261203-154420I`. */
  label: z.string().min(1),
  type: z.enum(['full', 'diff', 'incr']),
  /** The set this one is based on (diff, incr). */
  prior: z.string().min(1).optional(),
  /** Every set whose files this one references. */
  references: z.array(z.string().min(1)).optional(),
  startLsn: z.string().min(1),
  stopLsn: z.string().min(1),
  /** The set's own start and stop (the run's startedAt/finishedAt are the Lifeboat run's). */
  startTime: timestamp,
  stopTime: timestamp,
  /** The first and last WAL segment a restore of the set needs. */
  walStart: z.string().regex(/^[0-9A-F]{24}$/),
  walStop: z.string().regex(/^[0-9A-F]{24}$/),
  /** Bytes the set copied, and the same compressed in the repository. */
  deltaBytes: z.number().int().nonnegative(),
  repoBytes: z.number().int().nonnegative(),
  repoDeltaBytes: z.number().int().nonnegative(),
});

/**
 * A physical backup of a MySQL/MariaDB source (lib/binlog/physical.ts): `mariadb-backup` or
 * `xtrabackup` streamed from the host into the run (`backup.xbstream`, with the tool's
 * `xtrabackup_checkpoints` and `xtrabackup_info`). An incremental names its prior run; the
 * manifest's `dependsOn` lists the whole chain back to its full, so retention keeps it.
 */
const lsn = z.string().regex(/^\d+$/, { error: 'expected a log sequence number (decimal digits)' });
export const physicalBackupSchema = z.strictObject({
  /** `mariadb-backup` or `xtrabackup`, and its version as it wrote it (`10.11.19-MariaDB`). */
  tool: z.string().min(1),
  version: z.string().min(1),
  type: z.enum(['full', 'incr']),
  /** The backup's LSN range: an incremental's fromLsn is its prior's toLsn. */
  fromLsn: lsn,
  toLsn: lsn,
  lastLsn: lsn.optional(),
  /** The binary-log coordinates of the backup's consistent point: where a replay onto it starts. */
  binlog: z.strictObject({
    file: z.string().regex(/^[A-Za-z0-9._-]+\.\d{6,}$/, { error: 'expected a binary log file name such as binlog.000042' }),
    position: z.number().int().nonnegative(),
    gtid: z.string().optional(),
  }),
  /** The run this incremental is based on. */
  prior: z.string().refine(isRunId, { error: 'expected a run id such as 20261126T030000Z' }).optional(),
  /** The backup's own start and end, as the tool recorded them. */
  startTime: timestamp.optional(),
  endTime: timestamp.optional(),
});

export const manifestSchema = z.strictObject({
  schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
  lifeboatVersion: z.string().min(1),
  source: z.string().min(1),
  /** A registered engine's name (lib/engines/registry.ts): `postgres`, `mysql`, `mariadb`. */
  engine: z.string().regex(/^[a-z][a-z0-9-]*$/, { error: 'expected an engine name such as postgres, mysql or mariadb' }),
  tier: z.string().min(1),
  runId: z.string().refine(isRunId, { error: 'expected a run id such as 20261126T030000Z' }),
  startedAt: timestamp,
  finishedAt: timestamp,
  server: z.strictObject({ version: z.string().min(1), major: z.number().int().positive() }),
  client: z.strictObject({ tool: z.string().min(1), version: z.string().min(1), major: z.number().int().positive() }),
  databaseSizeBytes: z.number().int().nonnegative(),
  encoding: z.string().optional(),
  artifacts: z.array(artifactSchema).min(1),
  globals: z.strictObject({ key: z.string().min(1), bytes: z.number().int().nonnegative(), sha256, versionId: z.string().min(1).optional() }).optional(),
  tables: z.array(tableSchema),
  /**
   * Runs of the same source this run needs to be restored (an incremental's base, a
   * differential's full): the pruner keeps them while it keeps this run. Absent: the run
   * restores on its own, as every logical dump does.
   */
  dependsOn: z.array(z.string().refine(isRunId, { error: 'expected a run id such as 20261126T030000Z' })).min(1).optional(),
  /** How the row counts relate to the dump: see the engines' documentation. */
  rowCountConsistency: z.enum(['same-snapshot', 'separate-snapshot']),
  extensions: z.array(z.strictObject({ database: z.string().min(1), name: z.string().min(1), version: z.string() })),
  objectLock: objectLockSchema.optional(),
  /** Present for a point-in-time recovery run: the pgBackRest set it describes. */
  pitr: pitrSetSchema.optional(),
  /** Present for a physical backup run of a MySQL/MariaDB source: the tool's backup it describes. */
  physical: physicalBackupSchema.optional(),
});

export type PitrSetManifest = z.infer<typeof pitrSetSchema>;
export type PhysicalBackupManifest = z.infer<typeof physicalBackupSchema>;
export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestArtifact = z.infer<typeof artifactSchema>;
export type ManifestTable = z.infer<typeof tableSchema>;
export type ObjectLock = z.infer<typeof objectLockSchema>;

/** Parses manifest.json text; the error names the key and the first problems. */
export function parseManifest(text: string, key = 'manifest.json'): Manifest {
  return parseDocument(manifestSchema, text, key, 'manifest', 'InvalidManifest');
}

/** Serializes a manifest after validating it with the schema readers use. */
export function serializeManifest(manifest: Manifest): string {
  return serializeDocument(manifestSchema, manifest);
}
