import { Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DumpTask, taskSizeFor } from '../../lib/constructs/dump-task';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';

const [orders, analytics] = testConfig.sources;

function dumpTaskStack(app = testApp()): Stack {
const stack = new Stack(app, 'DumpTaskTest', { env: { account: '111111111111', region: 'eu-west-1' } });
const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
const bucket = new s3.Bucket(stack, 'Bucket', {
  encryptionKey: key, enforceSSL: true, versioned: true, blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  serverAccessLogsPrefix: 'logs/',
});
const image = ecs.ContainerImage.fromRegistry('public.ecr.aws/example/lifeboat-worker:test');
new DumpTask(stack, 'OrdersDump', { source: orders, bucket, bucketKey: key, image, objectLockMode: 'COMPLIANCE' });
new DumpTask(stack, 'AnalyticsDump', { source: analytics, bucket, bucketKey: key, image, objectLockMode: 'GOVERNANCE' });
return stack;
}
const template = Template.fromStack(dumpTaskStack());

test.each([
  [undefined, 1024, 2048],
  [2e9, 1024, 2048],
  [10e9, 1024, 2048],
  [50e9, 2048, 4096],
  [2e12, 4096, 8192],
])('a %p byte database gets %d CPU units and %d MiB', (hint, cpu, memoryMiB) => {
  expect(taskSizeFor(hint)).toEqual({ cpu, memoryMiB });
});

test('Fargate, x86_64, sized from the hint, with its own log group', () => {
  template.hasResourceProperties('AWS::ECS::TaskDefinition', {
    Family: 'lifeboat-dump-orders',
    RequiresCompatibilities: ['FARGATE'],
    RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
    Cpu: '1024',
    Memory: '2048',
    ContainerDefinitions: [Match.objectLike({
      ReadonlyRootFilesystem: true,
      StopTimeout: 30,
      LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
    })],
  });
  template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/lifeboat/dump/orders', RetentionInDays: 90 });
});

test('the password is an ECS secret from Secrets Manager, never an environment value', () => {
  const definition = template.findResources('AWS::ECS::TaskDefinition', { Properties: { Family: 'lifeboat-dump-orders' } });
  const container = Object.values(definition)[0].Properties.ContainerDefinitions[0];
  expect(container.Secrets).toEqual([{ Name: 'LIFEBOAT_DB_PASSWORD', ValueFrom: orders.connection.passwordSecretArn }]);
  expect(container.Environment).toEqual(expect.arrayContaining([
    { Name: 'LIFEBOAT_SOURCE', Value: 'orders' },
    { Name: 'LIFEBOAT_ENGINE', Value: 'postgres' },
    { Name: 'LIFEBOAT_DB_NAMES', Value: 'orders' },
    { Name: 'LIFEBOAT_RETENTION_SECONDS', Value: String(90 * 86_400) },
    { Name: 'LIFEBOAT_OBJECT_LOCK_MODE', Value: 'COMPLIANCE' },
  ]));
  expect(container.Environment.map((entry: { Name: string }) => entry.Name)).not.toContain('LIFEBOAT_DB_PASSWORD');
});

