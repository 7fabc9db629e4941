import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { LifeboatConfig } from '../config/types';
import { AlarmTopic } from '../constructs/alarm-topic';
import { BackupBucket } from '../constructs/backup-bucket';
import { OFFSITE_READER_PATHS } from '../constructs/dump-task';
import { KeyWatch } from '../constructs/key-watch';
import { OffsiteSnapshotCopy } from '../constructs/native-snapshot-copy';
import { NATIVE_CHECKS_ROLE_PATH } from '../constructs/native-pitr';
import { OperatorAccess } from '../constructs/operator-access';
import { Pruner } from '../constructs/pruner';
import { BINLOG_PREFIX, DRILLS_PREFIX, RUNS_PREFIX } from '../domain/layout';
import { configurationAdmins, shortestRetentionDays, storageNames } from './naming';

export interface OffsiteStackProps extends Omit<StackProps, 'env'> {
  /** The environment (offsite region, offsite or primary account) comes from here. */
  readonly config: LifeboatConfig;
}

/**
 * The offsite copy: a backup bucket in the offsite region (and account) that the primary
 * bucket replicates to. Deployed before the primary stack, which finds it by name.
 *
 * It must hold when the primary account is lost or compromised: its objects are replicas that
 * keep their source's lock (compliance mode recommended here, `objectLock.offsiteMode`), no
 * lifecycle rule expires them, nobody but the replication role writes runs into it, nobody but
 * the deployment and break-glass roles may reconfigure it, and a restore role of its own
 * account reads it without any primary-account principal. The primary account's readers
 * (AwaitOffsite, drills, operators) are admitted by role path, read-only.
 */
export class OffsiteStack extends Stack {
  public readonly backupBucket: BackupBucket;
  /** Reads the offsite copy from inside the offsite account (a disaster recovery without the primary account). */
  public readonly restore: OperatorAccess;
  public readonly alarmTopic: AlarmTopic;
  /** Applies each source's retention to the offsite copy, from its own catalog, with a role of this account. */
  public readonly pruner: Pruner;
  /** The offsite account's copies of the DB cluster sources' snapshots (another account and cluster sources only). */
  public readonly snapshotCopy?: OffsiteSnapshotCopy;

