/**
 * What the backup buckets enforce themselves, whoever asks: writes that could replace an object
 * refused, one writer per run document, the configuration reserved to the deployment and
 * break-glass roles, default retention; the offsite copy read by exactly the primary account's
 * offsite readers, restorable from its own account, alarmed on its key and its pruner.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../../lib/config';
import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { backupBucket } from './storage-helpers';

const BREAK_GLASS = 'arn:aws:iam::111111111111:role/BreakGlass';
const config = { ...testConfig, offsite: { ...testConfig.offsite, account: '222222222222' }, breakGlassRoleArn: BREAK_GLASS };
const { primary, offsite } = createStacks(testApp(), config);
const primaryTemplate = Template.fromStack(primary);
const offsiteTemplate = Template.fromStack(offsite);

type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, unknown>>; Principal?: unknown };

function bucketStatements(template: Template): Record<string, Statement> {
  const bucket = backupBucket(template);
  const policy = Object.values(template.findResources('AWS::S3::BucketPolicy')).find((candidate) => JSON.stringify(candidate.Properties.Bucket) === JSON.stringify({ Ref: bucket.id }));
  return Object.fromEntries((policy?.Properties.PolicyDocument.Statement as Statement[]).filter((statement) => statement.Sid).map((statement) => [statement.Sid, statement]));
}

describe.each([['primary', primaryTemplate], ['offsite', offsiteTemplate]])('the %s bucket', (name, template) => {
  const statements = bucketStatements(template);

  test('refuses any write under runs/ and drills/ without If-None-Match, to every principal', () => {
    for (const sid of ['WriteOnceRuns', 'WriteOnceDrills']) {
      expect(statements[sid]).toMatchObject({
        Effect: 'Deny', Principal: { AWS: '*' }, Action: 's3:PutObject',
        Condition: { Null: { 's3:if-none-match': 'true' }, Bool: { 's3:ObjectCreationOperation': 'true' } },
      });
    }
  });

  test('lets only the deployment role and the break-glass role reconfigure it or bypass governance retention', () => {
    const account = name === 'primary' ? '111111111111' : '222222222222';
    const region = name === 'primary' ? 'eu-west-1' : 'eu-central-1';
    const admins = [`arn:aws:iam::${account}:role/cdk-hnb659fds-cfn-exec-role-${account}-${region}`, BREAK_GLASS];
    expect(statements.OnlyAdminsReconfigure).toMatchObject({
      Effect: 'Deny', Principal: { AWS: '*' },
      Condition: { ArnNotLike: { 'aws:PrincipalArn': admins } },
    });
    expect([statements.OnlyAdminsReconfigure.Action].flat().sort()).toEqual([
      's3:DeleteBucketPolicy', 's3:PutBucketObjectLockConfiguration', 's3:PutBucketPolicy', 's3:PutBucketVersioning', 's3:PutLifecycleConfiguration', 's3:PutReplicationConfiguration',
    ]);
    expect(statements.OnlyAdminsBypassGovernance).toMatchObject({
      Effect: 'Deny', Action: 's3:BypassGovernanceRetention', Condition: { ArnNotLike: { 'aws:PrincipalArn': admins } },
    });
  });

  test('locks every object by default for the shortest tier\'s retention', () => {
    expect(backupBucket(template).props.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Days: 7, Mode: 'COMPLIANCE' } } });
  });

  test('raises an alarm when its key is disabled, scheduled for deletion or re-permissioned', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.kms'],
        'detail-type': ['AWS API Call via CloudTrail'],
        detail: { eventSource: ['kms.amazonaws.com'], eventName: ['DisableKey', 'ScheduleKeyDeletion', 'PutKeyPolicy', 'DisableKeyRotation'], resources: { ARN: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('BackupsKey'), 'Arn'] }, ...(name === 'primary' ? [{ 'Fn::GetAtt': [Match.stringLikeRegexp('AlarmsKey'), 'Arn'] }] : [])] } },
      },
      Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('AlarmsTopic') } })],
    });
  });
});

test('the primary bucket: one writer per run document', () => {
  const statements = bucketStatements(primaryTemplate);
  const writers = (sid: string) => JSON.stringify(statements[sid]?.Condition?.ArnNotLike?.['aws:PrincipalArn']);
  expect(statements.OnlyWritersVerification).toMatchObject({ Effect: 'Deny', Action: 's3:PutObject' });
  expect(writers('OnlyWritersVerification')).toMatch(/BackupRunCommitServiceRole/);
  expect(writers('OnlyWritersOffsite')).toMatch(/BackupRunAwaitOffsiteRole/);
  expect(writers('OnlyWritersDrills')).toContain(':role/lifeboat/drill/*');
});

test('the offsite bucket: primary readers admitted by role path, read only; no principal writes runs but the admins; no expiring lifecycle', () => {
  const statements = bucketStatements(offsiteTemplate);
  const readers = ['await-offsite', 'drill', 'operator'].map((path) => `arn:aws:iam::111111111111:role/lifeboat/${path}/*`);
  expect(statements.AllowReadsFromPrimaryReaders).toMatchObject({
    Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111111111111:root' }, Action: ['s3:GetObject', 's3:GetObjectVersion'],
    Condition: { ArnLike: { 'aws:PrincipalArn': readers } },
  });
  expect(statements.AllowListingFromPrimaryReaders).toMatchObject({ Action: ['s3:ListBucket', 's3:ListBucketVersions'], Condition: { ArnLike: { 'aws:PrincipalArn': readers } } });
  expect(statements.OnlyWritersOffsiteRuns).toMatchObject({ Effect: 'Deny', Action: 's3:PutObject' });
  const keyPolicy = Object.values(offsiteTemplate.findResources('AWS::KMS::Key')).flatMap((key) => key.Properties.KeyPolicy.Statement as Statement[]);
  expect(keyPolicy.find((statement) => statement.Sid === 'AllowDecryptForPrimaryReaders')).toMatchObject({
    Action: 'kms:Decrypt', Condition: { ArnLike: { 'aws:PrincipalArn': readers }, StringEquals: { 'kms:ViaService': 's3.eu-central-1.amazonaws.com' } },
  });
  const rules = (backupBucket(offsiteTemplate).props.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
  expect(rules.filter((rule) => rule.ExpirationInDays !== undefined)).toEqual([]);
});

test('the offsite stack: its own restore role (reads only), its own pruner, an alarm on the pruner\'s dead letters', () => {
  offsiteTemplate.hasResourceProperties('AWS::IAM::Role', {
    RoleName: 'Lifeboat-offsite-restore-eu-central-1',
    Path: '/lifeboat/operator/',
    AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { AWS: 'arn:aws:iam::222222222222:root' } })] },
  });
  const restorePolicy = Object.values(offsiteTemplate.findResources('AWS::IAM::ManagedPolicy'))[0];
  const actions = (restorePolicy.Properties.PolicyDocument.Statement as Statement[]).flatMap((statement) => [statement.Action].flat());
  expect(actions.filter((action) => /Put|Delete|Bypass/.test(action))).toEqual([]);
  offsiteTemplate.hasResourceProperties('AWS::Lambda::Function', { Description: Match.stringLikeRegexp('retention') });
  offsiteTemplate.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0, AlarmActions: [{ Ref: Match.stringLikeRegexp('AlarmsTopic') }],
  });
});

test('config: the offsite bucket\'s Object Lock mode, a break-glass role and deployment roles are validated', () => {
  const base = { primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' }, sources: [{
    name: 'orders', engine: 'postgres', tier: 'tier1',
    connection: { host: 'db', database: 'orders', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
    network: { vpcId: 'vpc-0a1b2c3d' },
  }] };
  expect(parseConfig({ ...base, objectLock: { mode: 'governance', offsiteMode: 'compliance' } }).objectLock).toEqual({ mode: 'GOVERNANCE', offsiteMode: 'COMPLIANCE' });
  expect(parseConfig(base).objectLock).toEqual({ mode: 'GOVERNANCE', offsiteMode: 'GOVERNANCE' });
  expect(() => parseConfig({ ...base, breakGlassRoleArn: 'admin' })).toThrow(/breakGlassRoleArn: invalid role ARN \(valid: arn:aws:iam::<12-digit account>:role\/<name>\)/);
  expect(() => parseConfig({ ...base, deploymentRoleArns: [] })).toThrow(/deploymentRoleArns/);
});
