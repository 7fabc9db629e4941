/**
 * NativePitrChecks and NativePitrAlarms: the function and its schedule, the role's statements
 * (reads scoped to the sources, writes only for managed sources, the offsite key only through
 * RDS in the offsite region), the alarms' names, thresholds and missing-data treatment, and
 * cdk-nag.
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Source } from '../../lib/config/types';
import { nativeAlarmNames, NativePitrAlarms, NativePitrChecks } from '../../lib/constructs/native-pitr';
import { parseNativeSources } from '../../lib/rds/native-checks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig, tier1, tier3 } from '../fixtures/config';

const ACCOUNT = '111111111111';
const OFFSITE_KEY = `arn:aws:kms:eu-central-1:${ACCOUNT}:key/0f0e0d0c-0b0a-4909-8807-060504030201`;

function rdsSource(name: string, kind: 'instance' | 'cluster', identifier: string, opts: { manage?: boolean; tier?: typeof tier1 } = {}): Source {
  const tier = opts.tier ?? tier1;
  return {
    ...testConfig.sources[0],
    name,
    tier,
    rds: { kind, identifier, detected: true, region: 'eu-west-1', requiredWindowDays: 14, manage: opts.manage ?? false, drill: { securityGroupIds: [] } },
  };
}
const orders = rdsSource('orders', 'instance', 'orders-db', { manage: true });
const reports = rdsSource('reports', 'instance', 'reports-db', { tier: tier3 });
const ledger = rdsSource('ledger', 'cluster', 'ledger', { manage: true });
const sources = [orders, reports, ledger];

function build(list: readonly Source[] = sources): { app: App; template: Template } {
  const app = testApp();
  const stack = new Stack(app, 'Primary', { env: { account: ACCOUNT, region: 'eu-west-1' } });
  const topic = new sns.Topic(stack, 'Topic', { enforceSSL: true, masterKey: new kms.Key(stack, 'TopicKey', { enableKeyRotation: true }) });
  new NativePitrChecks(stack, 'NativePitrChecks', { appName: 'Lifeboat', sources: list, offsite: { region: 'eu-central-1', keyArn: OFFSITE_KEY } });
  new NativePitrAlarms(stack, 'NativePitrAlarms', { sources: list, alarmTopic: topic, alarmNamePrefix: 'Lifeboat', offsiteRegion: 'eu-central-1' });
  return { app, template: Template.fromStack(stack) };
}
const { template } = build();

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
function statementsOf(built: Template): Statement[] {
  return Object.values(built.findResources('AWS::IAM::Policy'))
    .filter((policy) => JSON.stringify(policy.Properties.Roles).includes('NativePitrChecksRole'))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}
const bySid = (list: Statement[], sid: string) => list.find((statement) => statement.Sid === sid);
const set = (resources: unknown) => [resources].flat().map((resource) => (typeof resource === 'string' ? resource : JSON.stringify(resource))).sort();
const db = (id: string, region = 'eu-west-1') => `arn:aws:rds:${region}:${ACCOUNT}:db:${id}`;
/** CDK renders a formatted ARN with the partition as a token. */
const resolvedArns = (resources: unknown) => set(resources).map((text) => text.replace(/\{"Fn::Join":\["",\["arn:",\{"Ref":"AWS::Partition"\},"(.*)"\]\]\}/, 'arn:aws$1'));

