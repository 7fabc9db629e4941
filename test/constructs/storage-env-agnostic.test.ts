import { Template } from 'aws-cdk-lib/assertions';
import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { backupBucket } from './storage-helpers';

// No account anywhere: what `cdk synth` sees offline, without credentials.
const config = { ...testConfig, primary: { region: 'eu-west-1' } };
const { primary, offsite } = createStacks(testApp(), config);
const primaryTemplate = Template.fromStack(primary);
const offsiteTemplate = Template.fromStack(offsite);

// Each stack resolves its own AWS::AccountId: both are deployed with the same credentials.
const offsiteBucketName = { 'Fn::Join': ['', ['lifeboat-offsite-', { Ref: 'AWS::AccountId' }, '-eu-central-1']] };

test('the stacks keep their regions', () => {
  expect(primary.region).toBe('eu-west-1');
  expect(offsite.region).toBe('eu-central-1');
});

test('the offsite bucket name is built from the deploying account in the offsite stack', () => {
  expect(backupBucket(offsiteTemplate).props.BucketName).toEqual(offsiteBucketName);
});

test('the primary stack replicates to the same name, built the same way in its own template', () => {
  const rule = (backupBucket(primaryTemplate).props.ReplicationConfiguration as { Rules: Record<string, unknown>[] }).Rules[0];
  expect(rule.Destination).toMatchObject({
    Bucket: { 'Fn::Join': ['', ['arn:aws:s3:::lifeboat-offsite-', { Ref: 'AWS::AccountId' }, '-eu-central-1']] },
    EncryptionConfiguration: {
      ReplicaKmsKeyID: { 'Fn::Join': ['', ['arn:aws:kms:eu-central-1:', { Ref: 'AWS::AccountId' }, ':alias/lifeboat-offsite']] },
    },
  });
  expect(rule.Destination).not.toHaveProperty('Account');
  primaryTemplate.hasOutput('OffsiteBucketName', { Value: offsiteBucketName });
});

test('no cross-stack export or import is needed', () => {
  expect(JSON.stringify(primaryTemplate.toJSON())).not.toContain('Fn::ImportValue');
  expect(offsiteTemplate.toJSON().Outputs.OffsiteBucketName.Export).toBeUndefined();
});
