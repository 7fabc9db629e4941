/**
 * The physical backup run in the deployed app (the primary stack): a config with a MySQL/MariaDB
 * source on an SSM host gets the `<app>-binlog-physical-run` state machine, its host document and
 * a schedule per backup type of the tier's plan, and its Plan and Verify tasks' containers run
 * the image's entry points; a config without one gets none of them.
 */
import { parseConfig, type LifeboatConfig } from '../../lib/config';
import { synthApp, type SynthesizedApp } from '../../local/synth';

function config(physical: boolean): LifeboatConfig {
  return parseConfig({
    appName: 'Lifeboat',
    primary: { region: 'eu-west-1', account: '111111111111' },
    offsite: { region: 'eu-central-1', account: '222222222222' },
    sources: [{
      name: 'shop', engine: 'mariadb', tier: 'tier1', method: ['logical', 'pitr'],
      ...(physical ? { binlog: { physical: { host: { instanceId: 'i-0a1b2c3d4e5f60718' } } } } : {}),
      connection: { host: 'shop.example.internal', database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:shop-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d4e5f60718'], securityGroupIds: ['sg-0a1b2c3d4e5f60718'] },
    }],
  });
}

const ofType = (app: SynthesizedApp, type: string) => Object.values(app.primary.template.Resources).filter((resource) => resource.Type === type) as { Properties: Record<string, unknown> }[];

let withHost: SynthesizedApp;
let without: SynthesizedApp;

beforeAll(() => {
  withHost = synthApp(config(true));
  without = synthApp(config(false));
}, 180_000);

test('a source with a physical host: the state machine, the host document and a schedule per backup type', () => {
  const machines = ofType(withHost, 'AWS::StepFunctions::StateMachine').map((machine) => String(machine.Properties.StateMachineName));
  expect(machines).toContain('Lifeboat-binlog-physical-run');
  const documents = ofType(withHost, 'AWS::SSM::Document').map((document) => String(document.Properties.Name));
  expect(documents).toContain('Lifeboat-binlog-physical');
  const schedules = ofType(withHost, 'AWS::Scheduler::Schedule').map((schedule) => JSON.stringify(schedule.Properties));
  // tier1: a weekly full and an incremental every 5 minutes.
  expect(schedules.filter((text) => text.includes('binlog-physical-run') || text.includes('BinlogPhysicalRun')).length).toBeGreaterThanOrEqual(2);
  const entries = ofType(withHost, 'AWS::ECS::TaskDefinition')
    .flatMap((task) => (task.Properties.ContainerDefinitions as { Name: string; EntryPoint?: string[] }[]).map((container) => `${container.Name} ${container.EntryPoint?.at(-1)}`));
  expect(entries).toEqual(expect.arrayContaining(['PhysicalPlan /app/binlog-physical-plan.js', 'PhysicalVerifier /app/binlog-physical-verify.js']));
});

test('without a physical host, no physical run', () => {
  const machines = ofType(without, 'AWS::StepFunctions::StateMachine').map((machine) => String(machine.Properties.StateMachineName));
  expect(machines).not.toContain('Lifeboat-binlog-physical-run');
  expect(ofType(without, 'AWS::SSM::Document').map((document) => String(document.Properties.Name))).not.toContain('Lifeboat-binlog-physical');
});
