import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Source } from '../../lib/config/types';
import { NativeSnapshotCopy, NATIVE_SNAPSHOT_COPY_ROLE_PATH, OFFSITE_COPY_MAX_AGE, OffsiteSnapshotCopy } from '../../lib/constructs/native-snapshot-copy';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';

const PRIMARY = '111111111111';
const OFFSITE = '222222222222';
const OFFSITE_KEY = `arn:aws:kms:eu-central-1:${OFFSITE}:alias/lifeboat-offsite`;

function cluster(name: string, identifier: string): Source {
  return {
    ...testConfig.sources[0],
    name,
    rds: { kind: 'cluster', identifier, detected: true, region: 'eu-west-1', requiredWindowDays: 35, manage: false, drill: { securityGroupIds: [] } },
  };
}
const sources = [cluster('orders', 'orders-aurora'), cluster('billing', 'billing')];

interface Built { app: App; primary: Template; offsite: Template; }
function build(offsiteAccount: string | null = OFFSITE): Built {
  const app = testApp();
  const primaryStack = new Stack(app, 'Primary', { env: { account: PRIMARY, region: 'eu-west-1' } });
  const topic = new sns.Topic(primaryStack, 'Topic', { enforceSSL: true, masterKey: new kms.Key(primaryStack, 'TopicKey', { enableKeyRotation: true }) });
  new NativeSnapshotCopy(primaryStack, 'NativeSnapshotCopy', {
    appName: 'Lifeboat', sources, primaryAccount: PRIMARY, alarmTopic: topic,
    offsite: { region: 'eu-central-1', ...(offsiteAccount ? { account: offsiteAccount } : {}), keyArn: OFFSITE_KEY },
  });
  const offsiteStack = new Stack(app, 'Offsite', { env: { account: offsiteAccount ?? PRIMARY, region: 'eu-central-1' } });
  const key = new kms.Key(offsiteStack, 'OffsiteKey', { enableKeyRotation: true });
  const offsiteTopic = new sns.Topic(offsiteStack, 'Topic', { enforceSSL: true, masterKey: key });
  new OffsiteSnapshotCopy(offsiteStack, 'OffsiteSnapshotCopy', { appName: 'Lifeboat', sources, primaryAccount: PRIMARY, primaryRegion: 'eu-west-1', key, alarmTopic: offsiteTopic });
  return { app, primary: Template.fromStack(primaryStack), offsite: Template.fromStack(offsiteStack) };
}
const { primary, offsite } = build();

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Condition?: unknown; Principal?: unknown };
function statements(template: Template, roleIdPrefix: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(roleIdPrefix))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}
const bySid = (list: Statement[], sid: string) => list.find((statement) => statement.Sid === sid);
const snapshotArn = (region: string, account: string, name: string) => `arn:aws:rds:${region}:${account}:cluster-snapshot:${name}`;
/** Resources as a set (CDK sorts and merges them). */
const set = (resources: unknown) => [resources].flat().map(String).sort();

