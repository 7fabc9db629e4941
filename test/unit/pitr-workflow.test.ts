/** The PITR backup run as synthesized: the SSM document, the state machine, its grants and schedules. */
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parseConfig, type LifeboatConfigInput } from '../../lib/config';
import type { SourceInput } from '../../lib/config/schema';
import { createStacks } from '../../lib/stacks';
import { cdkJsonContext } from '../../lib/stacks/feature-flags';
import { PITR_BACKUP_SCRIPT, pitrScheduleFor } from '../../lib/constructs/pitr-workflow';
import { validateAsl } from '../../local/validate-asl';
import { stateMachineDefinition } from '../../local/definition';
import { ResolvedStack } from '../../local/cfn/resolve';

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

function synth(sources: SourceInput[]) {
  const input: LifeboatConfigInput = { primary: { region: 'eu-west-1', account: '111111111111' }, offsite: { region: 'eu-central-1', account: '222222222222' }, sources };
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
  for (const state of ['BackupOnHost', 'WaitForHost', 'PollHost', 'HostDone?', 'ReadHostOutput', 'VerifySet', 'Verdict?', 'Commit', 'AwaitOffsite', 'Record', 'RecordFailure', 'NotifyFailure', 'Skipped: another backup was running']) {
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
