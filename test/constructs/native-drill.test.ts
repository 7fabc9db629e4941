/**
 * The RDS point-in-time drill's state machine and roles as synthesized (a small app of its own
 * until the source shard wires it): names, every state after the restore call catching into the
 * deletion states, the deletion idempotent, the role scoped to lbd-<source>-* and the drill tag.
 */
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { parseConfig, type Source } from '../../lib/config';
import { NativeDrill, NativeDrillJanitor, nativeDrillMaxPolls } from '../../lib/constructs/native-drill';
import { drillIdentifierPrefix } from '../../lib/rds/drill-target';
import { stateMachineDefinition } from '../../local/definition';
import { validateAsl } from '../../local/validate-asl';
import { testApp } from '../fixtures/cdk-app';

const config = parseConfig({
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  sources: [
    {
      name: 'orders', engine: 'postgres', tier: 'tier2',
      connection: { host: 'orders.abcdefgh1234.eu-west-1.rds.amazonaws.com', database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
    },
    {
      name: 'ledger', engine: 'postgres', tier: 'tier2',
      connection: { host: 'ledger.cluster-abcdefgh1234.eu-west-1.rds.amazonaws.com', database: 'books', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:ledger-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
    },
  ],
});
const [orders, ledger] = config.sources as [Source, Source];

const stack = new Stack(testApp(), 'NativeDrillTest', { env: { account: '111111111111', region: 'eu-west-1' } });
const cluster = new ecs.CfnCluster(stack, 'Cluster');
const common = {
  appName: 'Lifeboat',
  cluster,
  image: ecs.ContainerImage.fromRegistry('lifeboat/worker:test'),
  bucket: new s3.Bucket(stack, 'Bucket'),
  bucketKey: new kms.Key(stack, 'Key'),
  alarmTopic: new sns.Topic(stack, 'Alarms'),
  schedules: { group: new scheduler.ScheduleGroup(stack, 'Group'), deadLetterQueue: new sqs.Queue(stack, 'Dlq') },
};
new NativeDrill(stack, 'NativeDrill-orders', { ...common, source: orders });
new NativeDrill(stack, 'NativeDrill-ledger', { ...common, source: ledger });
new NativeDrillJanitor(stack, 'NativeDrillJanitor', { appName: 'Lifeboat', sources: config.sources });
const template = Template.fromStack(stack);
const json = template.toJSON() as never;
type State = { Type: string; Resource?: string; Catch?: { ErrorEquals: string[]; Next: string }[]; Next?: string; Parameters?: Record<string, unknown> };
const definitionOf = (source: string) => stateMachineDefinition(json, { region: 'eu-west-1', account: '111111111111', stackName: 'NativeDrillTest' }, `-native-drill-${source}`) as { StartAt: string; States: Record<string, State> };

/** The states reachable from `from` (Next, Choices, Default, Catch). */
function reachable(states: Record<string, State>, from: string): Set<string> {
  const seen = new Set<string>();
  const visit = (name: string | undefined) => {
    if (!name || seen.has(name)) return;
    seen.add(name);
    const state = states[name] as State & { Choices?: { Next: string }[]; Default?: string };
    visit(state.Next);
    for (const choice of state.Choices ?? []) visit(choice.Next);
    visit(state.Default);
    for (const handler of state.Catch ?? []) visit(handler.Next);
  };
  visit(from);
  return seen;
}

describe.each([['orders', 'restoreDBInstanceToPointInTime'], ['ledger', 'restoreDBClusterToPointInTime']])('the native drill of %s', (source, restoreAction) => {
  const definition = definitionOf(source);
  const states = definition.States;

  test('is valid ASL, named <app>-native-drill-<source>', () => {
    expect(validateAsl(definition as never)).toEqual({ isValid: true, errors: [] });
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineName: `Lifeboat-native-drill-${source}` });
  });

  test('every state after the restore call catches States.ALL into the deletion, which ends in a failure with the original error', () => {
    const restores = Object.entries(states).filter(([, state]) => state.Resource?.endsWith(`:rds:${restoreAction}`)).map(([name]) => name);
    expect(restores.length).toBeGreaterThanOrEqual(2);
    const after = new Set(restores.flatMap((name) => [...reachable(states, name)]));
    const tasks = [...after].filter((name) => states[name]?.Type === 'Task' && !/Delete|Notify/.test(name));
    expect(tasks).toEqual(expect.arrayContaining([...restores, 'DescribeDrill', 'CheckDrill']));
    for (const name of tasks) {
      const handler = states[name].Catch?.find((candidate) => candidate.ErrorEquals.includes('States.ALL'));
      expect({ name, catches: handler !== undefined }).toEqual({ name, catches: true });
      const deletion = reachable(states, (handler as { Next: string }).Next);
      expect({ name, deletes: deletion.has('DeleteDrillInstance') || deletion.has('DeleteDrillCluster') }).toEqual({ name, deletes: true });
      expect({ name, fails: deletion.has('NativeDrillFailed') && deletion.has('NotifyNativeDrillFailure') }).toEqual({ name, fails: true });
    }
    // A drill instance already gone is fine (idempotent deletion).
    expect(states.DeleteDrillInstance.Catch?.[0].ErrorEquals).toEqual(['Rds.DbInstanceNotFoundException']);
    expect(states.DeleteDrillInstance.Parameters).toMatchObject({ SkipFinalSnapshot: true, DeleteAutomatedBackups: true });
  });

  test('the restore: drill identifier, tags, no public access, no deletion protection, the configured security groups', () => {
    const restore = Object.values(states).find((state) => state.Resource?.endsWith(`:rds:${restoreAction}`)) as State;
    expect(restore.Parameters).toMatchObject({
      DeletionProtection: false,
      VpcSecurityGroupIds: ['sg-0a1b2c3d'],
      Tags: [{ Key: 'lifeboat:drill', Value: source }, { Key: 'lifeboat:created', 'Value.$': '$.created' }],
    });
    if (source === 'orders') expect(restore.Parameters).toMatchObject({ PubliclyAccessible: false, SourceDbInstanceIdentifier: 'orders' });
    else expect(restore.Parameters).toMatchObject({ SourceDbClusterIdentifier: 'ledger' });
    expect(JSON.stringify(states.NameDrill)).toContain(drillIdentifierPrefix(source));
  });

  test('the wait loop is bounded by the tier\'s RTO', () => {
    const choice = states['Drill available?'] as unknown as { Choices: { NumericGreaterThanEquals?: number }[] };
    // The counter starts at 0 and is compared after each look: nativeDrillMaxPolls looks in all.
    expect(choice.Choices.find((c) => c.NumericGreaterThanEquals !== undefined)?.NumericGreaterThanEquals).toBe(nativeDrillMaxPolls(orders.tier) - 1);
  });
});

