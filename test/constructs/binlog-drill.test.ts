/**
 * Binary-log PITR drills in the templates (issue 15): per MySQL/MariaDB PITR source a drill task
 * of kind 'binlog' (family lifeboat-drill-<source>-binlog, /app/binlog-drill.js, the scratch
 * volume) in a binlog drill shard, its role reading only runs/<source>/, binlog/<source>/ and its
 * own earlier drill reports (primary; the first two offsite), writing only its reports, never
 * deleting; its schedules on the restore-drill state machine at the tier's drill cadence (and
 * weekly from offsite for a daily-drilled tier), in the source's network.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Source } from '../../lib/config';
import { DrillTask } from '../../lib/constructs/drill-task';
import { drillScheduleFor } from '../../lib/constructs/drill-schedules';
import { createStacks } from '../../lib/stacks';
import { binlogConfig } from '../fixtures/binlog-config';
import { testApp } from '../fixtures/cdk-app';

const [orders, shop, ledger] = binlogConfig.sources as Source[];
const app = testApp();
const { primary } = createStacks(app, binlogConfig);
const [drillShard] = primary.binlogDrillShards;
const template = Template.fromStack(drillShard);
const sourceShardTemplate = Template.fromStack(primary.shards[0]);
type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = (t: Template) => Object.entries((t.toJSON() as { Resources: Record<string, Resource> }).Resources);
const ofType = (t: Template, type: string) => resources(t).filter(([, resource]) => resource.Type === type);
const taskDefinition = (source: string) => ofType(template, 'AWS::ECS::TaskDefinition').find(([, resource]) => resource.Properties.Family === `lifeboat-drill-${source}-binlog`);
const statementsOf = (roleId: string) => ofType(template, 'AWS::IAM::Policy')
  .filter(([, policy]) => (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref === roleId))
  .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement);
/** A resource ARN of the template as text: `Fn::Join` parts joined, a `Ref` or `Fn::GetAtt` as `{id}`. */
const text = (value: unknown): string => {
  if (typeof value === 'string') return value;
  const v = value as { 'Fn::Join'?: [string, unknown[]]; Ref?: string; 'Fn::GetAtt'?: string[] };
  if (v['Fn::Join']) return v['Fn::Join'][1].map(text).join(v['Fn::Join'][0]);
  if (v.Ref) return `{${v.Ref}}`;
  if (v['Fn::GetAtt']) return `{${v['Fn::GetAtt'].join('.')}}`;
  return JSON.stringify(value);
};
const statement = (roleId: string, sid: string) => statementsOf(roleId).find((candidate) => candidate.Sid === sid) as Record<string, unknown>;
const list = (value: unknown) => (Array.isArray(value) ? value : [value]).map(text);

test('one binlog drill per binlog source, none for a logical-only one, in binlog drill shards (the source shards keep theirs as they were)', () => {
  expect(primary.binlogDrillShards).toHaveLength(1);
  expect(Object.keys(drillShard.drillTasks)).toEqual(['shop', 'ledger']);
  expect(taskDefinition('orders')).toBeUndefined();
  expect(ofType(sourceShardTemplate, 'AWS::ECS::TaskDefinition').map(([, resource]) => resource.Properties.Family))
    .not.toEqual(expect.arrayContaining([expect.stringMatching(/-binlog$/)]));
  expect(ofType(sourceShardTemplate, 'AWS::ECS::TaskDefinition').map(([, resource]) => resource.Properties.Family))
    .toEqual(expect.arrayContaining(['lifeboat-drill-shop', 'lifeboat-drill-ledger']));
});

