/**
 * What IAM evaluates for an RDS SDK call (local/iam/calls.ts): the action, the resources the
 * Service Authorization Reference names (the new resource and its source, the groups a restore
 * requires), the tag context and the implied rds:AddTagsToResource, the KMS requests of a call
 * that names a key, in the region of the client making the call. And that the evaluator takes
 * those requests as AWS would: a scoped policy allows exactly its resources.
 */
import { ResolvedStack, type CfnTemplate } from '../../local/cfn/resolve';
import { requestsForCall, UnmappedCallError } from '../../local/iam/calls';
import { IamEvaluator } from '../../local/iam/evaluator';
import { IamModel } from '../../local/iam/model';

const ACCOUNT = '111111111111';
const PRIMARY = 'eu-west-1';
const OFFSITE = 'eu-central-1';
const db = (id: string, region = PRIMARY) => `arn:aws:rds:${region}:${ACCOUNT}:db:${id}`;

const primaryTemplate: CfnTemplate = {
  Resources: {
    Role: {
      Type: 'AWS::IAM::Role',
      Properties: { AssumeRolePolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'lambda.amazonaws.com' } }] } },
    },
    Policy: {
      Type: 'AWS::IAM::Policy',
      Properties: {
        Roles: [{ Ref: 'Role' }],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: 'rds:DescribeDBInstances', Resource: `arn:aws:rds:${PRIMARY}:${ACCOUNT}:db:orders` },
            {
              Effect: 'Allow',
              Action: ['rds:RestoreDBInstanceToPointInTime', 'rds:AddTagsToResource'],
              Resource: [db('orders'), db('lifeboat-drill-*'), `arn:aws:rds:${PRIMARY}:${ACCOUNT}:subgrp:orders-subnets`, `arn:aws:rds:${PRIMARY}:${ACCOUNT}:og:*`, `arn:aws:rds:${PRIMARY}:${ACCOUNT}:pg:*`],
              Condition: { StringEquals: { 'aws:RequestTag/lifeboat:drill': 'orders' } },
            },
            { Effect: 'Allow', Action: 'rds:StartDBInstanceAutomatedBackupsReplication', Resource: [db('orders'), `arn:aws:rds:${OFFSITE}:${ACCOUNT}:auto-backup:*`] },
            { Effect: 'Allow', Action: ['kms:CreateGrant', 'kms:DescribeKey'], Resource: '*' },
          ],
        },
      },
    },
  },
};
const offsiteTemplate: CfnTemplate = {
  Resources: {
    OffsiteKey: {
      Type: 'AWS::KMS::Key',
      Properties: { KeyPolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }] } },
    },
  },
};
const primary = new ResolvedStack(primaryTemplate, { stackName: 'Lifeboat-Primary', account: ACCOUNT, region: PRIMARY });
const offsite = new ResolvedStack(offsiteTemplate, { stackName: 'Lifeboat-Offsite', account: ACCOUNT, region: OFFSITE });
const model = IamModel.fromApp({ config: undefined as never, primary, offsite });
const principal = primary.resolve({ 'Fn::GetAtt': ['Role', 'Arn'] }) as string;
const offsiteKey = offsite.resolve({ 'Fn::GetAtt': ['OffsiteKey', 'Arn'] }) as string;

const requests = (command: string, input: Record<string, unknown>, region = PRIMARY) =>
  requestsForCall(model, principal, 'RDS', command, input, region).requests.map(({ action, resource, context }) => ({ action, resource, context }));

