/**
 * The runbook's point-in-time restore of an RDS/Aurora source with the engine's own recovery:
 * console and CLI steps for the primary region and for the offsite region, complete enough to
 * follow without Lifeboat (no `lifeboat` command in them). What Lifeboat adds is the proof that
 * they work (the drills) and the alarms; the restore itself is RDS's.
 */
import type { LifeboatConfig, RdsNativeSource, Source } from '../config/types';
import { formatDuration } from '../config/units';
import { storageNames } from '../stacks/naming';
import { snapshotCopyPrefix } from './naming';

/** What `lifeboat status` read of the window, when the runbook's author could read it. */
export interface NativeWindowFacts {
  readonly earliest?: Date;
  readonly latest?: Date;
}

/** Aurora's engine names for a source's engine (a Multi-AZ DB cluster keeps the plain ones). */
const AURORA_ENGINE: Record<Source['engine'], string> = { postgres: 'aurora-postgresql', mysql: 'aurora-mysql', mariadb: 'aurora-mysql' };

export function nativeRestoreSection(config: LifeboatConfig, source: Source & { rds: RdsNativeSource }, window?: NativeWindowFacts): string[] {
  const { rds } = source;
  const names = storageNames(config);
  const primary = rds.region;
  const offsite = config.offsite.region;
  const offsiteAccount = names.offsiteAccount ?? names.primaryAccount ?? 'OFFSITE_ACCOUNT';
  const id = rds.identifier;
  const target = `${id}-restored`;
  const lines: string[] = [];
  const push = (...text: string[]) => lines.push(...text);
  const code = (...text: string[]) => push('```sh', ...text, '```', '');
  const what = rds.kind === 'instance' ? `DB instance \`${id}\`` : `DB cluster \`${id}\``;

  push(`## 5a. Point-in-time restore with RDS (the engine's own recovery)`, '');
  push(`${source.name} is the RDS ${what} in ${primary}${rds.detected ? ` (read off its endpoint ${source.connection.host})` : ''}. RDS keeps its transaction logs and restores it to **any second** of its backup retention window (tier ${source.tier.name} requires at least ${rds.requiredWindowDays} days; Lifeboat alarms when it is shorter): use this when the damage is newer than that window's start, and the logical dumps (steps 3 to 5) for anything older or when the account is lost. A point-in-time restore always creates a **new** ${rds.kind === 'instance' ? 'instance' : 'cluster'}; the damaged one is left as it is until you delete it.`, '');
  if (window?.earliest || window?.latest) {
    push(`Window when this runbook was generated: earliest restorable ${window.earliest?.toISOString() ?? '?'}, latest restorable ${window.latest?.toISOString() ?? '?'}.`, '');
  }
  push(`Pick the restore time: the last second **before** the damage (UTC, e.g. \`2026-12-01T09:41:59Z\`), or the latest restorable time when the server is simply gone. Check the window first; \`LatestRestorableTime\` normally trails by about 5 minutes (the tier's RPO is ${formatDuration(source.tier.rpoSeconds)}).`, '');
  push(`Restore into the source's own network: the same DB subnet group and security groups (below, as the source has them), and the same instance class${rds.drill.instanceClass ? ` (the drills use ${rds.drill.instanceClass})` : ''}, so the application can reach it and it can carry the load.`, '');

  if (rds.kind === 'instance') {
    push(`**Console (${primary}).** RDS → Databases → \`${id}\` → Actions → **Restore to point in time** → *Latest restorable time* or *Custom date and time* → DB instance identifier \`${target}\` → the same DB subnet group, VPC security groups and instance class as \`${id}\`, *Public access: No* → **Restore to point in time**. Wait until its status is *Available*, then read its endpoint on the *Connectivity & security* tab.`, '');
    push(`**CLI (${primary}).**`, '');
    code(
      `aws rds describe-db-instances --region ${primary} --db-instance-identifier ${id} \\`,
      `  --query 'DBInstances[0].{latest:LatestRestorableTime,retentionDays:BackupRetentionPeriod,class:DBInstanceClass,subnetGroup:DBSubnetGroup.DBSubnetGroupName,securityGroups:VpcSecurityGroups[].VpcSecurityGroupId}'`,
      `aws rds describe-db-instance-automated-backups --region ${primary} --db-instance-identifier ${id} --query 'DBInstanceAutomatedBackups[0].RestoreWindow'`,
      `export RESTORE_TIME=…   # UTC, inside the window; or replace --restore-time "$RESTORE_TIME" with --use-latest-restorable-time`,
      `aws rds restore-db-instance-to-point-in-time --region ${primary} \\`,
      `  --source-db-instance-identifier ${id} --target-db-instance-identifier ${target} --restore-time "$RESTORE_TIME" \\`,
      `  --db-subnet-group-name SUBNET_GROUP --vpc-security-group-ids SG_ID … --db-instance-class CLASS --no-publicly-accessible`,
      `aws rds wait db-instance-available --region ${primary} --db-instance-identifier ${target}`,
      `aws rds describe-db-instances --region ${primary} --db-instance-identifier ${target} --query 'DBInstances[0].Endpoint'`,
    );
    push(`**Offsite region (${offsite}): the primary region is down.** The automated backups of \`${id}\` are replicated to ${offsite} (Lifeboat alarms \`${config.appName}-native-offsite-${source.name}\` when they are not): restore from the replica, to any second of its window, into a subnet group and security groups of ${offsite}.`, '');
    push(`Console: RDS in ${offsite} → **Automated backups** → *Replicated* tab → \`${id}\` → Actions → **Restore to point in time**, as above.`, '');
    code(
      `aws rds describe-db-instance-automated-backups --region ${offsite} \\`,
      `  --query "DBInstanceAutomatedBackups[?DBInstanceIdentifier=='${id}'].{arn:DBInstanceAutomatedBackupsArn,status:Status,window:RestoreWindow}"`,
      `aws rds restore-db-instance-to-point-in-time --region ${offsite} \\`,
      `  --source-db-instance-automated-backups-arn REPLICA_ARN --target-db-instance-identifier ${target} --restore-time "$RESTORE_TIME" \\`,
      `  --db-subnet-group-name OFFSITE_SUBNET_GROUP --vpc-security-group-ids OFFSITE_SG_ID … --db-instance-class CLASS --no-publicly-accessible`,
      `aws rds wait db-instance-available --region ${offsite} --db-instance-identifier ${target}`,
    );
  } else {
    push(`**Console (${primary}).** RDS → Databases → the cluster \`${id}\` → Actions → **Restore to point in time** → *Latest restorable time* or *Custom date and time* → DB cluster identifier \`${target}\` → the same DB subnet group and VPC security groups, the same instance class → **Restore to point in time**. The console creates the cluster's writer instance too; wait until both are *Available* and read the cluster's writer endpoint.`, '');
    push(`**CLI (${primary}).** A point-in-time restore of a cluster creates the cluster only: an Aurora cluster needs an instance created in it before anything can connect (a Multi-AZ DB cluster takes \`--db-cluster-instance-class\` in the restore instead, and no create-db-instance).`, '');
    code(
      `aws rds describe-db-clusters --region ${primary} --db-cluster-identifier ${id} \\`,
      `  --query 'DBClusters[0].{earliest:EarliestRestorableTime,latest:LatestRestorableTime,retentionDays:BackupRetentionPeriod,engine:Engine,version:EngineVersion,subnetGroup:DBSubnetGroup,securityGroups:VpcSecurityGroups[].VpcSecurityGroupId}'`,
      `export RESTORE_TIME=…   # UTC, inside the window; or replace --restore-to-time "$RESTORE_TIME" with --use-latest-restorable-time`,
      `aws rds restore-db-cluster-to-point-in-time --region ${primary} \\`,
      `  --source-db-cluster-identifier ${id} --db-cluster-identifier ${target} --restore-to-time "$RESTORE_TIME" \\`,
      `  --db-subnet-group-name SUBNET_GROUP --vpc-security-group-ids SG_ID …`,
      `aws rds create-db-instance --region ${primary} --db-cluster-identifier ${target} --db-instance-identifier ${target}-1 \\`,
      `  --engine ${AURORA_ENGINE[source.engine]} --db-instance-class CLASS   # the engine describe-db-clusters printed`,
      `aws rds wait db-instance-available --region ${primary} --db-instance-identifier ${target}-1`,
      `aws rds describe-db-clusters --region ${primary} --db-cluster-identifier ${target} --query 'DBClusters[0].Endpoint'`,
    );
    push(`**Offsite region (${offsite}): the primary region${names.crossAccount ? ' or account' : ''} is down.** A cluster's automated backups are not replicated: Lifeboat copies its newest automated cluster snapshot to ${offsite}${names.crossAccount ? ` and into the offsite account ${offsiteAccount}` : ''} every day, encrypted with the offsite key, kept ${formatDuration(source.tier.retentionSeconds)} (alarm \`${config.appName}-native-offsite-${source.name}\` when the newest copy is older than two days). A snapshot restores to **its own time** (at most a day old), not to any second: for anything newer, use the primary region's window above.`, '');
    push(`Console: RDS in ${offsite}${names.crossAccount ? `, signed in to account ${offsiteAccount}` : ''} → **Snapshots** → *Manual* → the newest \`${snapshotCopyPrefix(source.name)}…\` → Actions → **Restore snapshot**, then add an instance as above.`, '');
    code(
      `aws rds describe-db-cluster-snapshots --region ${offsite} --snapshot-type manual \\`,
      `  --query "reverse(sort_by(DBClusterSnapshots[?starts_with(DBClusterSnapshotIdentifier, '${snapshotCopyPrefix(source.name)}') && Status=='available'], &SnapshotCreateTime))[0].{id:DBClusterSnapshotIdentifier,time:SnapshotCreateTime,engine:Engine,version:EngineVersion,key:KmsKeyId}"`,
      `aws rds restore-db-cluster-from-snapshot --region ${offsite} --db-cluster-identifier ${target} \\`,
      `  --snapshot-identifier SNAPSHOT_ID --engine ENGINE --engine-version VERSION \\`,
      `  --db-subnet-group-name OFFSITE_SUBNET_GROUP --vpc-security-group-ids OFFSITE_SG_ID …`,
      `aws rds create-db-instance --region ${offsite} --db-cluster-identifier ${target} --db-instance-identifier ${target}-1 --engine ENGINE --db-instance-class CLASS`,
      `aws rds wait db-instance-available --region ${offsite} --db-instance-identifier ${target}-1`,
    );
  }
  push(`**Then** run the checks of step 6 against the new endpoint (\`export TARGET_HOST=<its endpoint> TARGET_PORT=${source.connection.port}\`), and point the application at it: change its connection string, or keep the old name by renaming (\`aws rds modify-db-${rds.kind === 'instance' ? 'instance --db-instance-identifier' : 'cluster --db-cluster-identifier'} ${id} --new-db-${rds.kind === 'instance' ? 'instance' : 'cluster'}-identifier ${id}-damaged --apply-immediately\`, then the same from \`${target}\` to \`${id}\`). The restored ${rds.kind === 'instance' ? 'instance' : 'cluster'} gets the default backup retention: set it back to at least ${rds.requiredWindowDays} days (\`--backup-retention-period ${rds.requiredWindowDays}\`)${rds.kind === 'instance' ? ' and start its replication to the offsite region again' : ''}.`, '');
  return lines;
}
