/**
 * The physical backup run (lib/constructs/binlog-physical-workflow.ts), synthesized in a stack of
 * its own (it is not in the primary stack yet): its states in order, what BackupOnHost sends the
 * host, the schedules of the plan, least privilege (SendCommand of the one document to the
 * sources' hosts only; the verifier writes only manifests of PITR catalogs), cdk-nag; and the
 * Plan task's choice from the catalog.
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig, type Source } from '../../lib/config';
import { BinlogPhysicalWorkflow, binlogPhysicalRunInput } from '../../lib/constructs/binlog-physical-workflow';
import type { Manifest } from '../../lib/domain/manifest';
import { physicalPlanOf } from '../../worker/binlog-physical-plan-main';

const sources: readonly Source[] = parseConfig({
  appName: 'Lifeboat',
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  sources: [
    { name: 'shop', engine: 'mariadb', tier: 'tier2', method: ['logical', 'pitr'], binlog: { physical: { host: { instanceId: 'i-0a1b2c3d4e5f60718' } } } },
    { name: 'ledger', engine: 'mysql', tier: 'tier1', method: 'pitr', binlog: { physical: { host: { tag: { key: 'lifeboat-host', value: 'ledger' } }, dataDirectory: '/srv/mysql', osUser: 'mysqld' } } },
    { name: 'plain', engine: 'mariadb', tier: 'tier2', method: ['logical', 'pitr'] },
  ].map((source) => ({
    ...source,
    connection: { host: `${source.name}.example.internal`, database: 'shop', username: 'backup', passwordSecretArn: `arn:aws:secretsmanager:eu-west-1:111111111111:secret:${source.name}-AbCdEf` },
    network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d4e5f60718'], securityGroupIds: ['sg-0a1b2c3d4e5f60718'] },
  })),
}).sources;

function workflowStack(app = new App()): { stack: Stack; workflow: BinlogPhysicalWorkflow } {
  const stack = new Stack(app, 'Physical', { env: { account: '111111111111', region: 'eu-west-1' } });
  const fn = (name: string) => lambda.Function.fromFunctionArn(stack, name, `arn:aws:lambda:eu-west-1:111111111111:function:lifeboat-${name}`);
  // The stand-ins for what the primary stack gives the workflow (its cluster and dead-letter queue are checked there).
  const cluster = new ecs.CfnCluster(stack, 'Cluster');
  Validations.of(cluster).acknowledge({ id: 'AwsSolutions-ECS4', reason: 'A stand-in for the backup run\'s cluster (lib/constructs/backup-workflow.ts).' });
  const deadLetterQueue = new sqs.Queue(stack, 'Dlq', { enforceSSL: true });
  Validations.of(deadLetterQueue).acknowledge({ id: 'AwsSolutions-SQS3', reason: 'A stand-in for the schedules\' dead-letter queue, which is one.' });
  const workflow = new BinlogPhysicalWorkflow(stack, 'BinlogPhysicalRun', {
    appName: 'lifeboat',
    sources,
    bucket: s3.Bucket.fromBucketName(stack, 'Bucket', 'lifeboat-primary'),
    bucketKey: kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:eu-west-1:111111111111:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0'),
    alarmTopic: sns.Topic.fromTopicArn(stack, 'Topic', 'arn:aws:sns:eu-west-1:111111111111:lifeboat-alarms'),
    workerImage: ecs.ContainerImage.fromRegistry('111111111111.dkr.ecr.eu-west-1.amazonaws.com/lifeboat-worker:1'),
    cluster,
    functions: { commit: fn('commit'), awaitOffsite: fn('await-offsite'), record: fn('record'), recordFailure: fn('record-failure') },
    objectLockMode: 'GOVERNANCE',
    schedules: { group: new scheduler.ScheduleGroup(stack, 'Group'), deadLetterQueue },
  });
  return { stack, workflow };
}

const { stack, workflow } = workflowStack();
const template = Template.fromStack(stack);
const definition = (): { StartAt: string; States: Record<string, { Type: string; Next?: string; Parameters?: Record<string, unknown> }> } => {
  const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine')) as { Properties: { DefinitionString: unknown } }[];
  const text = stack.resolve(machine.Properties.DefinitionString) as { 'Fn::Join': [string, unknown[]] };
  return JSON.parse(text['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : 'TOKEN')).join(''));
};

test('the run: Start → NameRun → Plan → BackupOnHost → WaitForHost → PollHost → HostDone? → Verify → the run\'s own verdict, commit and offsite states', () => {
  const { StartAt, States } = definition();
  const path: string[] = [];
  for (let at: string | undefined = StartAt; at && path.length < 7; at = States[at]?.Next) path.push(at);
  expect(path).toEqual(['Start', 'NameRun', 'Plan', 'BackupOnHost', 'WaitForHost', 'PollHost', 'HostDone?']);
  expect(States.Verify?.Next).toBe('RunSummary');
  expect(Object.keys(States)).toEqual(expect.arrayContaining(['Commit', 'AwaitOffsite', 'Record', 'RecordFailure', 'NotifyFailure', 'Backup failed on host', 'Host unreachable']));
});

test('BackupOnHost sends the document with the run\'s prefix, the plan\'s type and LSN, and the source\'s tool, user and datadir', () => {
  expect(definition().States.BackupOnHost?.Parameters).toMatchObject({
    DocumentName: 'lifeboat-binlog-physical',
    Parameters: {
      'runPrefix.$': "States.Array(States.Format('runs/{}/{}/', $.catalog, $.run.runId))",
      'type.$': 'States.Array($.plan.type)',
      'incrementalLsn.$': 'States.Array($.plan.incrementalLsn)',
      'expectedSize.$': 'States.Array($.plan.expectedSize)',
      'tool.$': 'States.Array($.physical.tool)',
      'osUser.$': 'States.Array($.physical.osUser)',
      'dataDirectory.$': 'States.Array($.physical.dataDirectory)',
    },
  });
});

test('one schedule per source with binlog.physical and type of its plan; none for a source without', () => {
  expect(Object.keys(workflow.schedules).sort()).toEqual(['ledger', 'shop']);
  expect(Object.keys(workflow.schedules.shop ?? {}).sort()).toEqual(['full', 'incr']);
  expect(binlogPhysicalRunInput(sources[1] as Source, 'incr')).toEqual({
    type: 'incr', engine: 'mysql', tier: 'tier1', catalog: 'ledger-pitr', retentionSeconds: String((sources[1] as Source).tier.retentionSeconds),
    host: { targets: [{ Key: 'tag:lifeboat-host', Values: ['ledger'] }] },
    physical: { tool: 'xtrabackup', osUser: 'mysqld', dataDirectory: '/srv/mysql' },
    target: { subnets: ['subnet-0a1b2c3d4e5f60718'], securityGroups: ['sg-0a1b2c3d4e5f60718'] },
  });
  template.hasResourceProperties('AWS::Scheduler::Schedule', {
    Target: Match.objectLike({ Input: Match.stringLikeRegexp('"catalog":"shop-pitr"') }),
  });
});

test('SendCommand: the one document, the instance by id, the tagged hosts by ssm:resourceTag', () => {
  const policies = template.findResources('AWS::IAM::Policy');
  const statements = Object.values(policies).flatMap((policy) => (policy as { Properties: { PolicyDocument: { Statement: Record<string, unknown>[] } } }).Properties.PolicyDocument.Statement);
  const send = statements.filter((statement) => statement.Action === 'ssm:SendCommand');
  expect(send.map((statement) => statement.Sid).sort()).toEqual(['BackUpPhysicalHosts', 'BackUpPhysicalHostsByTag1', 'RunPhysicalBackupDocument']);
  expect(JSON.stringify(send.find((statement) => statement.Sid === 'BackUpPhysicalHosts'))).toContain('instance/i-0a1b2c3d4e5f60718');
  expect(send.find((statement) => statement.Sid === 'BackUpPhysicalHostsByTag1')?.Condition).toEqual({ StringEquals: { 'ssm:resourceTag/lifeboat-host': 'ledger' } });
  const writes = statements.filter((statement) => statement.Sid === 'WritePhysicalManifests');
  expect(JSON.stringify(writes)).toMatch(/runs\/shop-pitr\/\*\/manifest\.json.*runs\/ledger-pitr\/\*\/manifest\.json/);
  expect(JSON.stringify(statements)).not.toContain('plain-pitr');
});

test('cdk-nag AwsSolutions: every finding is acknowledged with its reason', () => {
  const app = new App();
  workflowStack(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});

describe('the Plan task\'s choice', () => {
  const physical = (runId: string, type: 'full' | 'incr', toLsn: string, bytes: number) => ({
    runId,
    verdict: 'ok' as const,
    manifest: {
      artifacts: [{ database: '*', key: `runs/shop-pitr/${runId}/backup.xbstream`, bytes, sha256: 'a'.repeat(64), format: 'xbstream', compression: 'none', parts: 1 }],
      physical: { tool: 'mariadb-backup', version: '10.11.19-MariaDB', type, fromLsn: '0', toLsn, binlog: { file: 'binlog.000001', position: 4 } },
    } as unknown as Manifest,
  });

  test('an incremental on the newest verified run, sized by the newest full', () => {
    expect(physicalPlanOf([physical('20261204T100000Z', 'full', '100', 5000), physical('20261204T110000Z', 'incr', '200', 40)], 'incr'))
      .toEqual({ type: 'incr', prior: '20261204T110000Z', incrementalLsn: '200', expectedSize: '5000' });
  });

  test('nothing verified to build on: a full, with nothing to size it', () => {
    expect(physicalPlanOf([], 'incr')).toEqual({ type: 'full', prior: '', incrementalLsn: '', expectedSize: '' });
  });
});
