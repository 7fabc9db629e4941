import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { backupBucket, onlyResource, tlsOnlyStatement } from './storage-helpers';

// Same account, primary eu-west-1, offsite eu-central-1; sources "orders" (tier1, 90 days)
// and "analytics" (tier3, 7 days).
const { primary, offsite } = createStacks(testApp(), testConfig);
const primaryTemplate = Template.fromStack(primary);
const offsiteTemplate = Template.fromStack(offsite);
const OFFSITE_BUCKET_NAME = 'lifeboat-offsite-111111111111-eu-central-1';

describe('stacks', () => {
  test('have stable ids, the configured regions, and the primary deploys after the offsite', () => {
    expect(offsite.stackName).toBe('Lifeboat-Offsite');
    expect(primary.stackName).toBe('Lifeboat-Primary');
    expect(primary.region).toBe('eu-west-1');
    expect(offsite.region).toBe('eu-central-1');
    expect(offsite.account).toBe('111111111111');
    expect(primary.dependencies).toContain(offsite);
  });
});

describe.each([
  ['primary', primaryTemplate],
  ['offsite', offsiteTemplate],
])('%s backup bucket', (_name, template) => {
  const bucket = backupBucket(template);

  test('is encrypted with its own customer-managed key, which rotates', () => {
    const keyArn = new Capture();
    template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyArn, 'Arn'] } } },
        ],
      },
    });
    expect(template.toJSON().Resources[keyArn.asString()]).toMatchObject({
      Type: 'AWS::KMS::Key',
      Properties: { EnableKeyRotation: true },
    });
    template.allResourcesProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  test('is versioned, with Object Lock enabled and the shortest tier\'s retention as the default (in the config\'s mode)', () => {
    expect(bucket.props).toMatchObject({ VersioningConfiguration: { Status: 'Enabled' }, ObjectLockEnabled: true });
    // testConfig: orders 90 days, analytics 7 days, compliance mode.
    expect(bucket.props.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Days: 7, Mode: 'COMPLIANCE' } } });
  });

  test('blocks all public access', () => {
    expect(bucket.props.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  });

  test('denies requests without TLS', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket.id },
      PolicyDocument: { Statement: Match.arrayWith([tlsOnlyStatement]) },
    });
  });

  test('logs accesses to a separate SSE-S3, TLS-only, private, expiring log bucket', () => {
    const logBucket = onlyResource(template, 'AWS::S3::Bucket', Match.objectLike({ ObjectLockEnabled: Match.absent() }));
    expect(bucket.props.LoggingConfiguration).toEqual({ DestinationBucketName: { Ref: logBucket.id }, LogFilePrefix: 'access-logs/' });
    expect(logBucket.props).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: 365, Status: 'Enabled' })] },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logBucket.id },
      PolicyDocument: {
        Statement: Match.arrayWith([
          tlsOnlyStatement,
          Match.objectLike({ Effect: 'Allow', Principal: { Service: 'logging.s3.amazonaws.com' }, Action: 's3:PutObject' }),
        ]),
      },
    });
  });

  test('aborts incomplete uploads after 1 day and expires old versions after 30 days', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Status: 'Enabled',
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
            Prefix: Match.absent(),
          }),
        ]),
      },
    });
  });

});

