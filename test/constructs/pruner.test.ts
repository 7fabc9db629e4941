import { Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PRUNE_SCHEDULE, Pruner } from '../../lib/constructs/pruner';
import { testApp } from '../fixtures/cdk-app';

const DAY = 86_400;
const stack = new Stack(testApp(), 'PrunerTest', { env: { account: '111111111111', region: 'eu-central-1' } });
const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
const bucket = new s3.Bucket(stack, 'Bucket', {
  encryption: s3.BucketEncryption.KMS,
  encryptionKey: key,
  enforceSSL: true,
  versioned: true,
  blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  serverAccessLogsPrefix: 'access-logs/',
});
const pruner = new Pruner(stack, 'Pruner', {
  bucket,
  key,
  sources: [
    { name: 'orders', tier: { retentionSeconds: 90 * DAY, scheduleSeconds: 900 } },
    { name: 'logs', tier: { retentionSeconds: 7 * DAY, scheduleSeconds: DAY } },
  ],
});
const template = Template.fromStack(stack);

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
const policies = template.findResources('AWS::IAM::Policy') as Record<string, { Properties: { Roles: unknown[]; PolicyDocument: { Statement: Statement[] } } }>;
const roleId = stack.getLogicalId(pruner.role.node.defaultChild as never);
const bucketArn = { 'Fn::GetAtt': [stack.getLogicalId(bucket.node.defaultChild as never), 'Arn'] };
const runObjects = { 'Fn::Join': ['', [bucketArn, '/runs/*']] };
/** What the pruner's role may do: one entry per action of every statement of its policies (however CDK merges them), by action. */
const roleGrants = Object.values(policies)
  .filter((policy) => JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
  .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
  .flatMap((statement) => [statement.Action].flat().map((action) => ({ effect: statement.Effect, action, resource: statement.Resource, condition: statement.Condition })))
  .sort((a, b) => a.action.localeCompare(b.action));

test('runs daily at 04:00 UTC with bounded retries and a dead-letter queue', () => {
  template.hasResourceProperties('AWS::Scheduler::Schedule', {
    ScheduleExpression: PRUNE_SCHEDULE,
    ScheduleExpressionTimezone: 'UTC',
    Target: {
      Arn: { 'Fn::GetAtt': [stack.getLogicalId(pruner.function.node.defaultChild as never), 'Arn'] },
      RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 7200 },
      DeadLetterConfig: { Arn: Match.anyValue() },
    },
  });
  expect(PRUNE_SCHEDULE).toBe('cron(0 4 * * ? *)');
});

test('the function gets the bucket, the sources with their tiers, and is not a dry run', () => {
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'nodejs22.x',
    Role: { 'Fn::GetAtt': [roleId, 'Arn'] },
    Environment: {
      Variables: Match.objectLike({
        LIFEBOAT_BUCKET: { Ref: stack.getLogicalId(bucket.node.defaultChild as never) },
        LIFEBOAT_SOURCES_JSON: JSON.stringify([
          { name: 'orders', tier: { retentionSeconds: 90 * DAY, scheduleSeconds: 900 } },
          { name: 'logs', tier: { retentionSeconds: 7 * DAY, scheduleSeconds: DAY } },
        ]),
        LIFEBOAT_DRY_RUN: 'false',
      }),
    },
  });
});

test('the pruner role, and only it, may delete, and only under runs/', () => {
  const deletes = Object.values(policies).flatMap((policy) =>
    policy.Properties.PolicyDocument.Statement
      .filter((statement) => statement.Effect === 'Allow' && [statement.Action].flat().some((action) => /^s3:Delete|^s3:\*$/.test(action)))
      .map((statement) => ({ roles: policy.Properties.Roles, actions: [statement.Action].flat().filter((action) => action.startsWith('s3:Delete')).sort(), resource: statement.Resource })));
  // Exact versions only: without s3:DeleteObject the role cannot lay a delete marker over a run.
  expect(deletes).toEqual([{ roles: [{ Ref: roleId }], actions: ['s3:DeleteObjectVersion'], resource: runObjects }]);
});

test('the pruner role gets exactly what pruning reads and deletes, and nothing that bypasses a lock', () => {
  const logGroupArn = { 'Fn::GetAtt': [stack.getLogicalId(pruner.node.findChild('Logs').node.defaultChild as never), 'Arn'] };
  const runs = { StringLike: { 's3:prefix': ['runs/*'] } };
  const allow = (action: string, resource: unknown, condition?: unknown) => ({ effect: 'Allow', action, resource, condition });
  expect(roleGrants).toEqual([
    allow('kms:Decrypt', { 'Fn::GetAtt': [stack.getLogicalId(key.node.defaultChild as never), 'Arn'] }),
    allow('logs:CreateLogStream', logGroupArn),
    allow('logs:PutLogEvents', logGroupArn),
    // Exact versions of runs/ only; never s3:DeleteObject (a delete marker) nor s3:BypassGovernanceRetention.
    allow('s3:DeleteObjectVersion', runObjects),
    // The catalog reads verdicts and manifests (by version); the lock of each version decides.
    allow('s3:GetObject', runObjects),
    allow('s3:GetObjectLegalHold', runObjects),
    allow('s3:GetObjectRetention', runObjects),
    allow('s3:GetObjectVersion', runObjects),
    allow('s3:ListBucket', bucketArn, runs),
    allow('s3:ListBucketVersions', bucketArn, runs),
  ]);
  // No managed policy: AWSLambdaBasicExecutionRole would let it write every log group.
  expect(template.findResources('AWS::IAM::Role')[roleId].Properties).not.toHaveProperty('ManagedPolicyArns');
});

/** The pack with cdk-nag's (private) acknowledgement lookup disabled: what would be reported. */
class UnacknowledgedChecks extends AwsSolutionsChecks {}
Object.defineProperty(UnacknowledgedChecks.prototype, 'isAcknowledged', { value: () => false });

test('cdk-nag AwsSolutions reports nothing unacknowledged in the pruner', () => {
  const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(pruner);
  expect(report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.description}`)).toEqual([]);
  expect(report.success).toBe(true);
});

test('every acknowledgement in the pruner answers a finding that would otherwise be reported', () => {
  const wouldReport = new UnacknowledgedChecks().validateScope(pruner).violations.map((v) => v.ruleName);
  const acks = pruner.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>)));
  expect(acks.length).toBeGreaterThan(0);
  for (const [id, reason] of acks) {
    expect(wouldReport).toContain(id.replace(/^annotation::/i, ''));
    expect(reason.length).toBeGreaterThanOrEqual(40);
  }
});
