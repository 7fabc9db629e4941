import { Match } from 'aws-cdk-lib/assertions';
import { drillScheduleFor, offsiteDrillScheduleFor } from '../../lib/constructs/drill-schedules';
import { drillTaskSizeFor } from '../../lib/constructs/drill-task';
import { drillTimeoutSeconds } from '../../lib/constructs/drill-workflow';
import { createStacks } from '../../lib/stacks';
import { stateMachineDefinition } from '../../local/definition';
import { validateAsl } from '../../local/validate-asl';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { primaryWithShards } from '../fixtures/primary-template';

const { primary } = createStacks(testApp(), testConfig);
// The per-source resources live in the source shards (nested stacks): the parent's template with theirs.
const template = primaryWithShards(primary);
type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = (template.toJSON() as { Resources: Record<string, Resource> }).Resources;
const definition = stateMachineDefinition(template.toJSON() as never, { region: 'eu-west-1', account: '111111111111' }, '-restore-drill') as {
  StartAt: string;
  States: Record<string, Record<string, unknown>>;
};
const states = definition.States;
const DAY = 86_400;
const GIB = 1024 ** 3;

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
/** The drill task definition of a source, and every statement of its task role's policies. */
function drillTask(source: string): { props: Record<string, unknown>; statements: Statement[] } {
  const [, task] = Object.entries(resources).find(([, r]) => r.Type === 'AWS::ECS::TaskDefinition' && r.Properties.Family === `lifeboat-drill-${source}`) ?? [];
  if (!task) throw new Error(`no drill task definition for ${source}`);
  const roleId = (task.Properties.TaskRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
  const statements = Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  return { props: task.Properties, statements };
}
const actionsOf = (statements: Statement[]) => statements.flatMap((s) => [s.Action].flat());
const schedulesOf = (from: string) => Object.values(template.findResources('AWS::Scheduler::Schedule') as Record<string, Resource>)
  .filter((schedule) => String(schedule.Properties.Description).startsWith('Lifeboat: restore drill') && String(schedule.Properties.Description).includes(`from ${from}`));

describe('the restore-drill state machine', () => {
  test('is a Standard workflow on JSONPath with logging and tracing, and valid ASL', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'Lifeboat-restore-drill',
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true }),
    });
    expect(definition).not.toHaveProperty('QueryLanguage', 'JSONata');
    expect(validateAsl(definition)).toEqual({ isValid: true, errors: [] });
  });

  test('RunDrill → RecordDrill → Drilled', () => {
    expect(definition.StartAt).toBe('RunDrill');
    expect(states.RunDrill.Next).toBe('RecordDrill');
    expect(states.RecordDrill).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::aws-sdk:cloudwatch:putMetricData',
      Parameters: { Namespace: 'Lifeboat', MetricData: [{ MetricName: 'MeasuredRtoSeconds', Unit: 'Seconds', Dimensions: [{ Name: 'source', 'Value.$': '$.source' }], 'Value.$': '$.drill.measuredRtoSeconds' }] },
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.metricError', Next: 'MetricNotPublished' }],
      Next: 'Drilled',
    });
    expect(states.MetricNotPublished).toMatchObject({ Type: 'Pass', Next: 'Drilled' });
    expect(states.Drilled).toEqual({ Type: 'Succeed' });
  });

  test('RunDrill runs the source\'s drill task on the shared cluster with a task token, a heartbeat and the RTO-derived timeout', () => {
    const cluster = Object.keys(template.findResources('AWS::ECS::Cluster'));
    expect(cluster).toHaveLength(1);
    expect(states.RunDrill).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::ecs:runTask.waitForTaskToken',
      HeartbeatSeconds: 300,
      TimeoutSeconds: Math.max(...testConfig.sources.map((source) => drillTimeoutSeconds(source.tier))),
      ResultPath: '$.drill',
      Parameters: {
        // The resolver names a generated cluster <stack>-<logicalId>, as CloudFormation would.
        Cluster: `arn:aws:ecs:eu-west-1:111111111111:cluster/Lifeboat-Primary-${cluster[0]}`,
        'TaskDefinition.$': '$.target.taskDefinitionArn',
        LaunchType: 'FARGATE',
        NetworkConfiguration: { AwsvpcConfiguration: { 'Subnets.$': '$.target.subnets', 'SecurityGroups.$': '$.target.securityGroups', AssignPublicIp: 'DISABLED' } },
        Overrides: { ContainerOverrides: [{ Name: 'Drill', Environment: [
          { Name: 'LIFEBOAT_TASK_TOKEN', 'Value.$': '$$.Task.Token' },
          { Name: 'LIFEBOAT_DRILL_FROM', 'Value.$': '$.from' },
        ] }] },
      },
    });
    expect(states.RunDrill).not.toHaveProperty('TimeoutSecondsPath');
  });

  test.each([[3600, 7200], [4 * 3600, 8 * 3600], [DAY, 2 * DAY], [600, 3600]])('an RTO of %d s gives RunDrill %d s', (rtoSeconds, timeout) => {
    expect(drillTimeoutSeconds({ rtoSeconds })).toBe(timeout);
  });

  test('retries only ECS placement errors, a bounded number of times; every failure is caught', () => {
    expect(states.RunDrill.Retry).toEqual([{ ErrorEquals: ['ECS.AmazonECSException'], IntervalSeconds: 60, MaxAttempts: 2, BackoffRate: 2 }]);
    expect(states.RunDrill.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'RunDrill failed' }]);
    expect(states['RunDrill failed']).toMatchObject({ Type: 'Pass', Result: 'RunDrill', ResultPath: '$.failedState', Next: 'DrillFailureMessage' });
  });

  test('a failure ends DrillFailureMessage → NotifyDrillFailure (SNS) → DrillFailed, with source, drill, error and cause', () => {
    expect(states.DrillFailureMessage).toMatchObject({ Type: 'Pass', ResultPath: '$.notification', Next: 'NotifyDrillFailure' });
    const parameters = states.DrillFailureMessage.Parameters as Record<string, string>;
    expect(parameters['subject.$']).toMatch(/^States\.Format\('.*', \$\.source\)$/);
    for (const path of ['$$.Execution.Name', '$.source', '$.failedState', '$.failure.Error', '$.failure.Cause']) expect(parameters['message.$']).toContain(path);
    expect(states.NotifyDrillFailure).toMatchObject({
      Resource: 'arn:aws:states:::sns:publish',
      Parameters: { TopicArn: expect.stringMatching(/^arn:aws:sns:eu-west-1:/), 'Message.$': '$.notification.message', 'Subject.$': '$.notification.subject' },
      Next: 'DrillFailed',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.notifyError', Next: 'DrillFailed' }],
    });
    expect(states.DrillFailed).toEqual({ Type: 'Fail', ErrorPath: '$.failure.Error', CausePath: '$.failure.Cause' });
  });

  test('may run only the drill task definitions, in the shared cluster, and pass their roles', () => {
    const policies = JSON.stringify(Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes('RestoreDrillStateMachineRole')));
    expect(policies).toMatch(/"Action":"ecs:RunTask","Condition":\{"ArnEquals":\{"ecs:cluster":\{"Fn::GetAtt":\["BackupRunCluster[0-9A-F]+","Arn"\]\}\}\}/);
    // By family (the drill tasks live in the shards, which the parent must not reference).
    expect(policies).toContain('task-definition/lifeboat-drill-*:*');
    expect(policies).not.toContain('lifeboat-dump');
    // Only the drill tasks' roles, and only to ECS tasks.
    expect(policies).toContain('role/lifeboat/drill/*');
    expect(policies).not.toContain('role/lifeboat/*"');
    expect(policies).toContain('"iam:PassRole","Condition":{"StringEquals":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}');
  });
});

