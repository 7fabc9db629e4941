import { Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { rpoAlarmThresholdSeconds, Watchdog } from '../../lib/constructs/watchdog';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';

function watchdogStack(app = testApp(), sources = testConfig.sources): Stack {
  const stack = new Stack(app, 'WatchdogTest', { env: { account: '111111111111', region: 'eu-west-1' } });
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const bucket = new s3.Bucket(stack, 'Bucket', {
    encryptionKey: key, enforceSSL: true, versioned: true, blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    serverAccessLogsPrefix: 'logs/',
  });
  const topic = new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true });
  new Watchdog(stack, 'Watchdog', { sources, bucket, bucketKey: key, alarmTopic: topic });
  return stack;
}
const template = Template.fromStack(watchdogStack());
const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
const idOf = (type: string, prefix: string) => Object.keys(json.Resources).find((id) => json.Resources[id].Type === type && id.startsWith(prefix)) as string;

test('a Node 22 arm64 function with the bucket and the sources with their RPO in its environment', () => {
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'nodejs22.x',
    Architectures: ['arm64'],
    Environment: {
      Variables: {
        LIFEBOAT_BUCKET: { Ref: idOf('AWS::S3::Bucket', 'Bucket') },
        LIFEBOAT_SOURCES_JSON: JSON.stringify([{ name: 'orders', rpoSeconds: 900 }, { name: 'analytics', rpoSeconds: 86_400 }]),
        POWERTOOLS_METRICS_NAMESPACE: 'Lifeboat',
        POWERTOOLS_SERVICE_NAME: 'lifeboat-watchdog',
      },
    },
  });
});

test('invoked every 5 minutes by EventBridge Scheduler with bounded retries', () => {
  template.resourceCountIs('AWS::Scheduler::Schedule', 1);
  template.hasResourceProperties('AWS::Scheduler::Schedule', {
    ScheduleExpression: 'rate(5 minutes)',
    State: 'ENABLED',
    Target: Match.objectLike({
      Arn: { 'Fn::GetAtt': [idOf('AWS::Lambda::Function', 'WatchdogFunction'), 'Arn'] },
      RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 240 },
    }),
  });
});

test('per source an RPO alarm: age of the last verified backup above the RPO, missing data breaching, ALARM and OK to the topic', () => {
  const topic = { Ref: idOf('AWS::SNS::Topic', 'Topic') };
  template.resourceCountIs('AWS::CloudWatch::Alarm', 2 * testConfig.sources.length);
  for (const source of testConfig.sources) {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Lifeboat',
      MetricName: 'SecondsSinceVerifiedBackup',
      Dimensions: [{ Name: 'source', Value: source.name }],
      Statistic: 'Maximum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: rpoAlarmThresholdSeconds(source.tier),
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'breaching',
      AlarmActions: [topic],
      OKActions: [topic],
      AlarmDescription: Match.stringLikeRegexp(`^Lifeboat: ${source.name} has no verified backup .*the backup schedule of ${source.name} may be disabled, a role may have lost a permission, or every run fails: see the backup-run executions`),
    });
  }
});

test('per source an offsite alarm: newest offsite-confirmed backup older than RPO + 15 min, missing data not breaching', () => {
  const topic = { Ref: idOf('AWS::SNS::Topic', 'Topic') };
  for (const source of testConfig.sources) {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Lifeboat',
      MetricName: 'SecondsSinceOffsiteBackup',
      Dimensions: [{ Name: 'source', Value: source.name }],
      Period: 300,
      Threshold: rpoAlarmThresholdSeconds(source.tier) + 900,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic],
      OKActions: [topic],
      AlarmDescription: Match.stringLikeRegexp(`^Lifeboat: ${source.name} has no backup confirmed in the offsite region`),
    });
  }
});

test('per source only its two alarms: a second source adds two resources and nothing else', () => {
  const oneSource = Template.fromStack(watchdogStack(testApp(), testConfig.sources.slice(0, 1))).toJSON() as { Resources: Record<string, unknown> };
  const count = (resources: Record<string, unknown>) => Object.keys(resources).length;
  expect(count(json.Resources) - count(oneSource.Resources)).toBe(2);
});

test('least privilege: reads the JSON documents of runs (never an artifact), lists runs/, decrypts; never writes or deletes', () => {
  const roleRef = JSON.stringify((json.Resources[idOf('AWS::Lambda::Function', 'WatchdogFunction')].Properties.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]);
  type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
  const statements = Object.values(json.Resources)
    .filter((resource) => resource.Type === 'AWS::IAM::Policy' && JSON.stringify(resource.Properties.Roles).includes(roleRef))
    .flatMap((resource) => (resource.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  const actions = statements.flatMap((statement) => [statement.Action].flat()).sort();
  expect(actions).toEqual(['kms:Decrypt', 's3:GetObject', 's3:GetObjectVersion', 's3:ListBucket']);
  expect(statements.every((statement) => statement.Effect === 'Allow')).toBe(true);
  const bySid = Object.fromEntries(statements.map((statement) => [[statement.Action].flat()[0], statement]));
  const objects = JSON.stringify(bySid['s3:GetObject'].Resource).match(/\/runs\/[^"]*"/g);
  expect(objects?.sort()).toEqual(['/runs/*/manifest.json"', '/runs/*/offsite.json"', '/runs/*/verification.json"']);
  expect(bySid['s3:ListBucket'].Condition).toEqual({ StringLike: { 's3:prefix': ['runs/*'] } });
  expect(bySid['kms:Decrypt'].Resource).toEqual({ 'Fn::GetAtt': [idOf('AWS::KMS::Key', 'Key'), 'Arn'] });
});

test('cdk-nag AwsSolutions: every finding is acknowledged with its reason', () => {
  const app = testApp();
  watchdogStack(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});

test.each([
  [{ rpoSeconds: 900, scheduleSeconds: 900 }, 900 + 180 + 600],
  [{ rpoSeconds: 3600, scheduleSeconds: 900 }, 3600],
  [{ rpoSeconds: 86_400, scheduleSeconds: 86_400 }, 86_400 + 900 + 600],
])('the RPO alarm of %j fires above %d s: never below one interval plus window plus run allowance', (tier, threshold) => {
  expect(rpoAlarmThresholdSeconds(tier)).toBe(threshold);
});
