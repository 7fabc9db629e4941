/**
 * An RDS instance's or cluster's point-in-time window as RDS reports it: how far back
 * (EarliestRestorableTime, or the automated backups' RestoreWindow for an instance) and how
 * recent (LatestRestorableTime) a restore can reach, and the backup retention period that bounds
 * it. Read-only: `lifeboat status`, the runbook and the checks read it the same way.
 */
import { DescribeDBClustersCommand, DescribeDBInstanceAutomatedBackupsCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import type { RdsNativeSource } from '../config/types';

export interface NativeWindow {
  /** The instance's or cluster's status (`available`, `backing-up`, `stopped`, …). */
  readonly status?: string;
  readonly retentionDays: number;
  readonly earliest?: Date;
  readonly latest?: Date;
  /** Seconds from `latest` to the time it was read; undefined without a latest restorable time (retention 0, or never backed up). */
  readonly ageSeconds?: number;
  /** The instance's or cluster's ARN, and for an instance its automated backups' replications (their ARNs in other regions). */
  readonly arn?: string;
  readonly replications: readonly string[];
  /** Whether its storage is encrypted, and with which key (a replication or a copy of it needs a key of the other region). */
  readonly encrypted: boolean;
  readonly kmsKeyId?: string;
  /** The DB engine (`postgres`, `aurora-postgresql`, `mysql`, …): an Aurora cluster needs an instance created in it after a restore. */
  readonly engine?: string;
}

export class NativeSourceNotFound extends Error {
  constructor(rds: Pick<RdsNativeSource, 'kind' | 'identifier' | 'region'>, cause?: unknown) {
    super(`RDS ${rds.kind === 'instance' ? 'DB instance' : 'DB cluster'} ${rds.identifier} not found in ${rds.region}${cause instanceof Error ? ` (${cause.name})` : ''}`);
    this.name = 'NativeSourceNotFound';
  }
}

/** The window of the source's instance or cluster, read now. Throws NativeSourceNotFound when RDS has no such instance or cluster. */
export async function readNativeWindow(rds: RDSClient, source: Pick<RdsNativeSource, 'kind' | 'identifier' | 'region'>, now = new Date()): Promise<NativeWindow> {
  const age = (latest: Date | undefined) => (latest ? Math.max(0, (now.getTime() - latest.getTime()) / 1000) : undefined);
  if (source.kind === 'cluster') {
    const described = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: source.identifier })).catch((error: unknown) => {
      throw (error as Error).name === 'DBClusterNotFoundFault' ? new NativeSourceNotFound(source, error) : error;
    });
    const cluster = described.DBClusters?.[0];
    if (!cluster) throw new NativeSourceNotFound(source);
    return {
      status: cluster.Status,
      retentionDays: cluster.BackupRetentionPeriod ?? 0,
      earliest: cluster.EarliestRestorableTime,
      latest: cluster.LatestRestorableTime,
      ageSeconds: age(cluster.LatestRestorableTime),
      arn: cluster.DBClusterArn,
      replications: [],
      encrypted: cluster.StorageEncrypted ?? false,
      kmsKeyId: cluster.KmsKeyId,
      engine: cluster.Engine,
    };
  }
  const described = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: source.identifier })).catch((error: unknown) => {
    throw (error as Error).name === 'DBInstanceNotFoundFault' ? new NativeSourceNotFound(source, error) : error;
  });
  const instance = described.DBInstances?.[0];
  if (!instance) throw new NativeSourceNotFound(source);
  // An instance reports only its latest point; the earliest is its automated backups' restore window.
  const backups = await rds.send(new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceIdentifier: source.identifier }));
  const own = backups.DBInstanceAutomatedBackups?.find((backup) => backup.Region === undefined || backup.Region === source.region);
  return {
    status: instance.DBInstanceStatus,
    retentionDays: instance.BackupRetentionPeriod ?? 0,
    earliest: own?.RestoreWindow?.EarliestTime,
    latest: instance.LatestRestorableTime,
    ageSeconds: age(instance.LatestRestorableTime),
    arn: instance.DBInstanceArn,
    replications: (instance.DBInstanceAutomatedBackupsReplications ?? []).map((replication) => replication.DBInstanceAutomatedBackupsArn).filter((arn): arn is string => arn !== undefined),
    encrypted: instance.StorageEncrypted ?? false,
    kmsKeyId: instance.KmsKeyId,
    engine: instance.Engine,
  };
}
