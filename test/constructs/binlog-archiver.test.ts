/**
 * The binary-log archiver in the templates (issue 15): per MySQL/MariaDB PITR source a Fargate
 * task definition in a binlog shard (the worker image's /app/binlog-archive.js, the connection as
 * the dump task's, the password and CA from Secrets Manager), a task role allowed exactly its own
 * `binlog/<source>/`, a schedule at the plan's rate running exactly that task definition, the
 * watchdog's reads and env, and the source's binlog alarms beside its logical ones.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Source } from '../../lib/config';
import { BinlogArchiver } from '../../lib/constructs/binlog-archiver';
import { scheduleDeadLetterQueue } from '../../lib/constructs/common';
import { binlogAgeAlarmThresholdSeconds, rpoAlarmThresholdSeconds, watchedSource } from '../../lib/constructs/watchdog';
import { createStacks } from '../../lib/stacks';
import { binlogConfig } from '../fixtures/binlog-config';
import { testApp } from '../fixtures/cdk-app';

const [orders, shop, ledger] = binlogConfig.sources as Source[];
const app = testApp();
const { primary } = createStacks(app, binlogConfig);
const [binlogShard] = primary.binlogShards;
const shardTemplate = Template.fromStack(binlogShard);
const sourceShardTemplate = Template.fromStack(primary.shards[0]);
const primaryTemplate = Template.fromStack(primary);
type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = (template: Template) => Object.entries((template.toJSON() as { Resources: Record<string, Resource> }).Resources);
const ofType = (template: Template, type: string) => resources(template).filter(([, resource]) => resource.Type === type);
const idOf = (template: Template, type: string, predicate: (properties: Record<string, unknown>) => boolean) => {
  const found = ofType(template, type).find(([, resource]) => predicate(resource.Properties));
  if (!found) throw new Error(`no ${type} matching in the template`);
  return found[0];
};
const taskDefinition = (source: string) => ofType(shardTemplate, 'AWS::ECS::TaskDefinition')
  .find(([, resource]) => resource.Properties.Family === `lifeboat-binlog-${source}`)?.[1].Properties as Record<string, unknown>;
/** The statements of the policies attached to the role with logical id `roleId`. */
const statementsOf = (template: Template, roleId: string) => ofType(template, 'AWS::IAM::Policy')
  .filter(([, policy]) => (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref === roleId))
  .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement);

test('one archiver per binlog source, none for a logical-only one, all in binlog shards beside the source shards', () => {
  expect(primary.binlogShards).toHaveLength(1);
  expect(Object.keys(binlogShard.archivers)).toEqual(['shop', 'ledger']);
  expect(taskDefinition('orders')).toBeUndefined();
  expect(ofType(sourceShardTemplate, 'AWS::ECS::TaskDefinition').map(([, resource]) => resource.Properties.Family))
    .not.toEqual(expect.arrayContaining([expect.stringMatching(/^lifeboat-binlog-/)]));
});