test('the task: container Drill, /app/binlog-drill.js, read-only root with the scratch volume, the resolved source and no secret', () => {
  const [, task] = taskDefinition('shop') as [string, Resource];
  const [container] = task.Properties.ContainerDefinitions as Record<string, unknown>[];
  expect(container).toMatchObject({ Name: 'Drill', EntryPoint: ['node', '--enable-source-maps', '/app/binlog-drill.js'], ReadonlyRootFilesystem: true });
  expect(container.MountPoints).toEqual([{ SourceVolume: 'scratch', ContainerPath: '/scratch', ReadOnly: false }]);
  const environment = Object.fromEntries((container.Environment as { Name: string; Value: unknown }[]).map(({ Name, Value }) => [Name, Value]));
  expect(environment).toMatchObject({ LIFEBOAT_SCRATCH_DIR: '/scratch', TMPDIR: '/scratch', LIFEBOAT_OFFSITE_REGION: 'eu-central-1' });
  expect(JSON.parse(environment.LIFEBOAT_SOURCE_CONFIG as string)).toMatchObject({ name: 'shop', engine: 'mariadb', binlog: { binlogClient: 'mariadb-binlog' } });
  expect(container.Secrets).toBeUndefined();
  template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/lifeboat/drill/shop-binlog' });
  expect(text(task.Properties.TaskRoleArn)).toMatch(/^\{BinlogDrillshop.*TaskRole.*\.Arn\}$/);
});