describe('RDS calls as IAM requests', () => {
  test.each<[string, string, Record<string, unknown>, string, unknown[]]>([
    ['DescribeDBInstances of one instance: that instance', 'DescribeDBInstances', { DBInstanceIdentifier: 'orders' }, PRIMARY,
      [{ action: 'rds:DescribeDBInstances', resource: db('orders'), context: undefined }]],
    ['DescribeDBInstances with no identifier: every instance of the region', 'DescribeDBInstances', {}, PRIMARY,
      [{ action: 'rds:DescribeDBInstances', resource: `arn:aws:rds:${PRIMARY}:${ACCOUNT}:db:*`, context: undefined }]],
    ['DescribeDBInstanceAutomatedBackups in the offsite region by ARN: that backup', 'DescribeDBInstanceAutomatedBackups',
      { DBInstanceAutomatedBackupsArn: `arn:aws:rds:${OFFSITE}:${ACCOUNT}:auto-backup:ab-abc` }, OFFSITE,
      [{ action: 'rds:DescribeDBInstanceAutomatedBackups', resource: `arn:aws:rds:${OFFSITE}:${ACCOUNT}:auto-backup:ab-abc`, context: undefined }]],
    ['ModifyDBInstance: the instance', 'ModifyDBInstance', { DBInstanceIdentifier: 'orders', BackupRetentionPeriod: 14, ApplyImmediately: true }, PRIMARY,
      [{ action: 'rds:ModifyDBInstance', resource: db('orders'), context: undefined }]],
    ['DeleteDBCluster skipping the final snapshot: the cluster only', 'DeleteDBCluster', { DBClusterIdentifier: 'drill', SkipFinalSnapshot: true }, PRIMARY,
      [{ action: 'rds:DeleteDBCluster', resource: `arn:aws:rds:${PRIMARY}:${ACCOUNT}:cluster:drill`, context: undefined }]],
  ])('%s', (_what, command, input, region, expected) => {
    expect(requests(command, input, region)).toEqual(expected);
  });

  test('a tagged restore: the new instance with the tag context, its source, the subnet group, the default groups by wildcard, and AddTagsToResource', () => {
    const tagContext = { 'aws:TagKeys': ['lifeboat:drill'], 'aws:RequestTag/lifeboat:drill': 'orders' };
    expect(requests('RestoreDBInstanceToPointInTime', {
      SourceDBInstanceIdentifier: 'orders', TargetDBInstanceIdentifier: 'lifeboat-drill-orders-1', UseLatestRestorableTime: true,
      DBSubnetGroupName: 'orders-subnets', Tags: [{ Key: 'lifeboat:drill', Value: 'orders' }],
    })).toEqual([
      { action: 'rds:RestoreDBInstanceToPointInTime', resource: db('lifeboat-drill-orders-1'), context: tagContext },
      { action: 'rds:RestoreDBInstanceToPointInTime', resource: db('orders'), context: tagContext },
      { action: 'rds:RestoreDBInstanceToPointInTime', resource: `arn:aws:rds:${PRIMARY}:${ACCOUNT}:subgrp:orders-subnets`, context: tagContext },
      { action: 'rds:RestoreDBInstanceToPointInTime', resource: `arn:aws:rds:${PRIMARY}:${ACCOUNT}:og:*`, context: tagContext },
      { action: 'rds:RestoreDBInstanceToPointInTime', resource: `arn:aws:rds:${PRIMARY}:${ACCOUNT}:pg:*`, context: tagContext },
      { action: 'rds:AddTagsToResource', resource: db('lifeboat-drill-orders-1'), context: tagContext },
    ]);
  });

  test('replication started in the offsite region with the offsite key: the source, the backup it creates there, and the key through RDS of that region', () => {
    const via = { 'kms:ViaService': `rds.${OFFSITE}.amazonaws.com` };
    expect(requests('StartDBInstanceAutomatedBackupsReplication', { SourceDBInstanceArn: db('orders'), BackupRetentionPeriod: 7, KmsKeyId: offsiteKey }, OFFSITE)).toEqual([
      { action: 'rds:StartDBInstanceAutomatedBackupsReplication', resource: db('orders'), context: undefined },
      { action: 'rds:StartDBInstanceAutomatedBackupsReplication', resource: `arn:aws:rds:${OFFSITE}:${ACCOUNT}:auto-backup:*`, context: undefined },
      { action: 'kms:CreateGrant', resource: offsiteKey, context: { ...via, 'kms:GrantIsForAWSResource': 'true' } },
      { action: 'kms:DescribeKey', resource: offsiteKey, context: via },
    ]);
  });

  test('a cross-region cluster snapshot copy: the source snapshot by ARN, the copy in the calling region, its tags and its key', () => {
    const source = `arn:aws:rds:${PRIMARY}:${ACCOUNT}:cluster-snapshot:rds:ledger-2026-12-04-03-10`;
    const target = `arn:aws:rds:${OFFSITE}:${ACCOUNT}:cluster-snapshot:lifeboat-ledger-202612040310`;
    const tagContext = { 'aws:TagKeys': ['lifeboat:source'], 'aws:RequestTag/lifeboat:source': 'ledger' };
    expect(requests('CopyDBClusterSnapshot', {
      SourceDBClusterSnapshotIdentifier: source, TargetDBClusterSnapshotIdentifier: 'lifeboat-ledger-202612040310', KmsKeyId: offsiteKey,
      Tags: [{ Key: 'lifeboat:source', Value: 'ledger' }],
    }, OFFSITE).map((request) => [request.action, request.resource, request.context])).toEqual([
      ['rds:CopyDBClusterSnapshot', source, tagContext],
      ['rds:CopyDBClusterSnapshot', target, tagContext],
      ['rds:AddTagsToResource', target, tagContext],
      ['kms:CreateGrant', offsiteKey, expect.objectContaining({ 'kms:ViaService': `rds.${OFFSITE}.amazonaws.com` })],
      ['kms:DescribeKey', offsiteKey, { 'kms:ViaService': `rds.${OFFSITE}.amazonaws.com` }],
    ]);
  });

  test('without a region, the call is the principal\'s region; a denial is AccessDenied', () => {
    const { requests: mapped, errorName } = requestsForCall(model, principal, 'RDS', 'DescribeDBClusters', { DBClusterIdentifier: 'ledger' });
    expect(errorName).toBe('AccessDenied');
    expect(mapped[0].resource).toMatch(/^arn:aws:rds:[a-z0-9-]+:111111111111:cluster:ledger$/);
  });

  test('an unmapped command fails loudly, naming it', () => {
    expect(() => requests('RebootDBInstance', { DBInstanceIdentifier: 'orders' })).toThrow(UnmappedCallError);
    expect(() => requests('RebootDBInstance', { DBInstanceIdentifier: 'orders' })).toThrow('no IAM mapping for RDS RebootDBInstance');
  });
});

