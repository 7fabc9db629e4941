import { Aws } from 'aws-cdk-lib';
import type { LifeboatConfig } from '../config/types';

/**
 * The names both stacks agree on without a cross-stack reference: the offsite stack creates
 * the offsite bucket, key alias and (cross-account) grants under these names; the primary
 * stack, in another region, replicates to them.
 *
 * Accounts. The offsite account defaults to the primary account. When neither is configured
 * (an environment-agnostic synth, e.g. offline with no credentials) the account part of a name
 * is the `AWS::AccountId` pseudo parameter, resolved by each stack in its own template: both
 * stacks are then deployed with the same credentials, so it is the same account on both sides.
 * Cross-account replication needs both accounts configured.
 */
export interface StorageNames {
  /** Account of the primary stack, or undefined for an environment-agnostic synth. */
  readonly primaryAccount?: string;
  /** Account of the offsite stack, or undefined for an environment-agnostic synth. */
  readonly offsiteAccount?: string;
  /** True when the offsite bucket is owned by another account than the primary bucket. */
  readonly crossAccount: boolean;
  /** Physical name of the offsite bucket (may contain the `AWS::AccountId` token, see above). */
  readonly offsiteBucketName: string;
  /** Alias of the offsite bucket's KMS key. */
  readonly offsiteKeyAlias: string;
  /** Name of the primary bucket's replication role (IAM is global: the region keeps it unique). */
  readonly replicationRoleName: string;
}

const MAX_BUCKET_NAME = 63;
const MAX_ROLE_NAME = 64;
const ACCOUNT_ID_LENGTH = 12;

export function storageNames(config: LifeboatConfig): StorageNames {
  const app = config.appName.toLowerCase();
  const primaryAccount = config.primary.account;
  const offsiteAccount = config.offsite.account ?? primaryAccount;
  if (offsiteAccount !== undefined && primaryAccount === undefined) {
    throw new Error(
      `offsite.account is "${offsiteAccount}" but primary.account is not set: cross-account replication needs both, ` +
        'so that the offsite bucket and key policies can name the primary account',
    );
  }

  const bucketSuffix = `-${config.offsite.region}`;
  const bucketPrefix = `${app}-offsite-`;
  const bucketNameLength = bucketPrefix.length + ACCOUNT_ID_LENGTH + bucketSuffix.length;
  if (bucketNameLength > MAX_BUCKET_NAME) {
    throw new Error(
      `appName: "${config.appName}" makes the offsite bucket name ${bucketNameLength} characters long ` +
        `(S3 allows ${MAX_BUCKET_NAME}); use at most ${config.appName.length - (bucketNameLength - MAX_BUCKET_NAME)} characters`,
    );
  }
  const replicationRoleName = `${config.appName}-offsite-replication-${config.primary.region}`;
  if (replicationRoleName.length > MAX_ROLE_NAME) {
    throw new Error(
      `appName: "${config.appName}" makes the replication role name ${replicationRoleName.length} characters long ` +
        `(IAM allows ${MAX_ROLE_NAME})`,
    );
  }

  return {
    primaryAccount,
    offsiteAccount,
    crossAccount: offsiteAccount !== primaryAccount,
    offsiteBucketName: `${bucketPrefix}${offsiteAccount ?? Aws.ACCOUNT_ID}${bucketSuffix}`,
    offsiteKeyAlias: `alias/${app}-offsite`,
    replicationRoleName,
  };
}

/** Whole days covering a tier's retention (S3 lifecycle counts in days). */
export function retentionDays(retentionSeconds: number): number {
  return Math.ceil(retentionSeconds / 86_400);
}