test('the task: the worker image\'s archiver entry, the connection and plan in the environment, the password and a CA secret from Secrets Manager, never in the environment', () => {
  const [container] = taskDefinition('shop').ContainerDefinitions as Record<string, unknown>[];
  expect(container).toMatchObject({ Name: 'Worker', EntryPoint: ['node', '--enable-source-maps', '/app/binlog-archive.js'], ReadonlyRootFilesystem: true });
  const environment = Object.fromEntries((container.Environment as { Name: string; Value: unknown }[]).map(({ Name, Value }) => [Name, Value]));
  expect(environment).toEqual({
    LIFEBOAT_SOURCE: 'shop',
    LIFEBOAT_ENGINE: 'mariadb',
    LIFEBOAT_DB_HOST: 'shop.example.internal',
    LIFEBOAT_DB_PORT: '3306',
    LIFEBOAT_DB_USER: 'backup',
    LIFEBOAT_DB_TLS_MODE: 'verify-full',
    LIFEBOAT_DB_TLS_CA_FILE: expect.stringMatching(/^\//),
    LIFEBOAT_BUCKET: expect.anything(),
    LIFEBOAT_OBJECT_LOCK_MODE: binlogConfig.objectLock.mode,
    LIFEBOAT_RETENTION_SECONDS: String(shop.tier.retentionSeconds),
    LIFEBOAT_BINLOG_MIN_SERVER_RETENTION_SECONDS: String(shop.binlog!.plan.minServerRetentionSeconds),
  });
  expect(container.Secrets).toEqual([{ Name: 'LIFEBOAT_DB_PASSWORD', ValueFrom: shop.connection.passwordSecretArn }]);
  expect(JSON.stringify(container.Environment)).not.toMatch(/secretsmanager|PASSWORD/);

  const [mysql] = taskDefinition('ledger').ContainerDefinitions as Record<string, unknown>[];
  const mysqlEnvironment = Object.fromEntries((mysql.Environment as { Name: string; Value: unknown }[]).map(({ Name, Value }) => [Name, Value]));
  expect(mysqlEnvironment).toMatchObject({ LIFEBOAT_ENGINE: 'mysql', TMPDIR: '/scratch', LIFEBOAT_BINLOG_MIN_SERVER_RETENTION_SECONDS: '4800' });
  expect(mysqlEnvironment).not.toHaveProperty('LIFEBOAT_DB_TLS_CA_FILE');
  expect(mysql.Secrets).toEqual([
    { Name: 'LIFEBOAT_DB_PASSWORD', ValueFrom: ledger.connection.passwordSecretArn },
    { Name: 'LIFEBOAT_DB_TLS_CA_PEM', ValueFrom: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:ledger-ca-AbCdEf' },
  ]);
});

test('the task role: exactly put (with its lock; an upload in parts aborted), get and list of binlog/<source>/, the key for SSE-KMS, and no delete', () => {
  const properties = taskDefinition('shop');
  const roleId = (properties.TaskRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  expect(shardTemplate.toJSON().Resources[roleId].Properties).toMatchObject({ Path: '/lifeboat/binlog/' });
  const statements = statementsOf(shardTemplate, roleId);
  expect(statements).toEqual([
    { Sid: 'WriteOwnBinlogArchive', Effect: 'Allow', Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject', 's3:PutObjectRetention'], Resource: { 'Fn::Join': ['', [expect.anything(), '/binlog/shop/*']] } },
    { Sid: 'ListOwnBinlogArchive', Effect: 'Allow', Action: 's3:ListBucket', Resource: expect.anything(), Condition: { StringLike: { 's3:prefix': ['binlog/shop/*'] } } },
    { Sid: 'EncryptBinlogArchive', Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: expect.anything() },
    {
      Sid: 'NeverDelete', Effect: 'Deny',
      Action: ['s3:BypassGovernanceRetention', 's3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutBucketPolicy', 's3:PutLifecycleConfiguration'],
      Resource: [expect.anything(), expect.anything()],
    },
  ]);
});

test('the schedule: a rate of the plan\'s interval (a third of the RPO), RunTask of exactly this task definition in the dump task\'s network, the slot\'s time as LIFEBOAT_SCHEDULED_TIME', () => {
  const schedules = ofType(shardTemplate, 'AWS::Scheduler::Schedule').map(([, resource]) => resource.Properties);
  expect(schedules.map((schedule) => schedule.ScheduleExpression)).toEqual(['rate(5 minutes)', 'rate(20 minutes)']);
  const [schedule] = schedules;
  expect(schedule).toMatchObject({ FlexibleTimeWindow: { Mode: 'OFF' } });
  const target = schedule.Target as Record<string, unknown>;
  expect(target).toMatchObject({
    Arn: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':scheduler:::aws-sdk:ecs:runTask']] },
    RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 },
    DeadLetterConfig: { Arn: expect.anything() },
  });
  // The input is the RunTask request (its tokens joined in): resolve the parts we can read.
  const input = JSON.stringify(target.Input);
  expect(input).toContain('\\"LaunchType\\":\\"FARGATE\\"');
  expect(input).toContain('\\"Subnets\\":[\\"subnet-0a1b2c3d4e5f60718\\"],\\"SecurityGroups\\":[\\"sg-04a1b2c3d4e5f6071\\"],\\"AssignPublicIp\\":\\"DISABLED\\"');
  expect(input).toContain('\\"ContainerOverrides\\":[{\\"Name\\":\\"Worker\\",\\"Environment\\":[{\\"Name\\":\\"LIFEBOAT_SCHEDULED_TIME\\",\\"Value\\":\\"<aws.scheduler.scheduled-time>\\"}]}]');
  const taskId = idOf(shardTemplate, 'AWS::ECS::TaskDefinition', (properties) => properties.Family === 'lifeboat-binlog-shop');
  expect(input).toContain(`"Ref":"${taskId}"`);

  // Its role: RunTask of that task definition on the cluster, PassRole of its two roles, the dead-letter queue.
  const roleId = (target.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const task = taskDefinition('shop');
  const statements = statementsOf(shardTemplate, roleId);
  expect(statements).toEqual(expect.arrayContaining([
    { Sid: 'RunTheArchiver', Effect: 'Allow', Action: 'ecs:RunTask', Resource: { Ref: taskId }, Condition: { ArnEquals: { 'ecs:cluster': expect.anything() } } },
    {
      Sid: 'PassTheArchiverRoles', Effect: 'Allow', Action: 'iam:PassRole', Resource: expect.arrayContaining([task.TaskRoleArn, task.ExecutionRoleArn]),
      Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    },
    expect.objectContaining({ Action: 'sqs:SendMessage' }),
  ]));
  expect(statements).toHaveLength(3);
});

test('the watchdog is told a binlog source as such, and may list its states and index and read its states only', () => {
  const fnId = idOf(primaryTemplate, 'AWS::Lambda::Function', (properties) => String((properties.Environment as { Variables?: Record<string, string> } | undefined)?.Variables?.LIFEBOAT_SOURCES_JSON ?? '').length > 0);
  const variables = (primaryTemplate.toJSON().Resources[fnId].Properties.Environment as { Variables: Record<string, string> }).Variables;
  expect(JSON.parse(variables.LIFEBOAT_SOURCES_JSON)).toEqual([
    { name: 'orders', rpoSeconds: 900 },
    { name: 'shop', rpoSeconds: 900, methods: ['logical', 'pitr'], binlog: true },
    { name: 'ledger', rpoSeconds: 3600, methods: ['logical', 'pitr'], binlog: true },
  ]);
  expect([orders, shop, ledger].map(watchedSource)).toEqual(JSON.parse(variables.LIFEBOAT_SOURCES_JSON));
  const roleId = (primaryTemplate.toJSON().Resources[fnId].Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const statements = statementsOf(primaryTemplate, roleId);
  expect(statements).toEqual(expect.arrayContaining([
    {
      Sid: 'ListBinlogStatesAndIndex', Effect: 'Allow', Action: 's3:ListBucket', Resource: expect.anything(),
      Condition: { StringEquals: { 's3:prefix': ['binlog/shop/state/', 'binlog/shop/index/', 'binlog/ledger/state/', 'binlog/ledger/index/'] } },
    },
    {
      Sid: 'ReadBinlogStates', Effect: 'Allow', Action: 's3:GetObject',
      Resource: [{ 'Fn::Join': ['', [expect.anything(), '/binlog/ledger/state/*']] }, { 'Fn::Join': ['', [expect.anything(), '/binlog/shop/state/*']] }],
    },
  ]));
  expect(JSON.stringify(statements)).not.toMatch(/binlog\/[a-z]+\/(files|partial)/);
});

test('alarms: binlog-rpo above the RPO with missing data breaching, binlog-gap at 1; the logical alarms keep theirs as logical-*', () => {
  const alarms = Object.fromEntries(ofType(sourceShardTemplate, 'AWS::CloudWatch::Alarm').map(([, alarm]) => [alarm.Properties.AlarmName as string, alarm.Properties]));
  expect(Object.keys(alarms).sort()).toEqual([
    'Lifeboat-binlog-gap-ledger', 'Lifeboat-binlog-gap-shop', 'Lifeboat-binlog-rpo-ledger', 'Lifeboat-binlog-rpo-shop',
    'Lifeboat-logical-offsite-rpo-ledger', 'Lifeboat-logical-offsite-rpo-shop', 'Lifeboat-logical-rpo-ledger', 'Lifeboat-logical-rpo-shop',
    'Lifeboat-offsite-rpo-orders', 'Lifeboat-rpo-orders',
  ]);
  expect(alarms['Lifeboat-binlog-rpo-shop']).toMatchObject({
    Namespace: 'Lifeboat', MetricName: 'BinlogArchiveAgeSeconds', Dimensions: [{ Name: 'source', Value: 'shop' }], Statistic: 'Maximum', Period: 300, Unit: 'Seconds',
    Threshold: binlogAgeAlarmThresholdSeconds(shop.binlog!.plan), ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'breaching',
    AlarmDescription: expect.stringMatching(/^Lifeboat: shop \(point-in-time recovery\) has archived no binary log for longer than its RPO of 15m.*lifeboat-binlog-shop.*mariadb-binlog/),
  });
  expect(alarms['Lifeboat-binlog-rpo-shop'].Threshold).toBe(900);
  expect(alarms['Lifeboat-binlog-rpo-ledger']).toMatchObject({ Threshold: 3600, AlarmDescription: expect.stringContaining('mysqlbinlog') });
  expect(alarms['Lifeboat-binlog-gap-shop']).toMatchObject({
    MetricName: 'BinlogGaps', Unit: 'Count', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching',
    AlarmDescription: expect.stringMatching(/^Lifeboat: shop \(point-in-time recovery\) has a gap in its binary-log archive.*binlog\/shop\//),
  });
  expect(alarms['Lifeboat-logical-rpo-shop']).toMatchObject({
    MetricName: 'SecondsSinceVerifiedBackup', Threshold: rpoAlarmThresholdSeconds(shop.tier),
    AlarmDescription: expect.stringContaining('its point-in-time recovery (binary-log archive) has alarms of its own'),
  });
});

test('cdk-nag AwsSolutions: every finding on an archiver is acknowledged with its reason', () => {
  const app = testApp();
  const stack = new Stack(app, 'BinlogArchiverNag', { env: { account: '111111111111', region: 'eu-west-1' } });
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const bucket = new s3.Bucket(stack, 'Bucket', { encryptionKey: key, enforceSSL: true, versioned: true, blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL, serverAccessLogsPrefix: 'logs/' });
  const queue = scheduleDeadLetterQueue(stack, 'binary-log archiver schedules');
  new BinlogArchiver(stack, 'Archiver', {
    source: shop, bucket, bucketKey: key, image: ecs.ContainerImage.fromRegistry('example.com/lifeboat-worker:1'), objectLockMode: 'GOVERNANCE',
    clusterArn: 'arn:aws:ecs:eu-west-1:111111111111:cluster/lifeboat', subnets: ['subnet-0a1b2c3d4e5f60718'], securityGroups: ['sg-0a1b2c3d4e5f60718'],
    group: new scheduler.ScheduleGroup(stack, 'Group'), deadLetterQueue: queue,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});

test('fails when the source does not archive binary logs', () => {
  const stack = new Stack(testApp(), 'NoBinlog');
  const key = new kms.Key(stack, 'Key');
  expect(() => new BinlogArchiver(stack, 'Archiver', {
    source: orders, bucket: new s3.Bucket(stack, 'Bucket'), bucketKey: key, image: ecs.ContainerImage.fromRegistry('x'), objectLockMode: 'GOVERNANCE',
    clusterArn: 'arn:aws:ecs:eu-west-1:111111111111:cluster/lifeboat', subnets: [], securityGroups: [],
    group: new scheduler.ScheduleGroup(stack, 'Group'), deadLetterQueue: new sqs.Queue(stack, 'Queue'),
  })).toThrow("BinlogArchiver: source orders has no binlog (valid: a MySQL or MariaDB source with method 'pitr')");
});
