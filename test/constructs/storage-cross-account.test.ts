import { Match, Template } from 'aws-cdk-lib/assertions';
import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { backupBucket, onlyResource } from './storage-helpers';

// The offsite copy in another account: 111111111111 replicates into 222222222222.
const config = { ...testConfig, offsite: { ...testConfig.offsite, account: '222222222222' } };
const { primary, offsite } = createStacks(testApp(), config);
const primaryTemplate = Template.fromStack(primary);
const offsiteTemplate = Template.fromStack(offsite);
const OFFSITE_BUCKET_NAME = 'lifeboat-offsite-222222222222-eu-central-1';
const ROLE_ARN = 'arn:aws:iam::111111111111:role/Lifeboat-replication-eu-west-1';
const fromPrimaryRole = {
  Principal: { AWS: 'arn:aws:iam::111111111111:root' },
  Condition: Match.objectLike({ ArnEquals: { 'aws:PrincipalArn': ROLE_ARN } }),
};

test('the offsite stack is deployed to the offsite account', () => {
  expect(offsite.account).toBe('222222222222');
  expect(primary.account).toBe('111111111111');
});

test('replicas go to the other account, owned by it, re-encrypted with its key', () => {
  const rule = (backupBucket(primaryTemplate).props.ReplicationConfiguration as { Rules: Record<string, unknown>[] }).Rules[0];
  expect(rule.Destination).toMatchObject({
    Bucket: `arn:aws:s3:::${OFFSITE_BUCKET_NAME}`,
    Account: '222222222222',
    AccessControlTranslation: { Owner: 'Destination' },
    EncryptionConfiguration: { ReplicaKmsKeyID: 'arn:aws:kms:eu-central-1:222222222222:alias/lifeboat-offsite' },
  });
  expect(rule).toMatchObject({ DeleteMarkerReplication: { Status: 'Disabled' } });
});

test('the offsite bucket lets only the primary replication role write replicas, and never delete', () => {
  const bucket = backupBucket(offsiteTemplate);
  expect(bucket.props.BucketName).toBe(OFFSITE_BUCKET_NAME);
  offsiteTemplate.hasResourceProperties('AWS::S3::BucketPolicy', {
    Bucket: { Ref: bucket.id },
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          ...fromPrimaryRole,
          Effect: 'Allow',
          Action: ['s3:ObjectOwnerOverrideToBucketOwner', 's3:ReplicateObject', 's3:ReplicateTags'],
          Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket.id, 'Arn'] }, '/*']] },
        }),
      ]),
    },
  });
  const policy = onlyResource(offsiteTemplate, 'AWS::S3::BucketPolicy', Match.objectLike({ Bucket: { Ref: bucket.id } }));
  expect(JSON.stringify(policy.props)).not.toMatch(/ReplicateDelete|DeleteObject/);
});

test('the offsite key lets only the primary replication role encrypt, only through S3', () => {
  const keyId = (backupBucket(offsiteTemplate).props.BucketEncryption as {
    ServerSideEncryptionConfiguration: { ServerSideEncryptionByDefault: { KMSMasterKeyID: { 'Fn::GetAtt': [string, string] } } }[];
  }).ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.KMSMasterKeyID['Fn::GetAtt'][0];
  expect(offsiteTemplate.toJSON().Resources[keyId].Properties.KeyPolicy.Statement).toContainEqual(
    expect.objectContaining({
      Effect: 'Allow',
      Principal: { AWS: 'arn:aws:iam::111111111111:root' },
      Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
      Condition: {
        ArnEquals: { 'aws:PrincipalArn': ROLE_ARN },
        StringEquals: { 'kms:ViaService': 's3.eu-central-1.amazonaws.com' },
      },
    }),
  );
});

test('the replication role has the name the offsite policies expect', () => {
  primaryTemplate.hasResourceProperties('AWS::IAM::Role', { RoleName: 'Lifeboat-replication-eu-west-1' });
});

test('fails when offsite.account is set without primary.account', () => {
  const agnosticPrimary = { ...config, primary: { region: 'eu-west-1' } };
  expect(() => createStacks(testApp(), agnosticPrimary)).toThrow(
    'offsite.account: "222222222222" is set but primary.account is not',
  );
});
