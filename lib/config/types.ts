/**
 * The resolved backup strategy: what the rest of Lifeboat consumes after the config
 * file has been validated and the tier defaults merged in. Durations are seconds,
 * sizes are bytes. Nothing here is a secret: passwords are referenced by ARN only.
 */

import type { ConfigTlsMode } from '../domain/tls';

export type { ConfigTlsMode };
import type { BinlogPlan } from '../binlog/plan';
import type { PitrPlan } from '../pitr/plan';

export type Engine = 'postgres' | 'mysql' | 'mariadb';
export type ObjectLockMode = 'GOVERNANCE' | 'COMPLIANCE';
/** Classes the offsite copy can be read from without a restore (no GLACIER, no DEEP_ARCHIVE). */
export type ReplicaStorageClass = 'STANDARD' | 'STANDARD_IA' | 'ONEZONE_IA' | 'INTELLIGENT_TIERING' | 'GLACIER_IR';

export interface Tier {
  readonly name: string;
  /** Recovery point objective: the most data, in seconds, the team accepts to lose. */
  readonly rpoSeconds: number;
  /** Recovery time objective: how long a restore may take, in seconds. */
  readonly rtoSeconds: number;
  /** Interval between scheduled backups, in seconds. */
  readonly scheduleSeconds: number;
  /** IANA timezone the schedule is evaluated in. */
  readonly timezone: string;
  /** How long committed runs are kept, in seconds (also the Object Lock retention). */
  readonly retentionSeconds: number;
  /** Interval between restore drills, in seconds. */
  readonly drillSeconds: number;
  /**
   * The point-in-time window an RDS/Aurora source's automated backups must keep, in whole days
   * (its BackupRetentionPeriod at least this): the tier's `pitrWindow`, by default its retention
   * capped at RDS's 35 days, rounded up to a day.
   */
  readonly pitrWindowDays: number;
  /** Whether Lifeboat may change an RDS/Aurora source's native backup settings (else it checks and alarms only). */
  readonly manageNativeBackups: boolean;
}

export interface SourceConnection {
  readonly host: string;
  readonly port: number;
  /** Databases to dump; at least one. */
  readonly databases: readonly string[];
  readonly username: string;
  /** Secrets Manager ARN of the password (never the password itself). */
  readonly passwordSecretArn: string;
  /**
   * TLS to the database (lib/domain/tls.ts): `verify-full` unless the config says otherwise;
   * `prefer` only when written.
   */
  readonly tls: ConfigTlsMode;
  /**
   * The CA bundle `verify-full` checks the server's certificate against: the config's
   * `tlsCa`, else the image's RDS bundle for an RDS endpoint, else the image's public CAs.
   * Undefined for `require` and `prefer`, which check no certificate.
   */
  readonly tlsCa?: TlsCa;
}

/** A PEM CA bundle: a file in the worker image, or a Secrets Manager secret holding the PEM. */
export type TlsCa = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'secret'; readonly secretArn: string };

export interface SourceNetwork {
  readonly vpcId: string;
  readonly subnetIds: readonly string[];
  readonly securityGroupIds: readonly string[];
}

export interface DumpOptions {
  /** pg_dump compression spec, e.g. "gzip:1" or "zstd:3"; undefined = worker default. */
  readonly compression?: string;
  /** Tables above this many bytes get flagged row-count estimates instead of exact counts. */
  readonly exactCountMaxBytes?: number;
  readonly excludeTables: readonly string[];
}

export type SourceMethod = 'logical' | 'pitr';

/** Point-in-time recovery of a PostgreSQL source with pgBackRest on its host (lib/pitr). */
export interface PitrSource {
  /** The SSM-managed host that runs PostgreSQL: by instance id (`i-…`, `mi-…`) or by tag. */
  readonly host: { readonly instanceId: string } | { readonly tag: { readonly key: string; readonly value: string } };
  readonly stanza: string;
  readonly dataDirectory: string;
  readonly osUser: string;
  /** Lifeboat writes `lifeboat.pitr_marker` every MARKER_INTERVAL and drills check it (the exact check). */
  readonly marker: boolean;
  /** The tier's backup types and archive_timeout (lib/pitr/plan.ts). */
  readonly plan: PitrPlan;
}

/**
 * Point-in-time recovery of a self-managed MySQL or MariaDB source (lib/binlog): its binary logs
 * archived under `binlog/<source>/` by a Fargate task on the plan's cadence, over the replication
 * protocol (the source's own connection); the bases are its logical dumps (which record their
 * binlog coordinates) and, with `physical`, mariadb-backup / xtrabackup fulls and incrementals
 * taken on the host through SSM (runs under `runs/<source>-pitr/`).
 */