describe('NativeSnapshotCopy (primary)', () => {
  test('a Node 22 function with the cluster sources, the offsite region, key and account in its environment, under the role the offsite key policy names', () => {
    primary.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Environment: {
        Variables: Match.objectLike({
          LIFEBOAT_SOURCES_JSON: JSON.stringify([
            { name: 'orders', identifier: 'orders-aurora', region: 'eu-west-1', retentionSeconds: sources[0].tier.retentionSeconds },
            { name: 'billing', identifier: 'billing', region: 'eu-west-1', retentionSeconds: sources[1].tier.retentionSeconds },
          ]),
          LIFEBOAT_OFFSITE_REGION: 'eu-central-1',
          LIFEBOAT_OFFSITE_KEY_ARN: OFFSITE_KEY,
          LIFEBOAT_OFFSITE_ACCOUNT: OFFSITE,
          LIFEBOAT_PRIMARY_ACCOUNT: PRIMARY,
          POWERTOOLS_METRICS_NAMESPACE: 'Lifeboat',
        }),
      },
    });
    primary.hasResourceProperties('AWS::IAM::Role', { Path: NATIVE_SNAPSHOT_COPY_ROLE_PATH, AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })] }) });
  });

  test('hourly, by EventBridge Scheduler, with bounded retries', () => {
    primary.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 hour)',
      Target: Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3000 } }),
    });
  });

  test('copies exactly the sources\' automated snapshots into lifeboat-<source>-*, in the offsite region; tags, deletes and shares only those', () => {
    const list = statements(primary, 'NativeSnapshotCopyRole');
    const copies = [snapshotArn('eu-central-1', PRIMARY, 'lifeboat-orders-*'), snapshotArn('eu-central-1', PRIMARY, 'lifeboat-billing-*')];
    expect(bySid(list, 'CopyAutomatedSnapshots')?.Action).toBe('rds:CopyDBClusterSnapshot');
    expect(set(bySid(list, 'CopyAutomatedSnapshots')?.Resource)).toEqual(set([snapshotArn('eu-west-1', PRIMARY, 'rds:orders-aurora-*'), snapshotArn('eu-west-1', PRIMARY, 'rds:billing-*'), ...copies]));
    expect(bySid(list, 'ManageCopies')?.Action).toEqual(['rds:AddTagsToResource', 'rds:DeleteDBClusterSnapshot', 'rds:DescribeDBClusterSnapshotAttributes']);
    expect(set(bySid(list, 'ManageCopies')?.Resource)).toEqual(set(copies));
    expect(bySid(list, 'ShareCopiesWithOffsite')?.Action).toBe('rds:ModifyDBClusterSnapshotAttribute');
    expect(set(bySid(list, 'ShareCopiesWithOffsite')?.Resource)).toEqual(set(copies));
    expect(bySid(list, 'ListClusterSnapshots')).toMatchObject({ Action: 'rds:DescribeDBClusterSnapshots', Resource: '*' });
    // Nothing that deletes a cluster, restores, or touches any other snapshot.
    const actions = list.flatMap((statement) => [statement.Action].flat());
    expect(actions.filter((action) => action.startsWith('rds:')).sort()).toEqual([
      'rds:AddTagsToResource', 'rds:CopyDBClusterSnapshot', 'rds:DeleteDBClusterSnapshot', 'rds:DescribeDBClusterSnapshotAttributes',
      'rds:DescribeDBClusterSnapshots', 'rds:ModifyDBClusterSnapshotAttribute',
    ]);
  });

  test('uses the offsite key (named by alias: keys of the offsite account and region) through RDS there only', () => {
    expect(bySid(statements(primary, 'NativeSnapshotCopyRole'), 'EncryptCopiesWithOffsiteKey')).toMatchObject({
      Action: ['kms:CreateGrant', 'kms:DescribeKey'],
      Resource: `arn:aws:kms:eu-central-1:${OFFSITE}:key/*`,
      Condition: { StringEquals: { 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' } },
    });
  });

  test('one account: no sharing permission, and the function is not told of another account', () => {
    const single = build(null);
    const list = statements(single.primary, 'NativeSnapshotCopyRole');
    expect(bySid(list, 'ShareCopiesWithOffsite')).toBeUndefined();
    const fn = Object.values(single.primary.findResources('AWS::Lambda::Function'))[0];
    expect(fn.Properties.Environment.Variables.LIFEBOAT_OFFSITE_ACCOUNT).toBeUndefined();
  });

  test('per source an alarm <appName>-native-offsite-<source> on NativeOffsiteAgeSeconds, missing data breaching', () => {
    for (const source of sources) {
      primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: `Lifeboat-native-offsite-${source.name}`,
        Namespace: 'Lifeboat',
        MetricName: 'NativeOffsiteAgeSeconds',
        Dimensions: [{ Name: 'source', Value: source.name }],
        Threshold: Math.max(OFFSITE_COPY_MAX_AGE.toSeconds(), source.tier.rpoSeconds),
        TreatMissingData: 'breaching',
        ComparisonOperator: 'GreaterThanThreshold',
      });
    }
  });

  test.each([
    ['a source that is no DB cluster', [{ ...testConfig.sources[0] }], /source "orders" is not an RDS DB cluster source/],
    ['a source whose copies\' names RDS refuses', [cluster('a--b', 'ab')], /"--"/],
    ['no source', [], /no DB cluster source/],
  ])('fails when given %s', (_what, given, message) => {
    const stack = new Stack(testApp(), 'Bad', { env: { account: PRIMARY, region: 'eu-west-1' } });
    expect(() => new NativeSnapshotCopy(stack, 'Copy', { appName: 'Lifeboat', sources: given, primaryAccount: PRIMARY, offsite: { region: 'eu-central-1', keyArn: OFFSITE_KEY } }))
      .toThrow(message);
  });
});