describe('retention of runs', () => {
  test.each([
    ['primary', primaryTemplate],
    ['offsite', offsiteTemplate],
  ])('the %s bucket never expires current versions: a lifecycle rule cannot keep the newest verified runs of a source', (_name, template) => {
    // A blind expiration would delete a source's last good copy in a long outage (only failed
    // runs since); the pruners decide instead, with the invariants of lib/retention/policy.ts.
    const rules = (backupBucket(template).props.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    expect(rules.filter((rule) => rule.ExpirationInDays !== undefined || rule.ExpirationDate !== undefined)).toEqual([]);
  });
});

describe('replication to the offsite bucket', () => {
  const bucket = backupBucket(primaryTemplate);
  const configuration = bucket.props.ReplicationConfiguration as { Role: unknown; Rules: Record<string, unknown>[] };

  test('replicates every object with one enabled rule', () => {
    expect(configuration.Rules).toHaveLength(1);
    expect(configuration.Rules[0]).toMatchObject({ Status: 'Enabled', Filter: { Prefix: '' } });
  });

  test('targets the offsite bucket by its deterministic name, in the offsite storage class', () => {
    expect(configuration.Rules[0].Destination).toMatchObject({
      Bucket: `arn:aws:s3:::${OFFSITE_BUCKET_NAME}`,
      StorageClass: 'STANDARD_IA',
    });
    offsiteTemplate.hasResourceProperties('AWS::S3::Bucket', { BucketName: OFFSITE_BUCKET_NAME, ObjectLockEnabled: true });
  });

  test('has Replication Time Control at 15 minutes and replication metrics', () => {
    expect(configuration.Rules[0].Destination).toMatchObject({
      ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
      Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
    });
  });

  test('replicates SSE-KMS objects and re-encrypts them with the offsite key, named by its alias ARN', () => {
    expect(configuration.Rules[0]).toMatchObject({
      SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
      Destination: { EncryptionConfiguration: { ReplicaKmsKeyID: 'arn:aws:kms:eu-central-1:111111111111:alias/lifeboat-offsite' } },
    });
    const keyId = new Capture();
    offsiteTemplate.hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/lifeboat-offsite',
      TargetKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
    });
    expect(backupBucket(offsiteTemplate).props.BucketEncryption).toMatchObject({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { KMSMasterKeyID: { 'Fn::GetAtt': [keyId.asString(), 'Arn'] } } }],
    });
  });

  test('never replicates delete markers, and keeps the owner in the same account', () => {
    expect(configuration.Rules[0]).toMatchObject({ DeleteMarkerReplication: { Status: 'Disabled' } });
    expect(configuration.Rules[0].Destination).not.toHaveProperty('Account');
    expect(configuration.Rules[0].Destination).not.toHaveProperty('AccessControlTranslation');
  });

  test('uses a named role that only S3 can assume', () => {
    const roleId = new Capture();
    primaryTemplate.hasResourceProperties('AWS::S3::Bucket', { ReplicationConfiguration: { Role: { 'Fn::GetAtt': [roleId, 'Arn'] } } });
    expect(primaryTemplate.toJSON().Resources[roleId.asString()].Properties).toMatchObject({
      RoleName: 'Lifeboat-replication-eu-west-1',
      AssumeRolePolicyDocument: {
        Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 's3.amazonaws.com' } }],
      },
    });
  });

  test('lets the role read Object Lock settings, write replicas, and encrypt only through S3 in the offsite region', () => {
    primaryTemplate.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          // arrayWith matches in template order.
          Match.objectLike({
            Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
            Resource: 'arn:aws:kms:eu-central-1:111111111111:key/*',
            Condition: { StringEquals: { 'kms:ViaService': 's3.eu-central-1.amazonaws.com' } },
          }),
          Match.objectLike({
            Action: Match.arrayWith(['s3:ReplicateObject', 's3:ReplicateTags']),
            Resource: `arn:aws:s3:::${OFFSITE_BUCKET_NAME}/*`,
          }),
          Match.objectLike({
            Action: Match.arrayWith(['s3:GetObjectLegalHold', 's3:GetObjectRetention']),
            Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket.id, 'Arn'] }, '/*']] },
          }),
        ]),
      },
    });
  });

  test('the offsite bucket replicates nothing further', () => {
    expect(backupBucket(offsiteTemplate).props.ReplicationConfiguration).toBeUndefined();
  });

  test('the offsite bucket grants no other account in the same-account setup', () => {
    offsiteTemplate.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: backupBucket(offsiteTemplate).id },
      PolicyDocument: { Statement: Match.not(Match.arrayWith([Match.objectLike({ Effect: 'Allow' })])) },
    });
  });
});

describe('alarm topic', () => {
  const topic = onlyResource(primaryTemplate, 'AWS::SNS::Topic', Match.anyValue());

  test('is encrypted with a rotating customer-managed key that CloudWatch alarms may use', () => {
    const keyId = new Capture();
    primaryTemplate.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    expect(primaryTemplate.toJSON().Resources[keyId.asString()].Properties).toMatchObject({
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: expect.arrayContaining([
          expect.objectContaining({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
  });

  test('denies publishing without TLS, and lets this account\'s CloudWatch alarms publish', () => {
    primaryTemplate.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topic.id }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Condition: {
              ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:eu-west-1:111111111111:alarm:*' },
              StringEquals: { 'aws:SourceAccount': '111111111111' },
            },
          }),
        ]),
      },
    });
  });

  test.each([
    ['email', 'oncall@example.com'],
    ['email', 'dba@example.com'],
    ['https', 'https://hooks.example.com/lifeboat'],
  ])('subscribes %s %s', (protocol, endpoint) => {
    primaryTemplate.hasResourceProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: topic.id },
      Protocol: protocol,
      Endpoint: endpoint,
    });
  });
});

describe('outputs', () => {
  test('the primary stack names both buckets, their regions, the Object Lock mode and the alarm topic', () => {
    primaryTemplate.hasOutput('PrimaryBucketName', { Value: { Ref: backupBucket(primaryTemplate).id } });
    primaryTemplate.hasOutput('PrimaryBucketRegion', { Value: 'eu-west-1' });
    primaryTemplate.hasOutput('OffsiteBucketName', { Value: OFFSITE_BUCKET_NAME });
    primaryTemplate.hasOutput('OffsiteBucketRegion', { Value: 'eu-central-1' });
    primaryTemplate.hasOutput('ObjectLockMode', { Value: 'COMPLIANCE' });
    primaryTemplate.hasOutput('AlarmTopicArn', {
      Value: { Ref: onlyResource(primaryTemplate, 'AWS::SNS::Topic', Match.anyValue()).id },
    });
  });

  test('the offsite stack names its bucket and region', () => {
    offsiteTemplate.hasOutput('OffsiteBucketName', { Value: { Ref: backupBucket(offsiteTemplate).id } });
    offsiteTemplate.hasOutput('OffsiteBucketRegion', { Value: 'eu-central-1' });
  });
});