test('the task role writes its own source prefix only, and every delete is denied', () => {
  const policies = template.findResources('AWS::IAM::Policy');
  const ordersPolicy = Object.values(policies).find((policy) =>
    JSON.stringify(policy).includes('runs/orders/*'));
  const statements = ordersPolicy?.Properties.PolicyDocument.Statement as { Sid?: string; Effect: string; Action: string[] | string; Resource: unknown }[];
  const bySid = Object.fromEntries(statements.filter((s) => s.Sid).map((s) => [s.Sid, s]));
  expect(bySid.WriteOwnRuns.Action).toEqual(expect.arrayContaining(['s3:PutObject', 's3:AbortMultipartUpload']));
  expect(JSON.stringify(bySid.WriteOwnRuns.Resource)).toContain('/runs/orders/*');
  expect(JSON.stringify(bySid.WriteOwnRuns.Resource)).not.toContain('analytics');
  expect(bySid.NeverDelete.Effect).toBe('Deny');
  expect(bySid.NeverDelete.Action).toEqual(expect.arrayContaining(['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention']));
  const allowed = statements.filter((s) => s.Effect === 'Allow').flatMap((s) => [s.Action].flat());
  expect(allowed.filter((action) => /Delete|\*/.test(action))).toEqual([]);
  expect([...bySid.AnswerTaskToken.Action].sort()).toEqual(['states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess']);
  // Exactly the backup run: a prefix would also match another app named LifeboatStaging.
  expect(JSON.stringify(bySid.AnswerTaskToken.Resource)).toMatch(/:stateMachine:Lifeboat-backup-run"$/);
});

test('cdk-nag AwsSolutions: every finding is acknowledged with its reason', () => {
  const app = testApp();
  dumpTaskStack(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  // A finding fails the synth with a report naming the resource and the rule.
  expect(() => app.synth()).not.toThrow();
});

describe('in the primary stack', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createStacks } = require('../../lib/stacks') as typeof import('../../lib/stacks');
  const { primary } = createStacks(testApp(), testConfig);
  // The dump tasks live in the source shards (nested stacks): the parent's template with theirs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { primaryWithShards } = require('../fixtures/primary-template') as typeof import('../fixtures/primary-template');
  const primaryTemplate = primaryWithShards(primary);

  test('every source gets its dump task, running the worker image built from worker/Dockerfile', () => {
    for (const source of testConfig.sources) {
      primaryTemplate.hasResourceProperties('AWS::ECS::TaskDefinition', {
        Family: `lifeboat-dump-${source.name}`,
        ContainerDefinitions: [Match.objectLike({
          Image: { 'Fn::Sub': Match.stringLikeRegexp('container-assets') },
        })],
      });
    }
  });
});

describe('TLS to the database', () => {
  const containerOf = (t: Template, family: string) => {
    const definition = t.findResources('AWS::ECS::TaskDefinition', { Properties: { Family: family } });
    return Object.values(definition)[0]?.Properties.ContainerDefinitions[0];
  };

  test('the mode and the CA file are environment values; require carries no CA', () => {
    const ordersEnv = containerOf(template, 'lifeboat-dump-orders').Environment;
    expect(ordersEnv).toEqual(expect.arrayContaining([
      { Name: 'LIFEBOAT_DB_TLS_MODE', Value: 'verify-full' },
      { Name: 'LIFEBOAT_DB_TLS_CA_FILE', Value: '/etc/lifeboat/tls/rds-ca-bundle.pem' },
    ]));
    const analyticsEnv = containerOf(template, 'lifeboat-dump-analytics').Environment as { Name: string }[];
    expect(analyticsEnv).toEqual(expect.arrayContaining([{ Name: 'LIFEBOAT_DB_TLS_MODE', Value: 'require' }]));
    expect(analyticsEnv.map((entry) => entry.Name)).not.toContain('LIFEBOAT_DB_TLS_CA_FILE');
  });

  test('a CA bundle kept in a secret is an ECS secret, written to a scratch volume, readable by the execution role only', () => {
    const app = testApp();
    const stack = new Stack(app, 'DumpTaskTlsSecret', { env: { account: '111111111111', region: 'eu-west-1' } });
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    const bucket = new s3.Bucket(stack, 'Bucket', { encryptionKey: key, enforceSSL: true, versioned: true });
    const image = ecs.ContainerImage.fromRegistry('public.ecr.aws/example/lifeboat-worker:test');
    const caArn = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:corp-ca-AbCdEf';
    const source = { ...orders, connection: { ...orders.connection, tlsCa: { kind: 'secret' as const, secretArn: caArn } } };
    new DumpTask(stack, 'OrdersDump', { source, bucket, bucketKey: key, image, objectLockMode: 'COMPLIANCE' });
    const t = Template.fromStack(stack);
    const container = containerOf(t, 'lifeboat-dump-orders');
    expect(container.Secrets).toEqual(expect.arrayContaining([{ Name: 'LIFEBOAT_DB_TLS_CA_PEM', ValueFrom: caArn }]));
    expect(container.Environment).toEqual(expect.arrayContaining([{ Name: 'TMPDIR', Value: '/scratch' }]));
    expect((container.Environment as { Name: string }[]).map((entry) => entry.Name)).not.toContain('LIFEBOAT_DB_TLS_CA_FILE');
    expect(container.MountPoints).toEqual([{ SourceVolume: 'scratch', ContainerPath: '/scratch', ReadOnly: false }]);
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(policies).toContain(caArn);
  });
});