describe('drill schedules', () => {
  test.each([
    [DAY, 'UTC', 'cron(0 5 * * ? *)', 'UTC'],
    [7 * DAY, 'Europe/Berlin', 'cron(0 5 ? * MON *)', 'Europe/Berlin'],
    [30 * DAY, 'Europe/Dublin', 'cron(0 5 1 * ? *)', 'Europe/Dublin'],
    [90 * DAY, 'UTC', 'cron(0 5 1 1,4,7,10 ? *)', 'UTC'],
    [2 * DAY, 'UTC', 'rate(2 days)', undefined],
    [12 * 3600, 'UTC', 'rate(12 hours)', undefined],
  ])('a drill every %d s in %s is %s', (drillSeconds, timezone, expression, zone) => {
    expect(drillScheduleFor({ drillSeconds, timezone })).toEqual({ expression, timezone: zone });
  });

  test('one drill schedule per source: its tier\'s cadence and timezone, bounded retries, a dead-letter queue, from primary', () => {
    expect(schedulesOf('primary')).toHaveLength(testConfig.sources.length);
    for (const source of testConfig.sources) {
      const spec = drillScheduleFor(source.tier);
      template.hasResourceProperties('AWS::Scheduler::Schedule', {
        Description: Match.stringLikeRegexp(`^Lifeboat: restore drill of ${source.name} .* from primary`),
        ScheduleExpression: spec.expression,
        ScheduleExpressionTimezone: spec.timezone,
        Target: Match.objectLike({
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DrillSchedulesDeadLetters'), 'Arn'] } },
          Arn: { Ref: Match.stringLikeRegexp('^RestoreDrillStateMachine') },
          Input: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([
            Match.stringLikeRegexp(`"source":"${source.name}","scheduledTime":"<aws.scheduler.scheduled-time>","from":"primary"`),
          ])] }),
        }),
      });
    }
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, KmsMasterKeyId: Match.absent(), MessageRetentionPeriod: 14 * DAY });
  });

  test('a daily-drilled source also gets a weekly drill from offsite; the others do not', () => {
    expect(offsiteDrillScheduleFor({ drillSeconds: DAY, timezone: 'UTC' })).toEqual({ expression: 'cron(0 17 ? * SUN *)', timezone: 'UTC' });
    expect(offsiteDrillScheduleFor({ drillSeconds: 7 * DAY, timezone: 'UTC' })).toBeUndefined();
    const offsite = schedulesOf('offsite');
    expect(offsite.map((schedule) => schedule.Properties.Description)).toEqual([expect.stringContaining('restore drill of orders (tier1)')]);
    expect(JSON.stringify(offsite[0].Properties.Target)).toContain('\\"from\\":\\"offsite\\"');
  });
});