export interface BinlogSource {
  /** The engine's tools (`DatabaseEngine.binlogTools`). */
  readonly binlogClient: string;
  readonly physicalTool: string;
  readonly streamTool: string;
  /** The tier's archiver cadence, alarm and physical backups (lib/binlog/plan.ts). */
  readonly plan: BinlogPlan;
  /** Physical backups on the host, through SSM. Absent: the logical dumps are the only bases. */
  readonly physical?: {
    readonly host: { readonly instanceId: string } | { readonly tag: { readonly key: string; readonly value: string } };
    /** The server's datadir on the host. */
    readonly dataDirectory: string;
    /** The OS user the backup tool runs as (it connects over the server's socket). */
    readonly osUser: string;
  };
}

/**
 * The engine's own point-in-time recovery of an RDS instance or an Aurora / Multi-AZ DB cluster,
 * governed by Lifeboat (lib/rds): checked, alarmed, copied offsite and drilled. Lifeboat's dumps
 * stay the portable, locked copy beyond the 35 days RDS keeps.
 */
export interface RdsNativeSource {
  /** An RDS DB instance, or a DB cluster (Aurora, or a Multi-AZ DB cluster). */
  readonly kind: 'instance' | 'cluster';
  /** The DBInstanceIdentifier or DBClusterIdentifier. */
  readonly identifier: string;
  /** Read off the RDS endpoint host name (true), or written in the config (`rds.instance` / `rds.cluster`). */
  readonly detected: boolean;
  /** The region the instance or cluster is in (the endpoint's, else the primary region). */
  readonly region: string;
  /** The tier's required window, in days (`Tier.pitrWindowDays`). */
  readonly requiredWindowDays: number;
  /** The tier's `manageNativeBackups`. */
  readonly manage: boolean;
  /** The throwaway instance of a PITR drill. */
  readonly drill: {
    /** The smallest class that fits the source; default: the source's own class, read at drill time, unless given here. */
    readonly instanceClass?: string;
    /** The DB subnet group to restore into; default: the source's own. */
    readonly subnetGroup?: string;
    /** Security groups of the restored instance; default: the source's `network.securityGroupIds`. */
    readonly securityGroupIds: readonly string[];
  };
}

export interface Source {
  readonly name: string;
  readonly engine: Engine;
  /** How it is protected: logical dumps, PITR, or both; at least one. */
  readonly methods: readonly SourceMethod[];
  /** Present when `methods` has 'pitr' and the engine's point-in-time recovery is pgBackRest (PostgreSQL). */
  readonly pitr?: PitrSource;
  /** Present when `methods` has 'pitr' and the engine archives binary logs (MySQL, MariaDB). */
  readonly binlog?: BinlogSource;
  readonly tier: Tier;
  /** An RDS/Aurora source whose native point-in-time recovery Lifeboat governs (lib/rds). */
  readonly rds?: RdsNativeSource;
  readonly connection: SourceConnection;
  readonly network: SourceNetwork;
  readonly dumpOptions: DumpOptions;
  /** Expected size of the database in bytes, if declared. */
  readonly sizeHintBytes?: number;
  /** Queries a restore drill runs on the restored database; each must return true. */
  readonly drillChecks: readonly DrillCheck[];
}

export interface DrillCheck {
  readonly name: string;
  /** One query returning a single boolean. */
  readonly sql: string;
  /** @default - the source's first database */
  readonly database?: string;
}

export interface OffsiteConfig {
  readonly region: string;
  readonly account?: string;
  readonly storageClass: ReplicaStorageClass;
}

export interface NotificationsConfig {
  readonly emails: readonly string[];
  readonly httpsEndpoints: readonly string[];
  readonly heartbeatUrls: readonly string[];
}

export interface LifeboatConfig {
  /** Prefix for stack names; default "Lifeboat". */
  readonly appName: string;
  readonly primary: { readonly region: string; readonly account?: string };
  readonly offsite: OffsiteConfig;
  readonly objectLock: {
    /** The primary bucket's mode (each object's, and the bucket's default retention). */
    readonly mode: ObjectLockMode;
    /** The offsite bucket's mode (its default retention; replicas keep their source's lock). */
    readonly offsiteMode: ObjectLockMode;
  };
  /** Besides the deployment roles, the one role that may reconfigure the backup buckets. */
  readonly breakGlassRoleArn?: string;
  /** CloudFormation execution roles that deploy the stacks; undefined: the CDK bootstrap's. */
  readonly deploymentRoleArns?: readonly string[];
  readonly tiers: Readonly<Record<string, Tier>>;
  readonly sources: readonly Source[];
  readonly notifications: NotificationsConfig;
}