describe('the evaluator on RDS requests', () => {
  const evaluator = new IamEvaluator(model);
  const decide = async (command: string, input: Record<string, unknown>, region = PRIMARY) => {
    const decisions = [];
    for (const request of requestsForCall(model, principal, 'RDS', command, input, region).requests) decisions.push(await evaluator.evaluate(request));
    return decisions.map((decision) => [decision.request.action, decision.request.resource, decision.allowed]);
  };

  test('a describe scoped to one instance allows it and denies every other', async () => {
    expect(await decide('DescribeDBInstances', { DBInstanceIdentifier: 'orders' })).toEqual([['rds:DescribeDBInstances', db('orders'), true]]);
    expect(await decide('DescribeDBInstances', { DBInstanceIdentifier: 'billing' })).toEqual([['rds:DescribeDBInstances', db('billing'), false]]);
  });

  test('a tagged drill restore is allowed; without the tag the tag condition denies the new instance; another subnet group is denied', async () => {
    const restore = { SourceDBInstanceIdentifier: 'orders', TargetDBInstanceIdentifier: 'lifeboat-drill-orders-1', DBSubnetGroupName: 'orders-subnets', UseLatestRestorableTime: true };
    expect((await decide('RestoreDBInstanceToPointInTime', { ...restore, Tags: [{ Key: 'lifeboat:drill', Value: 'orders' }] })).every(([, , allowed]) => allowed)).toBe(true);
    expect(await decide('RestoreDBInstanceToPointInTime', restore)).toContainEqual(['rds:RestoreDBInstanceToPointInTime', db('lifeboat-drill-orders-1'), false]);
    expect(await decide('RestoreDBInstanceToPointInTime', { ...restore, DBSubnetGroupName: 'default', Tags: [{ Key: 'lifeboat:drill', Value: 'orders' }] }))
      .toContainEqual(['rds:RestoreDBInstanceToPointInTime', `arn:aws:rds:${PRIMARY}:${ACCOUNT}:subgrp:default`, false]);
  });

  test('replication is allowed into the offsite region only', async () => {
    const input = { SourceDBInstanceArn: db('orders'), BackupRetentionPeriod: 7, KmsKeyId: offsiteKey };
    expect((await decide('StartDBInstanceAutomatedBackupsReplication', input, OFFSITE)).every(([, , allowed]) => allowed)).toBe(true);
    expect(await decide('StartDBInstanceAutomatedBackupsReplication', { SourceDBInstanceArn: db('orders'), BackupRetentionPeriod: 7 }, 'us-east-1'))
      .toContainEqual(['rds:StartDBInstanceAutomatedBackupsReplication', `arn:aws:rds:us-east-1:${ACCOUNT}:auto-backup:*`, false]);
  });
});
