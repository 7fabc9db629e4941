import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { BackupBucket } from '../../lib/constructs/backup-bucket';
import { testApp } from '../fixtures/cdk-app';
import { backupBucket, onlyResource } from './storage-helpers';

// A standalone BackupBucket with every lifecycle default overridden, and no replication.
const stack = new Stack(testApp(), 'BackupBucketTest', { env: { account: '333333333333', region: 'us-east-2' } });
const construct = new BackupBucket(stack, 'Backups', {
  objectLockMode: s3.ObjectLockMode.GOVERNANCE,
  sourceRetention: [{ source: 'billing', retentionDays: 365 }],
  retentionMarginDays: 0,
  abortIncompleteUploadDays: 3,
  noncurrentVersionExpirationDays: 10,
  accessLogExpirationDays: 90,
});
const template = Template.fromStack(stack);

test('exposes the bucket, its key, its log bucket and the Object Lock mode', () => {
  expect(stack.resolve(construct.bucket.bucketName)).toEqual({ Ref: backupBucket(template).id });
  expect(construct.key.node.path).toBe('BackupBucketTest/Backups/Key');
  expect(construct.logBucket.node.path).toBe('BackupBucketTest/Backups/AccessLogs');
  expect(construct.objectLockMode).toBe('GOVERNANCE');
});

test('applies the overridden lifecycle days', () => {
  expect(backupBucket(template).props.LifecycleConfiguration).toEqual({
    Rules: [
      expect.objectContaining({
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 },
        NoncurrentVersionExpiration: { NoncurrentDays: 10 },
      }),
      expect.objectContaining({ Prefix: 'runs/billing/', ExpirationInDays: 365 }),
    ],
  });
  const logBucket = onlyResource(template, 'AWS::S3::Bucket', Match.objectLike({ ObjectLockEnabled: Match.absent() }));
  expect(logBucket.props.LifecycleConfiguration).toEqual({
    Rules: [expect.objectContaining({ ExpirationInDays: 90, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 } })],
  });
});

test('without replication, renders no replication configuration or role', () => {
  expect(backupBucket(template).props.ReplicationConfiguration).toBeUndefined();
  template.resourceCountIs('AWS::IAM::Role', 0);
});

test('without a key alias, creates no alias', () => {
  template.resourceCountIs('AWS::KMS::Alias', 0);
});