test('its role reads its dumps, its archive and its own drill reports only; writes only its reports; never deletes', () => {
  const [, task] = taskDefinition('shop') as [string, Resource];
  const roleId = (task.Properties.TaskRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0] as string;
  const read = statement(roleId, 'ReadOwnRuns');
  expect(read.Action).toEqual(['s3:GetObject', 's3:GetObjectVersion']);
  expect(list(read.Resource).map((arn) => arn.replace(/^.*\}\//, '')).sort()).toEqual(['binlog/shop/*', 'drills/shop/*', 'runs/shop/*']);
  expect((statement(roleId, 'ListOwnRuns').Condition as Record<string, Record<string, string[]>>).StringLike['s3:prefix'].sort()).toEqual(['binlog/shop/*', 'drills/shop/*', 'runs/shop/*']);
  expect(list(statement(roleId, 'ReadOwnOffsiteRuns').Resource).map((arn) => arn.replace(/^arn:.*:s3:::[^/]+\//, '')).sort()).toEqual(['binlog/shop/*', 'runs/shop/*']);
  expect((statement(roleId, 'ListOwnOffsiteRuns').Condition as Record<string, Record<string, string[]>>).StringLike['s3:prefix'].sort()).toEqual(['binlog/shop/*', 'runs/shop/*']);
  expect(statement(roleId, 'WriteOwnDrillReports')).toMatchObject({ Action: 's3:PutObject' });
  expect(list(statement(roleId, 'WriteOwnDrillReports').Resource).map((arn) => arn.replace(/^.*\}\//, ''))).toEqual(['drills/shop/*']);
  expect(statement(roleId, 'NeverDelete')).toMatchObject({ Effect: 'Deny', Action: expect.arrayContaining(['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention']) });
  // Nothing else of S3 is allowed, and no other source's prefix appears.
  const allowed = statementsOf(roleId).filter((candidate) => candidate.Effect === 'Allow');
  expect(allowed.flatMap((candidate) => [candidate.Action].flat()).filter((action) => String(action).startsWith('s3:')).sort())
    .toEqual(['s3:GetObject', 's3:GetObject', 's3:GetObjectVersion', 's3:GetObjectVersion', 's3:ListBucket', 's3:ListBucket', 's3:PutObject']);
  expect(JSON.stringify(allowed)).not.toMatch(/ledger|orders|pitr\//);
});

test('its schedules: the restore-drill state machine at the tier\'s drill cadence (and weekly from offsite for tier1), naming its task in the source\'s network', () => {
  const schedules = ofType(template, 'AWS::Scheduler::Schedule').map(([, resource]) => resource.Properties as { ScheduleExpression: string; Target: { Input: unknown; Arn: unknown } });
  const inputs = schedules.map((schedule) => ({ expression: schedule.ScheduleExpression, input: text(schedule.Target.Input) }));
  const shopTask = (taskDefinition('shop') as [string, Resource])[0];
  const ofShop = inputs.filter((candidate) => candidate.input.includes('"source":"shop"'));
  expect(ofShop.map((candidate) => candidate.expression).sort()).toEqual([drillScheduleFor(shop.tier).expression, 'cron(0 17 ? * SUN *)'].sort());
  for (const candidate of ofShop) {
    expect(candidate.input).toContain(`"taskDefinitionArn":"{${shopTask}}"`);
    expect(candidate.input).toContain('"subnets":["subnet-0a1b2c3d4e5f60718"]');
  }
  expect(ofShop.map((candidate) => /"from":"(\w+)"/.exec(candidate.input)?.[1]).sort()).toEqual(['offsite', 'primary']);
  // tier2 is drilled weekly: no offsite drill.
  const ofLedger = inputs.filter((candidate) => candidate.input.includes('"source":"ledger"'));
  expect(ofLedger.map((candidate) => candidate.expression)).toEqual([drillScheduleFor(ledger.tier).expression]);
  // Every schedule starts the drill state machine (passed in as a parameter from the parent), with the shard's one role.
  expect(new Set(schedules.map((schedule) => text(schedule.Target.Arn))).size).toBe(1);
  const roles = new Set(schedules.map((schedule) => text((schedule.Target as unknown as { RoleArn: unknown }).RoleArn)));
  expect(roles.size).toBe(1);
  const roleId = /^\{(.+)\.Arn\}$/.exec([...roles][0] as string)?.[1] as string;
  const role = resources(template).find(([id]) => id === roleId)?.[1] as Resource;
  expect(role.Properties.AssumeRolePolicyDocument).toMatchObject({ Statement: [{ Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': expect.anything(), 'aws:SourceArn': expect.anything() } } }] });
  const allowed = statementsOf(roleId).filter((candidate) => candidate.Effect === 'Allow');
  expect(allowed.map((candidate) => candidate.Action).sort()).toEqual(['sqs:SendMessage', 'states:StartExecution']);
  expect(text(allowed.find((candidate) => candidate.Action === 'states:StartExecution')?.Resource)).toBe(text(schedules[0]?.Target.Arn));
});

test('the drill state machine may run it: its RunTask grant covers the family, its PassRole the role path', () => {
  const policies = JSON.stringify(Template.fromStack(primary).toJSON());
  expect(policies).toContain('task-definition/lifeboat-drill-*:*');
  expect(policies).toContain('role/lifeboat/drill/*');
});

test('fails when the source does not archive binary logs', () => {
  const stack = new Stack(testApp(), 'NoBinlog');
  const key = new kms.Key(stack, 'Key');
  expect(() => new DrillTask(stack, 'Drill', {
    source: orders, bucket: new s3.Bucket(stack, 'Bucket'), bucketKey: key, image: ecs.ContainerImage.fromRegistry('x'),
    offsite: { bucketName: 'offsite', region: 'eu-central-1' }, kind: 'binlog',
  })).toThrow("DrillTask: source orders has no binlog (valid: kind 'binlog' for a MySQL or MariaDB source with method 'pitr')");
});

test('cdk-nag AwsSolutions: every finding on a binlog drill task is acknowledged with its reason', () => {
  const nagApp = testApp();
  const stack = new Stack(nagApp, 'BinlogDrillNag', { env: { account: '111111111111', region: 'eu-west-1' } });
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const bucket = new s3.Bucket(stack, 'Bucket', { encryptionKey: key, enforceSSL: true, versioned: true, blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL, serverAccessLogsPrefix: 'logs/' });
  new DrillTask(stack, 'Drill', {
    source: shop, bucket, bucketKey: key, image: ecs.ContainerImage.fromRegistry('example.com/lifeboat-worker:1'),
    offsite: { bucketName: 'lifeboat-offsite', region: 'eu-central-1', account: '222222222222' }, kind: 'binlog',
  });
  Validations.of(nagApp).addPlugins(new AwsSolutionsChecks(nagApp));
  expect(() => nagApp.synth()).not.toThrow();
});