describe('the drill task', () => {
  test.each([
    [undefined, 2048, 8192, 100],
    [2 * GIB, 2048, 8192, 21],
    [50e9, 4096, 16_384, 140],
    [500e9, 8192, 32_768, 200],
  ])('a size hint of %s bytes gets %d CPU units, %d MiB and %d GiB of ephemeral storage', (hint, cpu, memoryMiB, ephemeralStorageGiB) => {
    expect(drillTaskSizeFor(hint)).toEqual({ cpu, memoryMiB, ephemeralStorageGiB });
  });

  test('runs the worker image\'s drill entry with the source\'s size, scratch storage and no secret', () => {
    const { props } = drillTask('orders');
    expect(props).toMatchObject({ Cpu: '2048', Memory: '8192', EphemeralStorage: { SizeInGiB: 21 }, RequiresCompatibilities: ['FARGATE'] });
    expect(drillTask('analytics').props).toMatchObject({ EphemeralStorage: { SizeInGiB: 100 } });
    const [container] = props.ContainerDefinitions as Record<string, unknown>[];
    expect(container).toMatchObject({
      Name: 'Drill',
      EntryPoint: ['node', '--enable-source-maps', '/app/drill.js'],
      ReadonlyRootFilesystem: true,
      MountPoints: [{ SourceVolume: 'scratch', ContainerPath: '/scratch', ReadOnly: false }],
    });
    expect(JSON.stringify(container.Image)).toContain('cdk-hnb659fds-container-assets');
    expect(container).not.toHaveProperty('Secrets');
    const environment = Object.fromEntries((container.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));
    expect(Object.keys(environment).sort()).toEqual(['LIFEBOAT_BUCKET', 'LIFEBOAT_OFFSITE_BUCKET', 'LIFEBOAT_OFFSITE_REGION', 'LIFEBOAT_SOURCE_CONFIG', 'TMPDIR']);
    expect(environment.LIFEBOAT_OFFSITE_BUCKET).toBe('lifeboat-offsite-111111111111-eu-central-1');
    expect(environment.LIFEBOAT_OFFSITE_REGION).toBe('eu-central-1');
    const source = JSON.parse(environment.LIFEBOAT_SOURCE_CONFIG as string) as Record<string, unknown>;
    expect(source).toMatchObject({ name: 'orders', engine: 'postgres', tier: { rtoSeconds: 3600 }, drillChecks: [{ name: 'orders exist' }] });
    expect(JSON.stringify(environment)).not.toMatch(/password"\s*:\s*"/i);
  });

  test('reads its own runs (primary and offsite), writes only drills/<source>/*, and can never delete', () => {
    const { statements } = drillTask('orders');
    const allow = statements.filter((s) => s.Effect === 'Allow');
    const s3Allowed = actionsOf(allow).filter((action) => action.startsWith('s3:'));
    expect(new Set(s3Allowed)).toEqual(new Set(['s3:GetObject', 's3:GetObjectVersion', 's3:ListBucket', 's3:PutObject']));
    const puts = allow.filter((s) => [s.Action].flat().includes('s3:PutObject')).map((s) => JSON.stringify(s.Resource));
    expect(puts).toHaveLength(1);
    expect(puts[0]).toMatch(/\/drills\/orders\/\*"\]\]\}$/);
    const gets = allow.filter((s) => [s.Action].flat().includes('s3:GetObject')).map((s) => JSON.stringify(s.Resource));
    expect(gets).toEqual([expect.stringMatching(/\/runs\/orders\/\*"\]\]\}$/), expect.stringMatching(/lifeboat-offsite-111111111111-eu-central-1\/runs\/orders\/\*/)]);
    for (const list of allow.filter((s) => [s.Action].flat().includes('s3:ListBucket'))) {
      expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['runs/orders/*'] } });
    }
    expect(actionsOf(allow).filter((action) => /Delete|\*$/.test(action))).toEqual([]);
    const deny = statements.find((s) => s.Effect === 'Deny');
    expect(deny?.Action).toEqual(expect.arrayContaining(['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention']));
    expect(actionsOf(allow)).toEqual(expect.arrayContaining(['kms:Decrypt', 'kms:GenerateDataKey']));
    expect(actionsOf(allow).filter((action) => action.startsWith('secretsmanager:'))).toEqual([]);
  });

  test('answers the task tokens of the drill state machine only', () => {
    const { statements } = drillTask('orders');
    const answers = statements.filter((s) => [s.Action].flat().includes('states:SendTaskSuccess'));
    expect(answers).toHaveLength(1);
    expect(answers[0].Action).toEqual(expect.arrayContaining(['states:SendTaskFailure', 'states:SendTaskHeartbeat']));
    // By name: the drill state machine is in the parent stack, the task in a source shard.
    expect(JSON.stringify(answers[0].Resource)).toMatch(/:stateMachine:Lifeboat-restore-drill"$/);
  });
});