describe('OffsiteSnapshotCopy (offsite account)', () => {
  test('the key lets the primary copier role, and only it, use the key through RDS in the offsite region', () => {
    const keys = offsite.findResources('AWS::KMS::Key');
    const policy = Object.values(keys)[0].Properties.KeyPolicy.Statement as Statement[];
    expect(bySid(policy, 'AllowRdsSnapshotCopiesFromPrimaryCopier')).toMatchObject({
      Action: ['kms:CreateGrant', 'kms:DescribeKey'],
      Principal: { AWS: `arn:aws:iam::${PRIMARY}:root` },
      Condition: {
        ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${PRIMARY}:role/lifeboat/native-snapshot-copy/*` },
        StringEquals: { 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' },
      },
    });
  });

  test('copies the primary\'s shared lifeboat-<source>-* snapshots into its own, deletes only its own', () => {
    const list = statements(offsite, 'OffsiteSnapshotCopyRole');
    const own = [snapshotArn('eu-central-1', OFFSITE, 'lifeboat-orders-*'), snapshotArn('eu-central-1', OFFSITE, 'lifeboat-billing-*')];
    expect(bySid(list, 'CopySharedSnapshots')?.Action).toBe('rds:CopyDBClusterSnapshot');
    expect(set(bySid(list, 'CopySharedSnapshots')?.Resource)).toEqual(set([snapshotArn('eu-central-1', PRIMARY, 'lifeboat-orders-*'), snapshotArn('eu-central-1', PRIMARY, 'lifeboat-billing-*'), ...own]));
    expect(bySid(list, 'ManageCopies')?.Action).toEqual(['rds:AddTagsToResource', 'rds:DeleteDBClusterSnapshot']);
    expect(set(bySid(list, 'ManageCopies')?.Resource)).toEqual(set(own));
    expect(bySid(list, 'EncryptCopiesWithKey')).toMatchObject({ Action: ['kms:CreateGrant', 'kms:DescribeKey'], Condition: { StringEquals: { 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' } } });
  });

  test('per source an alarm <appName>-offsite-native-copy-<source>, missing data breaching, ALARM and OK to the topic', () => {
    const topic = Object.keys(offsite.findResources('AWS::SNS::Topic'))[0];
    for (const source of sources) {
      offsite.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: `Lifeboat-offsite-native-copy-${source.name}`,
        MetricName: 'NativeOffsiteAgeSeconds',
        Dimensions: [{ Name: 'source', Value: source.name }],
        TreatMissingData: 'breaching',
        AlarmActions: [{ Ref: topic }],
        OKActions: [{ Ref: topic }],
      });
    }
    offsite.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(1 hour)' });
  });
});

test('cdk-nag AwsSolutions: no unexplained finding in either stack', () => {
  const { app } = build();
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});
