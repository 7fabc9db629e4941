/** The PITR backup run as synthesized: the SSM document, the state machine, its grants and schedules. */
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { StateMachine } from 'aws-local-stepfunctions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig, type LifeboatConfigInput } from '../../lib/config';
import type { SourceInput } from '../../lib/config/schema';
import { createStacks } from '../../lib/stacks';
import { cdkJsonContext } from '../../lib/stacks/feature-flags';
import { PITR_BACKUP_SCRIPT, pitrScheduleFor } from '../../lib/constructs/pitr-workflow';
import { validateAsl } from '../../local/validate-asl';
import { stateMachineDefinition } from '../../local/definition';
import { ResolvedStack } from '../../local/cfn/resolve';
import { testApp } from '../fixtures/cdk-app';

const ORDERS: SourceInput = {
  name: 'orders',
  engine: 'postgres',
  tier: 'tier1',
  method: 'pitr',
  pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/var/lib/postgresql/15/main' },
  connection: { host: 'orders.example.internal', database: 'orders', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
  network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
};
const BILLING: SourceInput = {
  ...ORDERS, name: 'billing', method: ['logical', 'pitr'], pitr: { host: { tag: { key: 'lifeboat-db', value: 'billing' } }, dataDirectory: '/srv/pg' },
};

const configOf = (sources: SourceInput[]): LifeboatConfigInput => ({ primary: { region: 'eu-west-1', account: '111111111111' }, offsite: { region: 'eu-central-1', account: '222222222222' }, sources });

function synth(sources: SourceInput[]) {
  const input = configOf(sources);
  const app = new App({ context: cdkJsonContext() });
  const { primary } = createStacks(app, parseConfig(input));
  const assembly = app.synth();
  return { primary, template: Template.fromStack(primary), json: assembly.getStackByName(primary.stackName).template as Record<string, unknown> };
}

const { primary, template, json } = synth([ORDERS, BILLING]);

test('the SSM document runs pgbackrest backup with validated parameters, never expire', () => {
  template.hasResourceProperties('AWS::SSM::Document', {
    Name: 'Lifeboat-pitr-backup',
    DocumentType: 'Command',
    Content: Match.objectLike({
      schemaVersion: '2.2',
      parameters: Match.objectLike({ type: Match.objectLike({ allowedValues: ['full', 'diff', 'incr'] }), stanza: Match.objectLike({ allowedPattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }) }),
    }),
  });
  expect(PITR_BACKUP_SCRIPT.join('\n')).toContain('backup');
  expect(PITR_BACKUP_SCRIPT.join('\n')).not.toContain('expire');
});

test('the state machine is valid ASL: host command, poll, verify set, then the logical run\'s commit, offsite and record', () => {
  const definition = stateMachineDefinition(new ResolvedStack(json as never, { stackName: primary.stackName, region: 'eu-west-1', account: '111111111111' }), undefined, '-pitr-run') as { States: Record<string, { Type: string; Resource?: string }> };
  expect(validateAsl(definition).errors).toEqual([]);
  for (const state of ['BackupOnHost', 'WaitForHost', 'PollHost', 'HostDone?', 'ReadHostOutput', 'VerifySet', 'Verdict?', 'Commit', 'AwaitOffsite', 'Record', 'Backed up', 'RecordFailure', 'NotifyFailure', 'Skipped: another backup was running', 'Full set?', 'Expire']) {
    expect(definition.States).toHaveProperty([state]);
  }
  expect(definition.States.BackupOnHost.Resource).toBe('arn:aws:states:::aws-sdk:ssm:sendCommand');
});

test('the state machine may send the document to the sources\' hosts only: by id, or by tag', () => {
  const policies = template.findResources('AWS::IAM::Policy');
  const statements = Object.values(policies).flatMap((policy) => (policy as { Properties: { PolicyDocument: { Statement: { Sid?: string; Resource?: unknown; Condition?: unknown }[] } } }).Properties.PolicyDocument.Statement);
  const byId = statements.find((statement) => statement.Sid === 'BackUpPitrHosts');
  expect(JSON.stringify(byId?.Resource)).toContain('instance/i-0a1b2c3d4e5f60718');
  const byTag = statements.find((statement) => statement.Sid?.startsWith('BackUpPitrHostsByTag'));
  expect(byTag?.Condition).toEqual({ StringEquals: { 'ssm:resourceTag/lifeboat-db': 'billing' } });
});

test('one schedule per source and type; a PITR-only source has no dump task or logical schedule', () => {
  const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')).map((resource) => (resource as { Properties: { Description: string } }).Properties.Description);
  for (const source of ['orders', 'billing']) {
    for (const type of ['full', 'diff', 'incr']) expect(schedules.some((description) => description.startsWith(`Lifeboat: ${type} pgBackRest backup of ${source} `))).toBe(true);
  }
  expect(Object.keys(primary.dumpTasks)).toEqual(['billing']);
  expect(pitrScheduleFor('diff', 86_400, 'UTC', ['full', 'diff', 'incr']).expression).toBe('cron(0 3 ? * MON-SAT *)');
  expect(pitrScheduleFor('full', 604_800, 'UTC', ['full', 'diff', 'incr']).expression).toBe('cron(0 3 ? * SUN *)');
});

type State = { Type: string; Next?: string; Default?: string; Choices?: { Variable: string; StringEquals?: string; Next: string }[]; Catch?: { ErrorEquals: string[]; Next: string }[]; Parameters?: Record<string, unknown>; End?: boolean };
const pitrRun = stateMachineDefinition(new ResolvedStack(json as never, { stackName: primary.stackName, region: 'eu-west-1', account: '111111111111' }), undefined, '-pitr-run') as { States: Record<string, State> };
type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
const resources = json.Resources as Record<string, Resource>;
/** A task definition by family, and every statement of its task role's policies. */
function taskNamed(family: string): { props: Record<string, unknown>; statements: Statement[] } {
  const [, task] = Object.entries(resources).find(([, r]) => r.Type === 'AWS::ECS::TaskDefinition' && r.Properties.Family === family) ?? [];
  if (!task) throw new Error(`no task definition ${family}`);
  const roleId = (task.Properties.TaskRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
  const statements = Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  return { props: task.Properties, statements };
}
const allows = (statements: Statement[], action: string) => statements.filter((s) => s.Effect === 'Allow' && [s.Action].flat().includes(action));

describe('Expire, after a full set is recorded', () => {
  const states = pitrRun.States;

  test('Record → Full set? → Expire → Backed up; a differential or incremental goes from Record straight to Backed up', () => {
    expect(states.Record.Next).toBe('Full set?');
    expect(states['Full set?']).toMatchObject({ Type: 'Choice', Choices: [{ Variable: '$.dump.set.type', StringEquals: 'full', Next: 'Expire' }], Default: 'Backed up' });
    expect(states.Expire.Next).toBe('Backed up');
    expect(states['Backed up']).toEqual({ Type: 'Succeed' });
    // The states the run had keep their names and their ends.
    expect(states.AwaitOffsite.Next).toBe('OffsiteCopied?');
    expect(states.Record.Catch?.[0].Next).toBe('Record failed');
  });

  test('Expire runs the expiry task for the run\'s source and stanza, answering its task token', () => {
    const expire = states.Expire as State & { Resource: string; HeartbeatSeconds: number };
    expect(expire.Resource).toBe('arn:aws:states:::ecs:runTask.waitForTaskToken');
    expect(expire.HeartbeatSeconds).toBeGreaterThan(60);
    expect(expire.Parameters).toMatchObject({
      TaskDefinition: expect.stringContaining(':task-definition/lifeboat-pitr-expire:'),
      Overrides: { ContainerOverrides: [{ Name: 'PitrExpire', Environment: expect.arrayContaining([
        { Name: 'LIFEBOAT_TASK_TOKEN', 'Value.$': '$$.Task.Token' }, { Name: 'LIFEBOAT_SOURCE', 'Value.$': '$.source' }, { Name: 'LIFEBOAT_PITR_STANZA', 'Value.$': '$.pitr.stanza' },
      ]) }] },
    });
    const { props } = taskNamed('lifeboat-pitr-expire');
    const [container] = props.ContainerDefinitions as { Name: string; EntryPoint: string[]; ReadonlyRootFilesystem: boolean; Environment: { Name: string; Value: unknown }[] }[];
    expect(container).toMatchObject({ Name: 'PitrExpire', EntryPoint: ['node', '--enable-source-maps', '/app/pitr-expire.js'], ReadonlyRootFilesystem: true });
    // The tiers come from the template, as the logical pruner's: the execution's input names only the source.
    const sources = JSON.parse(String(container.Environment.find((entry) => entry.Name === 'LIFEBOAT_SOURCES_JSON')?.Value)) as { name: string }[];
    expect(sources.map((source) => source.name).sort()).toEqual(['billing', 'orders']);
    expect(container.Environment).toContainEqual({ Name: 'LIFEBOAT_DRY_RUN', Value: 'false' });
  });

  test('a failed expiry fails the run through RecordFailure, its cause saying the backup itself is committed', async () => {
    const catcher = states.Expire.Catch?.find((entry) => entry.ErrorEquals.includes('States.ALL'));
    expect(catcher?.Next).toBe('Expiry failed, backup committed');
    expect(states['Expiry failed, backup committed'].Next).toBe('Expire failed');
    expect(states['Expire failed'].Next).toBe('RecordFailure');
    // The Pass itself, run by the interpreter the local runs use.
    const { Next: _next, ...pass } = states['Expiry failed, backup committed'];
    const machine = new StateMachine({ StartAt: 'P', States: { P: { ...pass, End: true } } } as never);
    const output = await machine.run({
      dump: { runId: '20261203T030000Z', set: { label: '20261203-030001F', type: 'full' } },
      failure: { Error: 'BackupFailed', Cause: 'pgbackrest expire --set=20261126-030001F failed (exit 39)' },
    } as never).result as { failure: { Error: string; Cause: string } };
    expect(output.failure.Error).toBe('BackupFailed');
    expect(output.failure.Cause).toMatch(/^The backup itself is committed: run 20261203T030000Z \(set 20261203-030001F\) is verified, confirmed offsite and recorded.*Only the expiry of older sets failed.*pgbackrest expire --set=20261126-030001F failed \(exit 39\)$/);
  });

  test('the expiry task\'s role reads the runs\' verdicts and the repositories, rewrites and deletes under pitr/<source>/ only, and may never remove or unlock a version', () => {
    const { statements } = taskNamed('lifeboat-pitr-expire');
    const text = (value: unknown) => JSON.stringify(value);
    for (const action of ['s3:PutObject', 's3:DeleteObject']) {
      const granted = allows(statements, action);
      expect(granted.length).toBeGreaterThan(0);
      for (const statement of granted) for (const resource of [statement.Resource].flat()) expect(text(resource)).toMatch(/\/pitr\/(orders|billing)\/\*"\]\]\}$/);
    }
    expect(text(allows(statements, 's3:DeleteObject').flatMap((s) => [s.Resource].flat())).match(/pitr\/\w+\/\*/g)?.sort()).toEqual(['pitr/billing/*', 'pitr/orders/*']);
    for (const action of ['s3:DeleteObjectVersion', 's3:BypassGovernanceRetention', 's3:PutObjectRetention', 's3:PutObjectLegalHold']) {
      expect(allows(statements, action)).toEqual([]);
      expect(statements.some((s) => s.Effect === 'Deny' && [s.Action].flat().includes(action))).toBe(true);
    }
    const reads = allows(statements, 's3:GetObject').flatMap((s) => [s.Resource].flat()).map(text).join(' ');
    for (const document of ['manifest.json', 'verification.json', 'offsite.json']) expect(reads).toContain(`/runs/*/${document}`);
    expect(reads).toContain('/pitr/orders/*');
    expect(reads).not.toMatch(/\/runs\/\*"/);
    expect(allows(statements, 'kms:GenerateDataKey').length).toBeGreaterThan(0);
    expect(allows(statements, 'states:SendTaskSuccess').length).toBeGreaterThan(0);
    // The verifier deletes nothing.
    expect(allows(taskNamed('lifeboat-pitr-verify').statements, 's3:DeleteObject')).toEqual([]);
  });

  test('the state machine may run the expiry task on the cluster and pass its roles to ECS only', () => {
    const machineRole = Object.entries(resources).find(([id, r]) => r.Type === 'AWS::IAM::Role' && id.includes('PitrRunStateMachineRole'))?.[0];
    const statements = Object.values(resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: machineRole }]))
      .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const expireTaskId = Object.entries(resources).find(([, r]) => r.Type === 'AWS::ECS::TaskDefinition' && r.Properties.Family === 'lifeboat-pitr-expire')?.[0] as string;
    const runTask = allows(statements, 'ecs:RunTask');
    expect(JSON.stringify(runTask.map((s) => s.Resource))).toContain(expireTaskId);
    expect(runTask.every((s) => JSON.stringify(s.Condition).includes('ecs:cluster'))).toBe(true);
    const expireRole = (resources[expireTaskId].Properties.TaskRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
    const passRole = allows(statements, 'iam:PassRole');
    expect(JSON.stringify(passRole.map((s) => s.Resource))).toContain(expireRole);
    expect(passRole.every((s) => JSON.stringify(s.Condition) === JSON.stringify({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } }))).toBe(true);
  });

  test('cdk-nag AwsSolutions: every finding of the PITR run is acknowledged with its reason', () => {
    const app = testApp();
    const stacks = createStacks(app, parseConfig(configOf([ORDERS, BILLING])));
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    let report = '';
    try {
      app.synth();
    } catch (error) {
      report = (error as Error).message;
    }
    // The findings of other constructs are their tests'; none may name the PITR run's resources.
    expect(stacks.primary.pitr?.node.path).toBe('Lifeboat-Primary/PitrRun');
    expect(report.split('\n').filter((line) => line.includes('Lifeboat-Primary/PitrRun/'))).toEqual([]);
  });
});