test('the Aurora drill creates its instance in the restored cluster and deletes both', () => {
  const states = definitionOf('ledger').States;
  expect(states.CreateDrillInstance.Resource).toMatch(/:rds:createDBInstance$/);
  expect(states.DeleteDrillCluster.Parameters).toMatchObject({ SkipFinalSnapshot: true });
});

test('the state machine role: restore and create only into lbd-<source>-* with the drill tag, delete only tagged drills', () => {
  const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((policy) =>
    (policy as { Properties: { PolicyDocument: { Statement: { Sid?: string; Action: string | string[]; Resource: unknown; Condition?: unknown }[] } } }).Properties.PolicyDocument.Statement);
  const text = (value: unknown) => JSON.stringify(value);
  const restoreInto = statements.filter((s) => s.Sid === 'RestoreIntoDrill');
  expect(restoreInto.length).toBe(2);
  for (const statement of restoreInto) {
    expect(text(statement.Resource)).toMatch(/lbd-(orders|ledger)-\*/);
    expect(statement.Condition).toEqual({ StringEquals: { 'aws:RequestTag/lifeboat:drill': expect.stringMatching(/^(orders|ledger)$/) } });
  }
  const deletes = statements.filter((s) => s.Sid === 'DeleteOnlyDrill');
  expect(deletes.length).toBe(2);
  for (const statement of deletes) {
    expect(text(statement.Resource)).not.toMatch(/:db:\*"|:cluster:\*"/);
    expect(statement.Condition).toEqual({ StringEquals: { 'aws:ResourceTag/lifeboat:drill': expect.stringMatching(/^(orders|ledger)$/) } });
  }
  const janitor = statements.find((s) => s.Sid === 'DeleteOnlyDrills');
  expect(janitor?.Condition).toEqual({ StringLike: { 'aws:ResourceTag/lifeboat:drill': '?*' } });
});

test('the checker: family lifeboat-drill-<source>-native, container Drill, /app/native-drill.js, role under the drill path, the password as an ECS secret', () => {
  template.hasResourceProperties('AWS::ECS::TaskDefinition', {
    Family: 'lifeboat-drill-orders-native',
    ContainerDefinitions: [Match.objectLike({ Name: 'Drill', EntryPoint: ['node', '--enable-source-maps', '/app/native-drill.js'] })],
  });
  const roles = Object.values(template.findResources('AWS::IAM::Role')).filter((role) => String((role as { Properties: { Description?: string } }).Properties.Description).includes('point-in-time drill checker'));
  expect(roles.length).toBeGreaterThan(0);
  for (const role of roles) expect((role as { Properties: { Path: string } }).Properties.Path).toBe('/lifeboat/drill/');
  const task = Object.values(template.findResources('AWS::ECS::TaskDefinition')).find((t) => (t as { Properties: { Family: string } }).Properties.Family === 'lifeboat-drill-orders-native') as { Properties: { ContainerDefinitions: { Secrets: { Name: string }[]; Environment: { Name: string; Value: string }[] }[] } };
  expect(task.Properties.ContainerDefinitions[0].Secrets.map((secret) => secret.Name)).toEqual(['LIFEBOAT_DB_PASSWORD']);
});
