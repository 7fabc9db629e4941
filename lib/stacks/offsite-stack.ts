import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { LifeboatConfig } from '../config/types';
import { BackupBucket } from '../constructs/backup-bucket';
import { retentionDays, storageNames } from './naming';

export interface OffsiteStackProps extends Omit<StackProps, 'env'> {
  /** The environment (offsite region, offsite or primary account) comes from here. */
  readonly config: LifeboatConfig;
}

/**
 * The offsite copy: a backup bucket in the offsite region (and account) that the primary
 * bucket replicates to. Deployed before the primary stack, which finds it by name.
 */
export class OffsiteStack extends Stack {
  public readonly backupBucket: BackupBucket;

  constructor(scope: Construct, id: string, props: OffsiteStackProps) {
    const { config, ...stackProps } = props;
    const names = storageNames(config);
    super(scope, id, {
      ...stackProps,
      env: { region: config.offsite.region, account: names.offsiteAccount },
      description: stackProps.description ?? `${config.appName}: offsite copy of the backup repository`,
    });

    this.backupBucket = new BackupBucket(this, 'OffsiteBackups', {
      bucketName: names.offsiteBucketName,
      keyAlias: names.offsiteKeyAlias,
      objectLockMode: s3.ObjectLockMode[config.objectLock.mode],
      sourceRetention: config.sources.map((s) => ({
        source: s.name,
        retentionDays: retentionDays(s.tier.retentionSeconds),
      })),
    });
    if (names.crossAccount && names.primaryAccount !== undefined) {
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
  }
}