describe('NativePitrChecks', () => {
  test('a Node 22 function with the compact sources, the offsite region and key', () => {
    const fn = Object.values(template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('native point-in-time') } }))[0];
    expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'] });
    const env = fn.Properties.Environment.Variables;
    expect(env).toMatchObject({ LIFEBOAT_OFFSITE_REGION: 'eu-central-1', LIFEBOAT_OFFSITE_KEY_ARN: OFFSITE_KEY, POWERTOOLS_SERVICE_NAME: 'lifeboat-native-checks', POWERTOOLS_METRICS_NAMESPACE: 'Lifeboat' });
    expect(parseNativeSources(env.LIFEBOAT_NATIVE_SOURCES_JSON)).toEqual([
      { name: 'orders', kind: 'instance', identifier: 'orders-db', region: 'eu-west-1', requiredWindowDays: 14, rpoSeconds: tier1.rpoSeconds, manage: true },
      { name: 'reports', kind: 'instance', identifier: 'reports-db', region: 'eu-west-1', requiredWindowDays: 14, rpoSeconds: tier3.rpoSeconds, manage: false },
      { name: 'ledger', kind: 'cluster', identifier: 'ledger', region: 'eu-west-1', requiredWindowDays: 14, rpoSeconds: tier1.rpoSeconds, manage: true },
    ]);
  });

  test('every 5 minutes, with a bounded retry', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(5 minutes)',
      Description: Match.stringLikeRegexp('native PITR checks'),
      Target: Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 240 } }),
    });
  });

  test('reads exactly the sources: instances and their own automated backups, clusters, the offsite region\'s replicated backups', () => {
    const list = statementsOf(template);
    expect(set(bySid(list, 'ReadInstances')?.Action)).toEqual(['rds:DescribeDBInstanceAutomatedBackups', 'rds:DescribeDBInstances']);
    expect(resolvedArns(bySid(list, 'ReadInstances')?.Resource)).toEqual([db('orders-db'), db('reports-db')]);
    expect(resolvedArns(bySid(list, 'ReadClusters')?.Resource)).toEqual([`arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:ledger`]);
    expect(resolvedArns(bySid(list, 'ReadReplicatedBackups')?.Resource)).toEqual([`arn:aws:rds:eu-central-1:${ACCOUNT}:auto-backup:*`]);
  });

  test('writes only the managed sources; the offsite key only through RDS in the offsite region', () => {
    const list = statementsOf(template);
    expect(bySid(list, 'RaiseInstanceRetention')).toMatchObject({ Action: 'rds:ModifyDBInstance' });
    expect(resolvedArns(bySid(list, 'RaiseInstanceRetention')?.Resource)).toEqual([db('orders-db')]);
    expect(resolvedArns(bySid(list, 'ReplicateAutomatedBackups')?.Resource)).toEqual([`arn:aws:rds:eu-central-1:${ACCOUNT}:auto-backup:*`, db('orders-db')]);
    expect(resolvedArns(bySid(list, 'RaiseClusterRetention')?.Resource)).toEqual([`arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:ledger`]);
    expect(bySid(list, 'EncryptReplicasWithOffsiteKey')).toMatchObject({
      Action: ['kms:CreateGrant', 'kms:DescribeKey'], Resource: OFFSITE_KEY, Condition: { StringEquals: { 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' } },
    });
    const actions = list.flatMap((statement) => [statement.Action].flat());
    expect(actions.filter((action) => /Delete|Stop|Restore|Create(?!Grant)|\*/.test(action))).toEqual([]);
  });

  test('with no managed source the role can change nothing', () => {
    const list = statementsOf(build([reports]).template);
    expect(list.map((statement) => statement.Sid)).toEqual(['ReadInstances', 'ReadReplicatedBackups']);
  });

  test('fails when the sources would not fit Lambda\'s 4 KB environment, saying how to split them', () => {
    const stack = new Stack(testApp(), 'Many', { env: { account: ACCOUNT, region: 'eu-west-1' } });
    const many = Array.from({ length: 40 }, (_, index) => rdsSource(`source-${index}`, 'instance', `source-${index}-db`));
    expect(() => new NativePitrChecks(stack, 'Checks', { appName: 'Lifeboat', sources: many, offsite: { region: 'eu-central-1', keyArn: OFFSITE_KEY } }))
      .toThrow(/^NativePitrChecks: 40 sources take \d+ bytes of the function's environment \(Lambda holds 4 KB in all\): split them/);
  });

  test('fails on a source without rds, naming it', () => {
    const stack = new Stack(testApp(), 'Bad', { env: { account: ACCOUNT, region: 'eu-west-1' } });
    expect(() => new NativePitrChecks(stack, 'Checks', { appName: 'Lifeboat', sources: [testConfig.sources[0]], offsite: { region: 'eu-central-1', keyArn: OFFSITE_KEY } }))
      .toThrow(`NativePitrChecks: sources without rds: ${testConfig.sources[0].name}`);
  });
});

describe('NativePitrAlarms', () => {
  const alarmNamed = (name: string) => {
    const found = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: name } }));
    expect(found).toHaveLength(1);
    return found[0].Properties as Record<string, unknown>;
  };

  test('the names are <prefix>-native-retention|rpo|offsite-<source>', () => {
    expect(nativeAlarmNames('Lifeboat', 'orders')).toEqual({ retention: 'Lifeboat-native-retention-orders', rpo: 'Lifeboat-native-rpo-orders', offsite: 'Lifeboat-native-offsite-orders' });
  });

  test.each([
    ['retention: a shortfall of a day or more, missing data not breaching', 'Lifeboat-native-retention-orders',
      { MetricName: 'NativeRetentionShortfallDays', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching', Period: 300 }],
    ['RPO of a tier-1 instance: 15 minutes, missing data breaching', 'Lifeboat-native-rpo-orders',
      { MetricName: 'NativeRestorableAgeSeconds', Threshold: 900, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'breaching', Period: 300 }],
    ['RPO of a tier-3 instance: its 24 h', 'Lifeboat-native-rpo-reports', { MetricName: 'NativeRestorableAgeSeconds', Threshold: tier3.rpoSeconds, TreatMissingData: 'breaching' }],
    ['offsite of an instance: RPO + 1 h, every 5 minutes, missing data breaching', 'Lifeboat-native-offsite-orders',
      { MetricName: 'NativeOffsiteAgeSeconds', Threshold: 900 + 3_600, TreatMissingData: 'breaching', Period: 300 }],
    ['offsite of a cluster: 2 days on the copier\'s hourly measure', 'Lifeboat-native-offsite-ledger',
      { MetricName: 'NativeOffsiteAgeSeconds', Threshold: 2 * 86_400, TreatMissingData: 'breaching', Period: 3_600 }],
  ])('%s', (_what, name, expected) => {
    expect(alarmNamed(name)).toMatchObject({
      Namespace: 'Lifeboat', Dimensions: [{ Name: 'source', Value: name.split('-').at(-1) }], Statistic: 'Maximum', EvaluationPeriods: 1, ...expected,
    });
  });

  test('an RPO under 15 minutes is alarmed at 15 (LatestRestorableTime trails by about 5)', () => {
    const fast = rdsSource('fast', 'instance', 'fast-db', { tier: { ...tier1, rpoSeconds: 300 } });
    const built = build([fast]).template;
    built.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'Lifeboat-native-rpo-fast', Threshold: 900 });
  });

  test('every alarm notifies the topic on ALARM and OK', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: Match.stringLikeRegexp('-native-') } }));
    expect(alarms).toHaveLength(9);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toHaveLength(1);
      expect(alarm.Properties.OKActions).toEqual(alarm.Properties.AlarmActions);
    }
  });

  test('descriptions say the source, what is wrong, the required value and the exact command to check first (within CloudWatch\'s 1024 characters)', () => {
    const retention = String(alarmNamed('Lifeboat-native-retention-orders').AlarmDescription);
    expect(retention).toContain('orders: the backup retention period of RDS instance orders-db (eu-west-1) is shorter than the 14 days');
    expect(retention).toContain('aws rds describe-db-instances --db-instance-identifier orders-db --region eu-west-1');
    const rpo = String(alarmNamed('Lifeboat-native-rpo-ledger').AlarmDescription);
    expect(rpo).toContain('LatestRestorableTime of RDS cluster ledger (eu-west-1) is older than 15 min');
    expect(rpo).toContain('aws rds describe-db-clusters --db-cluster-identifier ledger --region eu-west-1');
    const offsite = JSON.stringify(alarmNamed('Lifeboat-native-offsite-orders').AlarmDescription);
    expect(offsite).toContain('aws rds describe-db-instance-automated-backups --db-instance-identifier orders-db --region eu-central-1');
    expect(offsite).toContain('KMS key stops it silently');
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: Match.stringLikeRegexp('-native-') } }))) {
      const text = typeof alarm.Properties.AlarmDescription === 'string' ? alarm.Properties.AlarmDescription : JSON.stringify(alarm.Properties.AlarmDescription);
      expect(text.length).toBeLessThanOrEqual(1024);
    }
  });

  test('bySource holds the three alarms of each source', () => {
    const stack = new Stack(testApp(), 'BySource', { env: { account: ACCOUNT, region: 'eu-west-1' } });
    const alarms = new NativePitrAlarms(stack, 'Alarms', { sources: [orders], alarmTopic: new sns.Topic(stack, 'Topic') });
    expect(Object.keys(alarms.bySource)).toEqual(['orders']);
    expect(alarms.bySource.orders).toHaveLength(3);
    const names = Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm');
    expect(alarms.bySource.orders.map((alarm) => names[stack.getLogicalId(alarm.node.defaultChild as never)].Properties.AlarmName))
      .toEqual(Object.values(nativeAlarmNames('lifeboat', 'orders')));
  });
});

test('cdk-nag AwsSolutions: no unexplained finding', () => {
  const { app } = build();
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});
