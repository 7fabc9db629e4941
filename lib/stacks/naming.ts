import { Aws, DefaultStackSynthesizer, type Stack } from 'aws-cdk-lib';
import type { LifeboatConfig } from '../config/types';
import { ConfigError } from '../config/validate';

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
  /** Name of the primary stack's operator role (path /lifeboat/operator/). */
  readonly operatorRoleName: string;
  /** Name of the offsite stack's restore role, in the offsite account (path /lifeboat/operator/). */
  readonly offsiteRestoreRoleName: string;
}

const MAX_BUCKET_NAME = 63;
const ACCOUNT_ID_LENGTH = 12;

/**
 * @throws ConfigError naming every field that makes a name impossible.
 */
export function storageNames(config: LifeboatConfig): StorageNames {
  const problems: string[] = [];
  const app = config.appName.toLowerCase();
  const primaryAccount = config.primary.account;
  const offsiteAccount = config.offsite.account ?? primaryAccount;
  if (offsiteAccount !== undefined && primaryAccount === undefined) {
    problems.push(
      `offsite.account: "${offsiteAccount}" is set but primary.account is not (valid: both, or neither): ` +
        'cross-account replication needs both, so that the offsite bucket and key policies can name the primary account',
    );
  }

  const bucketPrefix = `${app}-offsite-`;
  const bucketSuffix = `-${config.offsite.region}`;
  const bucketNameLength = bucketPrefix.length + ACCOUNT_ID_LENGTH + bucketSuffix.length;
  if (bucketNameLength > MAX_BUCKET_NAME) {
    problems.push(
      `appName: "${config.appName}" makes the offsite bucket name "${bucketPrefix}<account>${bucketSuffix}" ` +
        `${bucketNameLength} characters long (valid: at most ${MAX_BUCKET_NAME}, so at most ` +
        `${config.appName.length - (bucketNameLength - MAX_BUCKET_NAME)} characters of appName with this offsite region)`,
    );
  }
  // IAM allows 64 characters. Whenever the bucket name fits in 63, this fits too: it is 9
  // characters shorter ("-replication-" vs "-offsite-<account>-") plus the difference between
  // the two region names, and no two region names differ by 10 characters or more.
  const replicationRoleName = `${config.appName}-replication-${config.primary.region}`;
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    primaryAccount,
    offsiteAccount,
    crossAccount: offsiteAccount !== primaryAccount,
    offsiteBucketName: `${bucketPrefix}${offsiteAccount ?? Aws.ACCOUNT_ID}${bucketSuffix}`,
    offsiteKeyAlias: `alias/${app}-offsite`,
    replicationRoleName,
    operatorRoleName: `${config.appName}-operator-${config.primary.region}`,
    offsiteRestoreRoleName: `${config.appName}-offsite-restore-${config.offsite.region}`,
  };
}

/** Whole days covering a tier's retention (S3 lifecycle counts in days). */
export function retentionDays(retentionSeconds: number): number {
  return Math.ceil(retentionSeconds / 86_400);
}

/**
 * Whole days of the shortest retention of the config's sources: the backup buckets' default
 * Object Lock retention (a floor under every object's own lock, which is its tier's).
 */
export function shortestRetentionDays(config: LifeboatConfig): number {
  return Math.max(1, Math.floor(Math.min(...config.sources.map((source) => source.tier.retentionSeconds)) / 86_400));
}

/**
 * The principals that may still reconfigure a backup bucket (its policy, lifecycle,
 * versioning, replication, Object Lock) and bypass governance retention: the roles that
 * deploy the stacks — the config's `deploymentRoleArns`, by default the CDK bootstrap's
 * CloudFormation execution role of the stack's account and region — and the config's
 * `breakGlassRoleArn`.
 */
export function configurationAdmins(stack: Stack, config: LifeboatConfig): string[] {
  const synthesizer = stack.synthesizer;
  const qualifier = synthesizer instanceof DefaultStackSynthesizer ? synthesizer.bootstrapQualifier ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER : DefaultStackSynthesizer.DEFAULT_QUALIFIER;
  const deployers = config.deploymentRoleArns
    ?? [`arn:${stack.partition}:iam::${stack.account}:role/cdk-${qualifier}-cfn-exec-role-${stack.account}-${stack.region}`];
  return [...deployers, ...(config.breakGlassRoleArn ? [config.breakGlassRoleArn] : [])];
}