  constructor(scope: Construct, id: string, props: OffsiteStackProps) {
    const { config, ...stackProps } = props;
    const names = storageNames(config);
    super(scope, id, {
      ...stackProps,
      env: { region: config.offsite.region, account: names.offsiteAccount },
      description: stackProps.description ?? `${config.appName}: offsite copy of the backup repository`,
    });

    const admins = configurationAdmins(this, config);
    this.backupBucket = new BackupBucket(this, 'OffsiteBackups', {
      bucketName: names.offsiteBucketName,
      keyAlias: names.offsiteKeyAlias,
      objectLockMode: s3.ObjectLockMode[config.objectLock.offsiteMode],
      defaultRetentionDays: shortestRetentionDays(config),
      configurationAdmins: admins,
      writeOncePrefixes: [RUNS_PREFIX, DRILLS_PREFIX, BINLOG_PREFIX],
      // No lifecycle expiration of runs: it would expire the last good copy of a source in a
      // long outage. The offsite pruner applies the same invariants as the primary's.
    });
    // Replicas arrive by s3:ReplicateObject; no principal writes runs here with PutObject.
    this.backupBucket.restrictWriters('OffsiteRuns', `${RUNS_PREFIX}*`, admins);
    if (names.crossAccount && names.primaryAccount !== undefined) {
      const primaryRole = (path: string) => this.formatArn({ service: 'iam', region: '', account: names.primaryAccount, resource: 'role', resourceName: `${path.slice(1)}*` });
      this.backupBucket.grantReplicationFrom({
        account: names.primaryAccount,
        roleArn: this.formatArn({
          service: 'iam',
          region: '',
          account: names.primaryAccount,
          resource: 'role',
          resourceName: names.replicationRoleName,
        }),
      });
      // AwaitOffsite, the disaster-recovery drills and the operators of the primary account.
      this.backupBucket.grantReadTo({
        account: names.primaryAccount,
        roleArnPatterns: [OFFSITE_READER_PATHS.awaitOffsite, OFFSITE_READER_PATHS.drill, OFFSITE_READER_PATHS.operator].map(primaryRole),
      });
    }

    this.restore = new OperatorAccess(this, 'Restore', {
      bucket: this.backupBucket.bucket,
      key: this.backupBucket.key,
      roleName: names.offsiteRestoreRoleName,
      description: `${config.appName}: restores from the offsite copy inside the offsite account (no primary-account principal needed); reads only`,
    });

    // The same invariants as the primary's pruner, read from this bucket alone: the offsite copy
    // keeps a source's newest verified runs however long the primary has failed.
    this.pruner = new Pruner(this, 'Pruner', { bucket: this.backupBucket.bucket, key: this.backupBucket.key, sources: config.sources });

    this.alarmTopic = new AlarmTopic(this, 'Alarms', {
      displayName: `${config.appName} offsite alarms`,
      emails: config.notifications.emails,
      httpsEndpoints: config.notifications.httpsEndpoints,
    });
    this.alarmTopic.allowEventRules();
    new KeyWatch(this, 'KeyWatch', { keys: [this.backupBucket.key], topic: this.alarmTopic.topic, what: 'the offsite backup bucket' });
    // A prune of the offsite copy that could not even start is an alarm here, in its own account.
    new cloudwatch.Alarm(this, 'PrunerDeadLetters', {
      alarmDescription: 'Lifeboat: the dead-letter queue of the offsite pruner is not empty: EventBridge Scheduler could not invoke it after its retries, ' +
        'so the offsite copy was not pruned (nothing is lost; storage grows). First check: the messages in the queue (their attributes carry the error), then purge it.',
      metric: this.pruner.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(new cloudwatchActions.SnsAction(this.alarmTopic.topic));

    // DB instances' automated backups, replicated here by the primary account's checks (managed
    // tiers) under this key: their roles, by path, may use it through RDS in this region.
    const managedInstances = config.sources.filter((source) => source.rds?.kind === 'instance' && source.rds.manage);
    if (names.crossAccount && names.primaryAccount !== undefined && managedInstances.length > 0) {
      this.backupBucket.key.addToResourcePolicy(new iam.PolicyStatement({
        sid: 'AllowRdsReplicationFromPrimaryChecks',
        principals: [new iam.AccountPrincipal(names.primaryAccount)],
        actions: ['kms:CreateGrant', 'kms:DescribeKey'],
        resources: ['*'],
        conditions: {
          ArnLike: { 'aws:PrincipalArn': this.formatArn({ service: 'iam', region: '', account: names.primaryAccount, resource: 'role', resourceName: `${NATIVE_CHECKS_ROLE_PATH.slice(1)}*` }) },
          StringEquals: { 'kms:ViaService': `rds.${this.region}.amazonaws.com` },
        },
      }));
    }

    // DB clusters' snapshots, shared by the primary account's copier: copied into this account
    // with this account's key, so that the offsite copy of their PITR survives the primary account.
    const clusters = config.sources.filter((source) => source.rds?.kind === 'cluster');
    if (names.crossAccount && names.primaryAccount !== undefined && clusters.length > 0) {
      this.snapshotCopy = new OffsiteSnapshotCopy(this, 'OffsiteSnapshotCopy', {
        appName: config.appName, sources: clusters, primaryAccount: names.primaryAccount, primaryRegion: config.primary.region,
        key: this.backupBucket.key, alarmTopic: this.alarmTopic.topic,
      });
    }

    new CfnOutput(this, 'OffsiteBucketName', {
      description: 'Bucket holding the offsite copy of every run',
      value: this.backupBucket.bucket.bucketName,
    });
    new CfnOutput(this, 'OffsiteBucketRegion', { value: this.region });
    new CfnOutput(this, 'OffsiteKeyArn', {
      description: 'KMS key encrypting the offsite copy',
      value: this.backupBucket.key.keyArn,
    });
    new CfnOutput(this, 'OffsiteRestoreRoleArn', {
      description: 'Role of this account that reads the offsite copy for a restore (lifeboat restore --from offsite)',
      value: this.restore.role.roleArn,
    });
  }
}

